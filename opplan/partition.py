"""Cut a model graph into pipeline stages and place them the way each schedule family needs.

The cut is *contiguous along one deterministic topological order*: stage i holds a run of
consecutive operators, so every edge goes from an earlier stage to the same or a later one and the
stage graph is acyclic by construction. Among such cuts we take one that minimises the largest
stage time (F + B + W on the cluster's device 0) — the quantity that sets a pipeline's pace.

Placements (stage index -> device), P = number of devices:
  contiguous   P stages, stage i on device i                          (GPipe, 1F1B, ZB-H1/H2)
  interleaved  v·P stages, stage i on device i mod P                  (interleaved 1F1B)
  v            2P stages, stage i on device i (i < P) or 2P-1-i        (ZB-V, DualPipeV)
  mirrored     P model stages held twice: problem stage j (< P) on device j carries the
               forward direction, problem stage P+j is a copy of model stage j on device
               P-1-j carrying the reverse direction; device r holds problem stages r and
               2P-1-r, i.e. model stages r and P-1-r (DualPipe, 2x parameters)
"""
from __future__ import annotations

import bisect
from dataclasses import replace
from typing import Sequence

from opplan.cluster import Cluster, uniform_cluster
from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.problem import Problem, StageEdge, stage_problem
from opplan.units import activation_unit_bytes

PLACEMENTS = ("contiguous", "interleaved", "v", "mirrored")


# --- the cut ------------------------------------------------------------------------------------
def operator_costs(model: ModelGraph, cluster: Cluster | None = None, device: int = 0) -> list[tuple[str, float]]:
    """(operator id, F+B+W time on ``device``) along the model's deterministic topological order."""
    cluster = cluster or uniform_cluster(max(1, device + 1))
    if not 0 <= device < cluster.size:
        raise OpplanError(f"device {device} is not in the cluster ({cluster.size} devices)")
    return [(op_id, sum(cluster.operator_times(model.operator(op_id), device)))
            for op_id in model.topological_order()]


def split_costs(costs: Sequence[float], k: int) -> list[int]:
    """Cut points 0 = c0 < c1 < ... < ck = n minimising the largest segment sum (exact DP).

    ``best[j][i]`` is the least possible maximum when the first i items form j segments. For a
    fixed i, ``best[j-1][p]`` grows with p while the last segment ``S[i] - S[p]`` shrinks, so the
    optimal p sits where the two cross: a binary search per cell gives O(k·n·log n).
    """
    n = len(costs)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise OpplanError(f"number of stages must be a positive integer, got {k!r}")
    if k > n:
        raise OpplanError(f"cannot cut {n} operator(s) into {k} stages: every stage needs at least one operator")
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + c)
    inf = float("inf")
    best = [[inf] * (n + 1) for _ in range(k + 1)]
    choice = [[0] * (n + 1) for _ in range(k + 1)]
    for i in range(1, n + 1):
        best[1][i] = prefix[i]
    for j in range(2, k + 1):
        prev = best[j - 1]
        for i in range(j, n - (k - j) + 1):
            lo, hi = j - 1, i - 1            # p: the first j-1 segments cover items [0, p)
            # first p in [lo, hi] with prev[p] >= last segment S[i] - S[p]
            a, b = lo, hi + 1
            while a < b:
                mid = (a + b) // 2
                if prev[mid] >= prefix[i] - prefix[mid]:
                    b = mid
                else:
                    a = mid + 1
            best_val, best_p = inf, lo
            for p in (a - 1, a):
                if lo <= p <= hi:
                    val = max(prev[p], prefix[i] - prefix[p])
                    if val < best_val - 1e-12:
                        best_val, best_p = val, p
            best[j][i] = best_val
            choice[j][i] = best_p
    cuts = [n]
    i = n
    for j in range(k, 1, -1):
        i = choice[j][i]
        cuts.append(i)
    cuts.append(0)
    return cuts[::-1]


