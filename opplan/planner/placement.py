"""Upper-level search: move stage boundaries to where the *schedule* is best, not the stage sum.

The balanced cut minimises the largest stage's F+B+W, which ignores transfers, the split of B
and W, memory and how a DAG's branches interleave. Starting from it, a hill climb shifts one
boundary of the topological order by one operator at a time and keeps a move when the best
list-scheduling plan of the new partition (validated, within the caps) is shorter.
"""
from __future__ import annotations

import time
from dataclasses import replace

from opplan.cluster import Cluster
from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.partition import balanced_partition, contiguous_placement
from opplan.problem import Problem, stage_problem
from opplan.simulate import make_plan


def _contiguous(model: ModelGraph, cluster: Cluster, order: list[str], cuts: list[int], microbatches: int,
                overlap_factor: float, unit: float | None) -> Problem:
    groups = [order[a:b] for a, b in zip(cuts, cuts[1:])]
    problem = stage_problem(model, cluster, groups, contiguous_placement(cluster.size), microbatches, overlap_factor)
    return replace(problem, activation_unit_bytes=unit or problem.activation_unit_bytes,
                   name=f"{model.name} (searched cut, {cluster.size} stages)")


def _score(problem: Problem) -> float:
    from opplan.planner.heuristic import RULES, list_schedule

    best = float("inf")
    for rule in ("backward-first", "eager-w"):
        order = list_schedule(problem, rule)
        if order is None:
            continue
        plan = make_plan(problem, order)
        if plan.valid:
            best = min(best, plan.metrics["makespan"])
    return best


def searched_contiguous(model: ModelGraph, cluster: Cluster, microbatches: int, overlap_factor: float = 1.0,
                        budget_seconds: float = 10.0) -> Problem:
    """A contiguous cut into one stage per device whose list-scheduling plan is shortest."""
    began = time.perf_counter()
    groups = balanced_partition(model, cluster.size, cluster)
    order = [op for g in groups for op in g]
    cuts = [0]
    for g in groups:
        cuts.append(cuts[-1] + len(g))
    unit = sum(op.activation_bytes for op in model.operators) / cluster.size
    best = _contiguous(model, cluster, order, cuts, microbatches, overlap_factor, unit)
    best_score = _score(best)
    improved = True
    while improved and time.perf_counter() - began < budget_seconds:
        improved = False
        for i in range(1, len(cuts) - 1):
            for delta in (-1, 1):
                trial = list(cuts)
                trial[i] += delta
                if not trial[i - 1] < trial[i] < trial[i + 1]:
                    continue
                try:
                    problem = _contiguous(model, cluster, order, trial, microbatches, overlap_factor, unit)
                except OpplanError:
                    continue
                score = _score(problem)
                if score < best_score - 1e-9:
                    best, best_score, cuts, improved = problem, score, trial, True
                if time.perf_counter() - began >= budget_seconds:
                    return best
    return best
