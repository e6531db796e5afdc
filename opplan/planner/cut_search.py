"""Upper-level search: move stage boundaries to where the *schedule* is best, not the stage sum.

The balanced cut minimises the largest stage's F+B+W, which ignores transfers, the split of B
and W, memory and how a DAG's branches interleave. Starting from it, a hill climb shifts one
boundary of the topological order by one operator at a time and keeps a move when the best
quick plan of the new partition (list scheduling, and the hand-designed schedule of the
placement; validated, within the caps) is shorter.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from opplan.cluster import Cluster
from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.layout import CONTIGUOUS, MIRRORED, Layout
from opplan.partition import balanced_partition, device_balanced_cuts, operator_costs, split_costs
from opplan.problem import Problem
from opplan.simulate import make_plan

# the hand-designed schedule that also scores a cut of each layout
_SCORING_BASELINE = {CONTIGUOUS: "zb-h1", MIRRORED: "dualpipe"}


def _score(problem: Problem, layout: Layout) -> float:
    from opplan import baselines
    from opplan.planner.heuristic import list_schedule

    plans = []
    for rule in ("backward-first", "eager-w"):
        order = list_schedule(problem, rule)
        if order is not None:
            plans.append(make_plan(problem, order))
    try:
        plans.append(baselines.run(_SCORING_BASELINE[layout], problem))
    except OpplanError:
        pass   # its preconditions do not hold here
    return min((p.metrics.makespan for p in plans if p.valid), default=float("inf"))


def searched_cut(model: ModelGraph, cluster: Cluster, microbatches: int, layout: Layout = CONTIGUOUS,
                 overlap_factor: float = 1.0, budget_seconds: float = 10.0, granularity: str = "stage",
                 should_stop: Callable[[], bool] | None = None) -> Problem:
    """A cut of the topological order into one model stage per device, laid out as ``layout``
    (contiguous or mirrored), whose quick plans are shortest. ``microbatches`` is the user's M."""
    if layout not in _SCORING_BASELINE:
        raise OpplanError(f"searched cuts support the {' and '.join(x.name for x in _SCORING_BASELINE)} layouts, "
                          f"not {layout.name}")
    began = time.perf_counter()
    costs = operator_costs(model, cluster)
    order = [op for op, _ in costs]
    if len(order) < cluster.size:
        balanced_partition(model, cluster.size, cluster)      # raises the clear "too few operators" error

    def build(c: list[int]) -> Problem:
        return layout.model_problem(model, cluster, microbatches, overlap_factor,
                                    groups=[order[a:b] for a, b in zip(c, c[1:])], granularity=granularity)

    # two starts: stages balanced, and each device's own work balanced (at operator level without
    # the all-to-all, which runs beside the compute); the climb starts from the better one
    overlapped = granularity != "stage"
    own_work = [0.0 if overlapped and model.operator(op).kind == "communication" else cost for op, cost in costs]
    starts = [split_costs([cost for _, cost in costs], cluster.size),
              device_balanced_cuts(own_work, cluster.size, mirrored=layout == MIRRORED)]
    scored = []
    for start in starts:
        try:
            problem = build(start)
        except OpplanError:
            continue
        scored.append((_score(problem, layout), start, problem))
    if not scored:
        raise OpplanError(f"no cut of {model.name!r} into {cluster.size} stages could be placed as {layout.name}")
    best_score, cuts, best = min(scored, key=lambda x: x[0])
    improved = True

    def out_of_time() -> bool:
        return time.perf_counter() - began >= budget_seconds or (should_stop is not None and should_stop())

    while improved and not out_of_time():
        improved = False
        for i in range(1, len(cuts) - 1):
            for delta in (-1, 1):
                trial = list(cuts)
                trial[i] += delta
                if not trial[i - 1] < trial[i] < trial[i + 1]:
                    continue
                try:
                    problem = build(trial)
                except OpplanError:
                    continue
                score = _score(problem, layout)
                if score < best_score - 1e-9:
                    best, best_score, cuts, improved = problem, score, trial, True
                if out_of_time():
                    return best
    return best
