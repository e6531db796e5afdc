"""Balanced contiguous partitions and the placements the schedule families need."""
import itertools
import random

import pytest

from opplan.cluster import uniform_cluster
from opplan.errors import OpplanError
from opplan.graph import Edge, ModelGraph, Operator, PassCosts, uniform_chain
from opplan.partition import (balanced_partition, interleaved_placement, mirrored_placement, partitioned_problem,
                              placement_for, split_costs, v_placement)


def brute_force_max(costs, k):
    n = len(costs)
    best = float("inf")
    for cuts in itertools.combinations(range(1, n), k - 1):
        bounds = (0,) + cuts + (n,)
        best = min(best, max(sum(costs[a:b]) for a, b in zip(bounds, bounds[1:])))
    return best


@pytest.mark.parametrize("seed", range(25))
def test_split_is_optimal_against_brute_force(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 9)
    costs = [rng.choice([0.0, 0.5, 1.0, 2.0, 3.5, 7.0]) for _ in range(n)]
    for k in range(1, n + 1):
        cuts = split_costs(costs, k)
        assert cuts[0] == 0 and cuts[-1] == n and len(cuts) == k + 1
        assert all(a < b for a, b in zip(cuts, cuts[1:])), "every stage needs an operator"
        got = max(sum(costs[a:b]) for a, b in zip(cuts, cuts[1:]))
        assert got == pytest.approx(brute_force_max(costs, k))


def test_too_many_stages_is_a_clear_error():
    with pytest.raises(OpplanError, match="3 operator"):
        balanced_partition(uniform_chain(3), 4)
    with pytest.raises(OpplanError, match="positive integer"):
        split_costs([1.0], 0)


def branchy_model():
    ops = [Operator(f"op{i}", PassCosts(1 + i % 4, 1.0, 0.5)) for i in range(10)]
    edges = [Edge("op0", "op1"), Edge("op0", "op2"), Edge("op1", "op3"), Edge("op2", "op3"), Edge("op3", "op4"),
             Edge("op4", "op5"), Edge("op4", "op6"), Edge("op5", "op7"), Edge("op6", "op7"), Edge("op7", "op8"),
             Edge("op8", "op9"), Edge("op1", "op9")]
    return ModelGraph("branchy", tuple(ops), tuple(edges))


def test_partition_is_contiguous_topological_deterministic_and_acyclic():
    model = branchy_model()
    order = model.topological_order()
    for k in range(1, 11):
        groups = balanced_partition(model, k)
        assert [op for g in groups for op in g] == order
        assert groups == balanced_partition(model, k)
        for kind in ("contiguous", "interleaved", "v", "mirrored"):
            if kind in ("interleaved", "v", "mirrored") and 2 * k > 10:
                continue
            cluster = uniform_cluster(k)
            problem = partitioned_problem(model, cluster, kind, 4, chunks=2)   # Problem checks acyclicity
            assert all(e.src < e.dst for e in problem.edges)


def test_partition_balances_a_uniform_chain():
    groups = balanced_partition(uniform_chain(16), 4)
    assert [len(g) for g in groups] == [4, 4, 4, 4]


def test_placements():
    assert placement_for("contiguous", 4) == [0, 1, 2, 3]
    assert interleaved_placement(3, 2) == [0, 1, 2, 0, 1, 2]
    assert v_placement(4) == [0, 1, 2, 3, 3, 2, 1, 0]
    assert mirrored_placement(4) == v_placement(4)
    with pytest.raises(OpplanError, match="unknown placement"):
        placement_for("spiral", 4)


def test_mirrored_problem_duplicates_stages_in_two_independent_chains():
    model = uniform_chain(8, param_bytes=2.0)
    problem = partitioned_problem(model, uniform_cluster(4), "mirrored", 5)
    assert problem.num_stages == 8 and problem.microbatches == 5
    assert [s.device for s in problem.stages] == [0, 1, 2, 3, 3, 2, 1, 0]
    assert problem.stages[4].operators == problem.stages[0].operators
    assert sorted((e.src, e.dst) for e in problem.edges) == [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6), (6, 7)]
    assert [problem.param_bytes(d) for d in range(4)] == [8.0] * 4     # 2x the 4.0 of one stage
    assert problem.activation_unit_bytes == pytest.approx(2.0)          # one device's share of the model
