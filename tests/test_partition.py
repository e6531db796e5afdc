"""Balanced contiguous partitions and the layouts the schedule families need."""
import itertools
import random

import pytest

from opplan.cluster import uniform_cluster
from opplan.errors import OpplanError
from opplan.graph import Edge, ModelGraph, Operator, PassCosts, uniform_chain
from opplan.layout import CONTIGUOUS, MIRRORED, V_SHAPE, Layout, interleaved
from opplan.partition import balanced_partition, split_costs


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
        for layout in (CONTIGUOUS, interleaved(2), V_SHAPE, MIRRORED):
            if (layout.chunks == 2 and 2 * k > 10) or (layout == MIRRORED and k % 2):
                continue
            cluster = uniform_cluster(k)
            problem = layout.model_problem(model, cluster, 4)   # Problem checks acyclicity
            assert all(e.src < e.dst for e in problem.edges)


def test_partition_balances_a_uniform_chain():
    groups = balanced_partition(uniform_chain(16), 4)
    assert [len(g) for g in groups] == [4, 4, 4, 4]


@pytest.mark.parametrize("layout, devices, placement", [
    (CONTIGUOUS, 4, [0, 1, 2, 3]),
    (interleaved(2), 3, [0, 1, 2, 0, 1, 2]),
    (interleaved(3), 2, [0, 1, 0, 1, 0, 1]),
    (V_SHAPE, 4, [0, 1, 2, 3, 3, 2, 1, 0]),
    (MIRRORED, 4, [0, 1, 2, 3, 3, 2, 1, 0]),
])
def test_layout_maps_stages_to_devices(layout, devices, placement):
    assert layout.placement(devices) == placement
    assert layout.stages(devices) == len(placement)
    assert [layout.device_of(s, devices) for s in range(len(placement))] == placement


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "spiral"}, "spiral"),
    ({"kind": "v", "chunks": 3}, "2 stages per device"),
    ({"kind": "contiguous", "chunks": 2}, "1 stage per device"),
    ({"kind": "interleaved", "chunks": 0}, "positive integer"),
    ({"kind": "contiguous", "microbatch_split": 2}, "only the mirrored layout"),
])
def test_bad_layouts_are_refused(kwargs, message):
    with pytest.raises((OpplanError, ValueError), match=message):
        Layout(**kwargs)


@pytest.mark.parametrize("devices, microbatches, message", [
    (3, 8, "even number of devices"), (4, 7, "even number of micro-batches"), (0, 8, "devices must be a positive integer"),
])
def test_mirrored_layout_preconditions(devices, microbatches, message):
    with pytest.raises(OpplanError, match=message):
        MIRRORED.check(devices, microbatches)


def test_mirrored_problem_duplicates_stages_in_two_independent_chains():
    model = uniform_chain(8, param_bytes=2.0)
    problem = MIRRORED.model_problem(model, uniform_cluster(4), 10)
    assert problem.num_stages == 8 and problem.microbatches == 5
    assert [s.device for s in problem.stages] == [0, 1, 2, 3, 3, 2, 1, 0]
    assert problem.stages[4].operators == problem.stages[0].operators
    assert sorted((e.src, e.dst) for e in problem.edges) == [(0, 1), (1, 2), (2, 3), (4, 5), (5, 6), (6, 7)]
    assert [problem.param_bytes(d) for d in range(4)] == [8.0] * 4     # 2x the 4.0 of one stage
    assert problem.activation_unit_bytes == pytest.approx(2.0)          # one device's share of the model


def test_device_balanced_cuts_even_out_what_each_mirrored_device_carries():
    """Mirrored: device d holds stages d and P-1-d. Stage-balanced cuts leave the middle devices
    light when the heavy items sit at both ends; balancing the pairs fixes that."""
    from opplan.partition import device_balanced_cuts, split_costs

    costs = [1] * 12 + [6]                         # a heavy head on the last stage

    def loads(cuts, mirrored):
        stage = [sum(costs[a:b]) for a, b in zip(cuts, cuts[1:])]
        return [stage[d] + stage[3 - d] for d in range(4)] if mirrored else stage

    even, balanced = split_costs(costs, 4), device_balanced_cuts(costs, 4, mirrored=True)
    assert balanced[0] == 0 and balanced[-1] == len(costs) and balanced == sorted(set(balanced))
    assert loads(even, True) == [10, 8, 8, 10]
    assert loads(balanced, True) == [9, 9, 9, 9]
    # contiguous: a device is a stage, and the stage-balanced cut is already optimal
    assert max(loads(device_balanced_cuts(costs, 4, mirrored=False), False)) == max(loads(even, False))