def balanced_partition(model: ModelGraph, stages: int, cluster: Cluster | None = None) -> list[list[str]]:
    """Operator groups of ``stages`` contiguous, cost-balanced runs of the topological order."""
    costs = operator_costs(model, cluster)
    if stages > len(costs):
        raise OpplanError(f"model {model.name!r} has {len(costs)} operator(s), too few for {stages} stages "
                          "(every stage needs at least one operator)")
    cuts = split_costs([c for _, c in costs], stages)
    ids = [op_id for op_id, _ in costs]
    return [ids[a:b] for a, b in zip(cuts, cuts[1:])]


# --- placements ---------------------------------------------------------------------------------
def contiguous_placement(devices: int) -> list[int]:
    return list(range(devices))


def interleaved_placement(devices: int, chunks: int) -> list[int]:
    return [i % devices for i in range(chunks * devices)]


def v_placement(devices: int) -> list[int]:
    """2P stages down and back up: device r holds stages r and 2P-1-r."""
    return list(range(devices)) + list(range(devices - 1, -1, -1))


def mirrored_placement(devices: int) -> list[int]:
    """Same device map as the V (device r holds problem stages r and 2P-1-r); the difference is
    in the edges: the two halves are independent chains, one per direction."""
    return v_placement(devices)


def stages_for(kind: str, devices: int, chunks: int = 1) -> int:
    """Problem stages a placement kind uses on ``devices`` devices."""
    if kind == "contiguous":
        return devices
    if kind == "interleaved":
        return chunks * devices
    if kind in ("v", "mirrored"):
        return 2 * devices
    raise OpplanError(f"unknown placement {kind!r} (known: {', '.join(PLACEMENTS)})")


def placement_for(kind: str, devices: int, chunks: int = 1) -> list[int]:
    if kind == "contiguous":
        return contiguous_placement(devices)
    if kind == "interleaved":
        return interleaved_placement(devices, chunks)
    if kind == "v":
        return v_placement(devices)
    if kind == "mirrored":
        return mirrored_placement(devices)
    raise OpplanError(f"unknown placement {kind!r} (known: {', '.join(PLACEMENTS)})")


# --- problems from a model ---------------------------------------------------------------------
def _with_unit(problem: Problem, unit: float | None, name: str) -> Problem:
    """Report activations in units of one device's share of the model (a 1F1B stage), so the
    numbers of every schedule on the same model are comparable."""
    return replace(problem, activation_unit_bytes=unit if unit and unit > 0 else problem.activation_unit_bytes,
                   name=name)


def partitioned_problem(model: ModelGraph, cluster: Cluster, kind: str, microbatches: int,
                        chunks: int = 1, overlap_factor: float = 1.0,
                        groups: Sequence[Sequence[str]] | None = None) -> Problem:
    """Partition ``model`` for a placement kind on every device of ``cluster`` and build the problem.

    For ``mirrored`` (DualPipe) ``microbatches`` is the number per direction: each micro-batch index
    of the problem runs once through each of the two chains. ``groups`` overrides the balanced cut
    (the planner's upper level searches over cuts).
    """
    devices = cluster.size
    unit = activation_unit_bytes(model, devices)
    if kind == "mirrored":
        groups = groups or balanced_partition(model, devices, cluster)
        down = stage_problem(model, cluster, groups, contiguous_placement(devices), microbatches, overlap_factor)
        up = stage_problem(model, cluster, groups, [devices - 1 - j for j in range(devices)], microbatches,
                           overlap_factor)
        stages = tuple(replace(s, name=f"{s.name}.fwd") for s in down.stages) \
            + tuple(replace(s, name=f"{s.name}.rev") for s in up.stages)
        edges = down.edges + tuple(StageEdge(e.src + devices, e.dst + devices, e.bytes, e.transfer_ms)
                                   for e in up.edges)
        problem = Problem(stages, edges, down.devices, microbatches, overlap_factor, down.activation_unit_bytes,
                          model.name)
        return _with_unit(problem, unit, f"{model.name} (mirrored, {devices} devices)")
    n_stages = stages_for(kind, devices, chunks)
    groups = groups or balanced_partition(model, n_stages, cluster)
    problem = stage_problem(model, cluster, groups, placement_for(kind, devices, chunks), microbatches,
                            overlap_factor)
    return _with_unit(problem, unit, f"{model.name} ({kind}, {n_stages} stages on {devices} devices)")
