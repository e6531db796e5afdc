"""Cut a model graph into pipeline stages (``opplan.layout`` places them on devices).

The cut is *contiguous along one deterministic topological order*: stage i holds a run of
consecutive operators, so every edge goes from an earlier stage to the same or a later one and the
stage graph is acyclic by construction. Among such cuts we take one that minimises the largest
stage time (F + B + W on the cluster's device 0) — the quantity that sets a pipeline's pace.
"""
from __future__ import annotations

from collections.abc import Sequence

from opplan.cluster import Cluster, uniform_cluster
from opplan.errors import OpplanError
from opplan.graph import ModelGraph


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


def device_balanced_cuts(costs: Sequence[float], devices: int, mirrored: bool) -> list[int]:
    """Cut points that balance what each *device* carries (a mirrored layout puts stages d and
    P−1−d on device d), then the largest stage: a hill climb from the stage-balanced cut, moving one
    cut point up to three items at a time. With communication at zero cost (it overlaps compute at
    operator level) this balances each device's compute, which sets its idle time."""
    prefix = [0.0]
    for c in costs:
        prefix.append(prefix[-1] + c)

    def score(cuts: list[int]) -> tuple[float, float]:
        stage = [prefix[b] - prefix[a] for a, b in zip(cuts, cuts[1:])]
        per_device = [stage[d] + stage[devices - 1 - d] for d in range(devices)] if mirrored else stage
        return max(per_device), max(stage)

    best = split_costs(costs, devices)
    best_score = score(best)
    improved = True
    while improved:
        improved = False
        for i in range(1, devices):
            for step in (-3, -2, -1, 1, 2, 3):
                trial = list(best)
                trial[i] += step
                if trial[i - 1] < trial[i] < trial[i + 1] and score(trial) < best_score:
                    best, best_score, improved = trial, score(trial), True
    return best
