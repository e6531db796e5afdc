"""The simulator's prediction for a run: the plan's own order, re-timed with the task times the run
measured while calibrating. This is the check that the cost model tells the truth: only the
per-task times come from the machine; how they compose into an iteration is the simulator's claim.
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import replace

from opplan.errors import OpplanError
from opplan.problem import Problem
from opplan.schedule import Plan
from opplan.simulate import make_plan


def mean_times(records: Iterable[tuple[int, str, float]]) -> dict[str, float]:
    """``(stage, kind, ms)`` records (kind F, I, W or B = full backward) as ``{"2F": mean ms}``: the
    mean, not the median, because an iteration's time adds task times up, and on a shared machine
    their distribution has a long tail (a preempted task) that the sum pays for."""
    groups: dict[str, list[float]] = defaultdict(list)
    for stage, kind, ms in records:
        groups[f"{stage}{kind}"].append(ms)
    return {key: statistics.fmean(values) for key, values in sorted(groups.items())}


def calibrated_problem(problem: Problem, times: Mapping[str, float], link_ms: float,
                       action_overhead_ms: float = 0.0) -> Problem:
    """``problem`` with every stage's F, B (input gradient) and W set to the measured means plus
    the runtime's own time per action, every cross-device edge taking ``link_ms``, no memory cap
    and no gain from overlapped F&B pairs (the runtime runs a pair's two actions one after the
    other). A stage measured only as a full backward (one action) splits it evenly: its blocks
    then take exactly the measured time."""
    stages = []
    for s, stage in enumerate(problem.stages):
        if f"{s}F" not in times:
            raise OpplanError(f"no forward of stage {s} was measured")
        if f"{s}I" in times and f"{s}W" in times:
            grad, weight = times[f"{s}I"] + action_overhead_ms, times[f"{s}W"] + action_overhead_ms
        elif f"{s}B" in times:
            grad = weight = (times[f"{s}B"] + action_overhead_ms) / 2
        else:
            raise OpplanError(f"no backward of stage {s} was measured")
        stages.append(replace(stage, forward=times[f"{s}F"] + action_overhead_ms, input_grad=grad, weight_grad=weight))
    edges = tuple(replace(e, transfer_ms=link_ms if problem.stages[e.src].device != problem.stages[e.dst].device
                          else 0.0) for e in problem.edges)
    return Problem(tuple(stages), edges, problem.devices, problem.microbatches, 1.0, problem.activation_unit_bytes,
                   problem.name).with_memory(math.inf)


def predict(plan: Plan, times: Mapping[str, float], link_ms: float, action_overhead_ms: float = 0.0) -> Plan:
    """The plan's order on the calibrated problem: simulated and validated like every other plan."""
    predicted = make_plan(calibrated_problem(plan.problem, times, link_ms, action_overhead_ms), plan.order,
                          plan.provenance)
    if not predicted.valid:
        raise OpplanError(f"the calibrated prediction breaks a rule: {predicted.violations[0]}")
    return predicted


def predict_from_calibration(plan: Plan, ranks: Iterable[Mapping[str, object]],
                             link_ms: float) -> tuple[dict[str, float], float, float]:
    """What rank 0 computes between calibrating and the timed iterations, from every rank's
    ``{"calibration": [(stage, kind, ms)], "gaps": [ms]}``: (task times, time per action, predicted ms)."""
    ranks = list(ranks)
    times = mean_times(rec for out in ranks for rec in out["calibration"])       # type: ignore[union-attr]
    gaps = [gap for out in ranks for gap in out["gaps"]]                          # type: ignore[union-attr]
    overhead_ms = max(0.0, statistics.fmean(gaps)) if gaps else 0.0
    return times, overhead_ms, predict(plan, times, link_ms, overhead_ms).makespan
