"""The bubble-versus-memory trade-off: opplan at a series of memory caps, tightest first.

Each cap's plan is a warm start for every looser cap (a plan that fits a cap fits any looser one),
so the curve never rises as memory grows, whatever the time limit per cap.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opplan.errors import OpplanError
from opplan.planner.api import PlannerOptions, solve
from opplan.scenario import Scenario
from opplan.schedule import Plan
from opplan.units import MemoryCap


@dataclass(frozen=True)
class SweepPoint:
    """One cap of the sweep: its plan, or why there is none (no plan fits a cap that tight)."""

    cap: MemoryCap
    plan: Plan | None
    error: str = ""


def sweep(scenario: Scenario, caps: Sequence[MemoryCap], options: PlannerOptions | None = None,
          on_point: Callable[[SweepPoint], None] | None = None) -> list[SweepPoint]:
    """opplan at each cap, in order of tightness (the first value of each cap), each seeded with
    every plan found so far; ``on_point`` sees each point as it is made."""
    options = options or PlannerOptions()
    if not caps:
        raise OpplanError("a sweep needs at least one memory cap", field="memory_cap")
    points: list[SweepPoint] = []
    found: list[Plan] = []
    for cap in sorted(caps, key=lambda c: c.values):
        if options.stopped():
            break
        capped = dataclasses.replace(scenario, memory_caps=cap.bytes_per_device(scenario.model, scenario.devices))
        try:
            plan = solve(capped, options, seeds=tuple(found))
        except OpplanError as error:
            point = SweepPoint(cap, None, str(error))
        else:
            found.append(plan)
            point = SweepPoint(cap, plan)
        points.append(point)
        if on_point is not None:
            on_point(point)
    return points
