"""Hand-designed pipeline schedules, formula-exact on uniform stages (the published bubble and memory figures).

    from opplan import baselines
    sched = baselines.get("1f1b")
    problem = sched.uniform_problem(8, 20, 1, 1, 1)      # or sched.model_problem(model, cluster, 20)
    plan = baselines.run("1f1b", problem)                 # simulated, measured, validated

P is always the number of devices. Each generator returns per-device action lists in the compact
order notation; the shared simulator times them and the validator checks the result.
"""
from __future__ import annotations

from collections.abc import Callable

from opplan.baselines.base import Baseline
from opplan.baselines.dualpipe import DualPipe
from opplan.baselines.dualpipev import DualPipeV
from opplan.baselines.gpipe import GPipe
from opplan.baselines.interleaved import Interleaved1F1B
from opplan.baselines.one_f_one_b import OneFOneB
from opplan.baselines.zbv import ZBV
from opplan.baselines.zero_bubble import ZBH1, ZBH2
from opplan.errors import OpplanError
from opplan.layout import Layout
from opplan.problem import Problem
from opplan.scenario import Scenario
from opplan.schedule import Plan

_REGISTRY: dict[str, Callable[[], Baseline]] = {
    "gpipe": GPipe,
    "1f1b": OneFOneB,
    "interleaved-1f1b": Interleaved1F1B,
    "zb-h1": ZBH1,
    "zb-h2": ZBH2,
    "zb-v": ZBV,
    "dualpipe": DualPipe,
    "dualpipev": DualPipeV,
}

NAMES: tuple[str, ...] = tuple(_REGISTRY)


def get(name: str) -> Baseline:
    """The baseline called ``name`` (case-insensitive); an unknown name lists the valid ones."""
    key = str(name).strip().lower()
    if key not in _REGISTRY:
        raise OpplanError(f"unknown baseline schedule {name!r} (valid: {', '.join(NAMES)})")
    return _REGISTRY[key]()


def run_on(scenario: Scenario, name: str) -> Plan:
    """``name``'s plan on a scenario, in the schedule's own layout (validated); records the user's M."""
    schedule = get(name)
    schedule.check(scenario.devices, scenario.microbatches)
    plan = run(name, scenario.problem_for(schedule.layout))
    plan.provenance.microbatches = scenario.microbatches
    plan.provenance.scenario = scenario.name
    return plan


def running_on(layout: Layout) -> tuple[str, ...]:
    """The schedules whose orders run on problems laid out as ``layout``."""
    return tuple(name for name in NAMES if get(name).layout == layout)


def run(name: str, problem: Problem) -> Plan:
    """Generate ``name``'s order for ``problem``, simulate it, measure it and validate it."""
    from opplan.outputs import Provenance
    from opplan.simulate import make_plan

    schedule = get(name)
    return make_plan(problem, schedule.order(problem), Provenance(producer="baseline", schedule=schedule.name))


__all__ = [
    "NAMES",
    "ZBH1",
    "ZBH2",
    "ZBV",
    "Baseline",
    "DualPipe",
    "DualPipeV",
    "GPipe",
    "Interleaved1F1B",
    "OneFOneB",
    "get",
    "run",
    "run_on",
    "running_on",
]
