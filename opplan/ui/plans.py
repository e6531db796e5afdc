"""Where the pages get plans: baseline runs cached process-wide, planner results cached by
scenario and options, and the session's latest opplan plan."""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from opplan import baselines
from opplan.errors import OpplanError
from opplan.schedule import Plan
from opplan.ui.config import config_key, scenario_from_config

if TYPE_CHECKING:
    from opplan.ui.jobs import Job

DEFAULT_SCHEDULES = ("1f1b", "zb-h1", "dualpipe")   # what Compare opens on (with opplan once planned)

_BASELINES: OrderedDict[tuple[str, str], tuple[Plan | None, str | None]] = OrderedDict()
_BASELINE_LOCK = threading.Lock()
_PLANS: OrderedDict[str, Plan] = OrderedDict()
_PLANS_LOCK = threading.Lock()


def baseline_names() -> list[str]:
    return list(baselines.NAMES)


def baseline_plan(config: dict[str, Any], name: str) -> tuple[Plan | None, str | None]:
    """(plan, None) or (None, one-line reason) — precondition errors are shown, never raised.

    Cached process-wide on the plain config: baselines are deterministic and fast, and every page
    and every session asks for the same few.
    """
    key = (config_key(config), name)
    with _BASELINE_LOCK:
        if key in _BASELINES:
            _BASELINES.move_to_end(key)
            return _BASELINES[key]
    try:
        plan = baselines.run_on(scenario_from_config(config), name)
        result: tuple[Plan | None, str | None] = (plan, None)
    except OpplanError as error:
        result = (None, str(error))
    with _BASELINE_LOCK:
        _BASELINES[key] = result
        while len(_BASELINES) > 256:
            _BASELINES.popitem(last=False)
    return result


def collect_plans(config: dict[str, Any], names: Iterable[str],
                  opplan: Plan | None = None) -> tuple[dict[str, Plan], list[tuple[str, str]]]:
    """The named schedules' plans on this scenario (``"opplan"`` is the given plan), and the
    (name, reason) of each baseline that does not apply here."""
    plans: dict[str, Plan] = {}
    skipped: list[tuple[str, str]] = []
    for name in names:
        if name == "opplan":
            if opplan is not None:
                plans[name] = opplan
            continue
        plan, reason = baseline_plan(config, name)
        if plan is None:
            skipped.append((name, reason or ""))
        else:
            plans[name] = plan
    return plans, skipped


def options_key(config: dict[str, Any], options: dict[str, Any]) -> str:
    return config_key(config) + json.dumps(options, sort_keys=True)


def cached_opplan(config: dict[str, Any], options: dict[str, Any]) -> Plan | None:
    """A finished planner result for exactly this scenario and options, if any session made one."""
    with _PLANS_LOCK:
        return _PLANS.get(options_key(config, options))


def remember_plan(key: str, plan: Plan) -> None:
    with _PLANS_LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > 64:
            _PLANS.popitem(last=False)


def remember_result(values: dict[str, Any], job: Job) -> None:
    """Make a finished planner job's plan the scenario's current opplan plan (Compare shows it)."""
    if job.kind == "solve" and job.done and job.result is not None:
        values["opplan_result"] = {"key": config_key(job.config), "plan": job.result, "options": job.options}


def latest_opplan(values: dict[str, Any], config: dict[str, Any]) -> Plan | None:
    """The last opplan plan solved for exactly this scenario in this session, if any."""
    entry = values.get("opplan_result")
    return entry["plan"] if entry and entry["key"] == config_key(config) else None


def compare_choices(values: dict[str, Any], opplan: Plan | None) -> list[str]:
    """The schedules Compare offers. A new opplan plan joins the chosen ones by itself."""
    available = (["opplan"] if opplan is not None else []) + baseline_names()
    if "compare_schedules" not in values or (opplan is not None and not values.get("_compare_saw_opplan")):
        values["compare_schedules"] = [n for n in ("opplan", *DEFAULT_SCHEDULES) if n in available]
    values["_compare_saw_opplan"] = opplan is not None
    return available


def device_of_operators(plan: Plan) -> dict[str, int]:
    """Operator id → the device a plan runs it on (from its stages), to colour the model graph."""
    return {op: stage.device for stage in plan.problem.stages for op in stage.operators}


def placement_choices(values: dict[str, Any], config: dict[str, Any]) -> dict[str, Plan | None]:
    """What the model graph can be coloured by: operator kind (None), then the placement of each
    Home schedule that applies, and opplan's latest plan for this scenario."""
    choices: dict[str, Plan | None] = {"operator kind": None}
    opplan = latest_opplan(values, config)
    if opplan is not None:
        choices["opplan"] = opplan
    for name in ("1f1b", "dualpipe"):
        plan, _ = baseline_plan(config, name)
        if plan is not None:
            choices[name] = plan
    return choices
