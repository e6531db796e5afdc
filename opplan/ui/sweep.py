"""The bubble-versus-memory trade-off on the Compare page: each expert schedule is one point (its
uncapped peak memory and bubble ratio); opplan is planned again at several caps between the
smallest and the largest baseline peak (the sweep job), and its current plan is one more point.

A point is a dict ``opplan.viz.pareto_figure`` draws: ``schedule``, ``peak`` (in the scenario's
display unit), ``bubble_ratio``, ``makespan`` and, for opplan, ``cap``.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from opplan.errors import OpplanError
from opplan.schedule import Plan
from opplan.ui.config import config_key, peak_of, scenario_from_config, uncapped
from opplan.ui.display import schedule_title, units_for
from opplan.ui.jobs import Job, planner_options, start_job
from opplan.ui.plans import baseline_names, baseline_plan


def _uncapped_baselines(config: dict[str, Any]) -> list[tuple[str, Plan]]:
    free = uncapped(config)
    runs = ((name, baseline_plan(free, name)[0]) for name in baseline_names())
    return [(name, plan) for name, plan in runs if plan is not None]


def baseline_peaks(config: dict[str, Any]) -> list[float]:
    """Each applicable baseline's peak without a cap, in the cap unit (units, or bytes)."""
    free = uncapped(config)
    return [peak_of(plan, free) for _, plan in _uncapped_baselines(config)]


def sweep_caps(peaks: list[float], count: int) -> list[float]:
    """``count`` caps evenly from the smallest to the largest peak (one cap if they are equal)."""
    low, high = min(peaks), max(peaks)
    return [float(c) for c in np.linspace(low, high, count)] if high > low else [low]


def sweep_options(values: dict[str, Any], seconds: float, caps: list[float]) -> dict[str, Any]:
    """The sweep's planner options: the Plan page's solver and placement, ``seconds`` per cap."""
    return {"solver": values["solver"], "objective": "makespan", "time_limit": seconds,
            "placement": values["placement"], "caps": caps}


def start_sweep(config: dict[str, Any], options: dict[str, Any], caps: list[float]) -> Job:
    """opplan at several memory caps (the Pareto curve), in a worker; points land in ``job.result``
    as they come. Their ``peak`` and ``cap`` are in the cap unit (units, or bytes)."""
    return start_job("sweep", uncapped(config), options, sweep_work, config, options, caps)


def sweep_work(job: Any, config: dict[str, Any], options: dict[str, Any], caps: list[float]) -> list[dict[str, Any]]:
    """The sweep itself (runs in a worker): tightest cap first, each cap seeded with the plans of
    the tighter ones (so the curve never rises as memory grows); each point is published as soon
    as it is solved."""
    from opplan.planner.api import solve

    points: list[dict[str, Any]] = []
    found: list[Plan] = []
    memory = units_for(config).memory     # the log names caps as the page does (9 activation units, 64.00 GB)
    for k, cap in enumerate(sorted(caps)):
        if job.cancel_event.is_set():
            break
        capped = dict(config, caps=[cap] * config["devices"])
        job.log.append(f"cap {memory(cap)}: solving ({k + 1}/{len(caps)})")
        try:
            result = solve(scenario_from_config(capped), planner_options(options, None), seeds=tuple(found))
        except OpplanError as error:
            job.log.append(f"cap {memory(cap)}: {error}")
            continue
        found.append(result)
        points.append({"schedule": "opplan", "cap": cap, "peak": peak_of(result, capped),
                       "bubble_ratio": result.metrics.bubble_ratio, "makespan": result.makespan})
        job.result = points      # publish the points so far
    return points


def sweep_applies(sweep: Job | None, config: dict[str, Any]) -> bool:
    """True when ``sweep`` was run on this scenario (caps aside)."""
    return sweep is not None and config_key(sweep.config) == config_key(uncapped(config))


def sweep_log(sweep: Job) -> str:
    """The finished sweep's log without its progress lines (what is left: caps that failed)."""
    return " · ".join(line for line in sweep.log if "solving" not in line)


def pareto_points(config: dict[str, Any], swept: Iterable[dict[str, Any]] = (),
                  opplan: Plan | None = None) -> list[dict[str, Any]]:
    """The points of the trade-off chart: the baselines (uncapped), the sweep's opplan points
    (``swept``, as :func:`start_sweep` makes them) and the current opplan plan at the scenario's cap."""
    shown = units_for(config).scale.to_display
    free = uncapped(config)
    points = [{"schedule": schedule_title(name), "peak": shown(peak_of(plan, free)),
               "bubble_ratio": plan.metrics.bubble_ratio, "makespan": plan.makespan}
              for name, plan in _uncapped_baselines(config)]
    points += [dict(p, peak=shown(p["peak"]), cap=shown(p["cap"])) for p in swept]
    if opplan is not None:
        points.append({"schedule": "opplan", "peak": shown(peak_of(opplan, config)),
                       "bubble_ratio": opplan.metrics.bubble_ratio, "makespan": opplan.makespan,
                       "cap": shown(config["caps"][0]) if config.get("caps") else None})
    return points
