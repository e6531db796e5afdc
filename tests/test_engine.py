"""Task graph, simulator, validator and metrics on hand-checked cases and on random ones."""
import dataclasses
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opplan.cluster import Cluster, Device, Link, uniform_cluster
from opplan.errors import OpplanError
from opplan.graph import Edge, ModelGraph, Operator, PassCosts
from opplan.outputs import Provenance
from opplan.problem import stage_problem, uniform_problem
from opplan.schedule import Order, Plan, load_plan, order_from_lists, save_plan
from opplan.simulate import DeadlockError, make_plan, simulate
from opplan.tasks import build_task_graph
from opplan.validate import validate


def gpipe_lists(P, M):
    return [[f"{s}F{m}" for m in range(M)] + [f"{s}BW{m}" for m in range(M)] for s in range(P)]


def test_task_graph_counts_and_dependencies():
    problem = uniform_problem(3, 2)
    tg = build_task_graph(problem)
    assert len(tg) == 3 * 2 * 3

    def dep_names(key):
        return sorted(tg.keys[i] for i in tg.deps[tg.index[key]])

    assert dep_names("1F0") == ["0F0"]
    assert dep_names("1B0") == ["1F0", "2B0"]
    assert dep_names("2B1") == ["2F1"]
    assert dep_names("0W1") == ["0B1"]
    full = build_task_graph(problem, "full")
    assert len(full) == 3 * 2 * 2
    assert sorted(full.keys[i] for i in full.deps[full.index["0BW0"]]) == ["0F0", "1BW0"]


def test_gpipe_matches_hand_computation():
    plan = make_plan(uniform_problem(4, 8), order_from_lists(uniform_problem(4, 8), gpipe_lists(4, 8)))
    assert plan.valid, plan.violations
    assert plan.metrics.makespan == 8 * 3 + 3 * 3
    assert plan.metrics.bubble == [9.0] * 4
    assert plan.metrics.peak_activations == [8.0] * 4
    assert math.isclose(plan.metrics.bubble_ratio, 1 - 4 * 24 / (4 * 33))
    assert plan.metrics.lower_bound == 27.0  # last device: 3 of forward first, then 24 of work


def test_deadlock_names_the_stuck_tasks():
    problem = uniform_problem(2, 1)
    order = Order({"dev0": ("0B0", "0W0", "0F0"), "dev1": ("1F0", "1B0", "1W0")})
    with pytest.raises(DeadlockError, match=r"dev0 stuck at 0B0 waiting for .*0F0"):
        simulate(problem, order)


@pytest.mark.parametrize("order, needle", [
    ({"dev0": ("0F0", "0B0", "0W0"), "dev1": ("1F0", "1B0")}, "omits 1 task"),
    ({"dev0": ("0F0", "0F0", "0B0", "0W0"), "dev1": ("1F0", "1B0", "1W0")}, "twice"),
    ({"dev0": ("0F0", "0B0", "0W0", "1F0"), "dev1": ("1B0", "1W0")}, "runs on dev1"),
    ({"dev0": ("0F0", "0B0", "0W0", "9F9"), "dev1": ("1F0", "1B0", "1W0")}, "unknown task '9F9'"),
    ({"gpu7": ("0F0",)}, "neither a device"),
])
def test_malformed_orders(order, needle):
    with pytest.raises(OpplanError, match=needle):
        simulate(uniform_problem(2, 1), Order(order))


def test_overlapped_block_takes_the_overlap_factor():
    problem = uniform_problem(2, 2, placement=[0, 0], fb_overlap=1.5)  # two stages on one device
    order = Order({"dev0": ("0F0", "1F0", "(0F1;1BW0)", "1F1", "0BW0", "1BW1", "0BW1")})
    tasks = {t.task: t for t in simulate(problem, order)}
    assert tasks["0F1"].start == tasks["1B0"].start == 2.0
    assert tasks["0F1"].end == tasks["1W0"].end == 3.5
    plan = make_plan(problem, order)
    assert plan.valid, plan.violations


def test_transfers_run_on_links_and_delay_consumers():
    ops = tuple(Operator(f"o{i}", PassCosts(1.0, 1.0, 1.0), activation_bytes=10) for i in range(2))
    model = ModelGraph("two", ops, (Edge("o0", "o1", 2e9),))
    cluster = Cluster((Device("a"), Device("b")), Link(bandwidth_gbytes_per_s=1000, latency_ms=0.5))
    problem = stage_problem(model, cluster, [["o0"], ["o1"]], [0, 1], 2)
    assert problem.edges[0].transfer_ms == pytest.approx(2.5)
    plan = make_plan(problem, order_from_lists(problem, [["0F0", "0F1", "0B0", "0W0", "0B1", "0W1"],
                                                         ["1F0", "1B0", "1W0", "1F1", "1B1", "1W1"]]))
    assert plan.valid, plan.violations
    times = {t.task: t for t in plan.tasks}
    assert times["0>1F0"].resource == "a->b"
    assert times["1F0"].start == pytest.approx(1 + 2.5)
    assert times["1>0B0"].resource == "b->a"
    assert times["0B0"].start == pytest.approx(times["1>0B0"].end)


def test_plan_json_round_trip(tmp_path):
    problem = uniform_problem(3, 4, memory_units=6)
    plan = make_plan(problem, order_from_lists(problem, gpipe_lists(3, 4)), Provenance(schedule="gpipe"))
    path = tmp_path / "plan.json"
    save_plan(plan, path)
    loaded = load_plan(path)
    assert loaded.problem == plan.problem
    assert loaded.tasks == plan.tasks
    assert loaded.order == plan.order
    assert loaded.metrics == plan.metrics
    assert loaded.provenance == plan.provenance
    assert validate(loaded) == []


def test_infinity_is_null_in_plan_files(tmp_path):
    """No cap is infinite memory; JSON has no infinity, so every output writes it as null."""
    problem = uniform_problem(2, 2)
    plan = make_plan(problem, order_from_lists(problem, gpipe_lists(2, 2)))
    data = plan.to_dict()
    assert data["metrics"]["memory_cap_bytes"] == [None, None]
    assert all(d["memory_bytes"] is None for d in data["problem"]["devices"])
    text = json.dumps(data, allow_nan=False)          # would raise on a bare Infinity
    loaded = Plan.from_dict(json.loads(text))
    assert loaded.metrics.memory_cap_bytes == [math.inf, math.inf]


@pytest.mark.parametrize("section, value, message", [
    ("metrics", [1, 2], "metrics must be an object"),
    ("provenance", "opplan", "provenance must be an object"),
    ("provenance", {"status": "great"}, "plan status must be one of"),
    ("provenance", {"colour": "red"}, "unknown field 'colour'"),
    ("tasks", {"0F0": 1}, "'tasks' must be a list"),
])
def test_malformed_plan_sections_give_one_line(section, value, message):
    problem = uniform_problem(2, 2)
    data = make_plan(problem, order_from_lists(problem, gpipe_lists(2, 2))).to_dict()
    data[section] = value
    with pytest.raises(OpplanError, match=message):
        Plan.from_dict(data)


# --- corrupted plans: each defect is reported under its own rule -------------------------------
def _valid_plan():
    problem = uniform_problem(3, 3, memory_units=3)
    order = order_from_lists(problem, [[f"{s}{p}{m}" for m in range(3) for p in ("F", "B", "W")] for s in range(3)])
    plan = make_plan(problem, order)
    assert plan.valid, plan.violations
    return plan


def _replace(plan, key, **changes):
    tasks = [t._replace(**changes) if t.task == key else t for t in plan.tasks]
    return Plan(plan.problem, plan.order, tasks)


def _rules(plan):
    return {v.rule for v in validate(plan)}


def test_corrupt_task_moved_earlier():
    plan = _valid_plan()
    t = next(t for t in plan.tasks if t.task == "2F0")
    assert 3 in _rules(_replace(plan, "2F0", start=t.start - 1, end=t.end - 1))


def test_corrupt_two_tasks_overlap():
    plan = _valid_plan()
    t = next(t for t in plan.tasks if t.task == "0F1")
    assert 4 in _rules(_replace(plan, "0F1", start=t.start - 0.5, end=t.end - 0.5))


def test_corrupt_memory_over_cap():
    plan = _valid_plan()
    tight = Plan(plan.problem.with_memory(0.5), plan.order, plan.tasks)
    assert _rules(tight) == {6}


def test_corrupt_missing_task_and_wrong_device_and_duration_and_metrics():
    plan = _valid_plan()
    missing = Plan(plan.problem, plan.order, [t for t in plan.tasks if t.task != "1W2"])
    assert _rules(missing) == {1}
    moved = _replace(plan, "1W2", resource="dev0")
    assert 5 in _rules(moved)
    stretched = _replace(plan, "1W2", end=next(t.end for t in plan.tasks if t.task == "1W2") + 4)
    assert 2 in _rules(stretched)
    lying = Plan(plan.problem, plan.order, plan.tasks, dataclasses.replace(plan.metrics, makespan=1.0))
    assert _rules(lying) == {7}


def test_corrupt_dependency_broken_by_swapping_passes():
    plan = _valid_plan()
    b = next(t for t in plan.tasks if t.task == "1B0")
    w = next(t for t in plan.tasks if t.task == "1W0")
    swapped = Plan(plan.problem, plan.order, [t._replace(start=w.start, end=w.end) if t.task == "1B0" else
                                              t._replace(start=b.start, end=b.end) if t.task == "1W0" else t
                                              for t in plan.tasks])
    assert 3 in _rules(swapped)


# --- property: random DAGs, clusters and orders simulate into valid plans ----------------------
@st.composite
def random_instances(draw):
    n_ops = draw(st.integers(1, 7))
    ops = tuple(Operator(f"o{i}", PassCosts(draw(st.floats(0.1, 3)), draw(st.floats(0.1, 3)), draw(st.floats(0, 2))),
                         activation_bytes=draw(st.floats(0, 5)), param_bytes=draw(st.floats(0, 2)))
                for i in range(n_ops))
    edges = tuple(Edge(f"o{i}", f"o{j}", draw(st.floats(0, 3e9)))
                  for i in range(n_ops) for j in range(i + 1, n_ops) if draw(st.booleans()))
    model = ModelGraph("random", ops, edges)
    n_dev = draw(st.integers(1, 4))
    cluster = Cluster(tuple(Device(f"d{i}", speed=draw(st.floats(0.5, 2))) for i in range(n_dev)),
                      Link(draw(st.floats(100, 1000)), draw(st.floats(0, 1))))
    placement = [draw(st.integers(0, n_dev - 1)) for _ in range(n_ops)]
    micro = draw(st.integers(1, 4))
    problem = stage_problem(model, cluster, [[op.id] for op in ops], placement, micro,
                            overlap_factor=draw(st.floats(0.5, 1.0)))
    # a random topological interleaving of each device's tasks is a valid order
    tg = build_task_graph(problem)
    indeg = [len(d) for d in tg.deps]
    succ = [[] for _ in range(len(tg))]
    for j, deps in enumerate(tg.deps):
        for i in deps:
            succ[i].append(j)
    ready = [i for i in range(len(tg)) if indeg[i] == 0]
    seqs = {d.name: [] for d in problem.devices}
    while ready:
        i = ready.pop(draw(st.integers(0, len(ready) - 1)))
        if tg.pass_[i] != "T":
            seqs[tg.resource[i]].append(tg.keys[i])
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
    return problem, Order({k: tuple(v) for k, v in seqs.items()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_instances())
def test_random_orders_simulate_to_valid_plans(instance):
    problem, order = instance
    plan = make_plan(problem, order)
    assert plan.violations == []
    lb = plan.metrics.lower_bound
    assert plan.metrics.makespan >= lb - 1e-9
    for bubble, busy in zip(plan.metrics.bubble, plan.metrics.busy):
        assert bubble == pytest.approx(plan.metrics.makespan - busy)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_instances(), st.sampled_from(["earlier", "missing", "overlap"]))
def test_random_corruptions_are_caught(instance, defect):
    problem, order = instance
    plan = make_plan(problem, order)
    compute = [t for t in plan.tasks if ">" not in t.task and t.end > t.start]
    if defect == "earlier":
        victim = max(plan.tasks, key=lambda t: (t.start, t.task))
        if victim.start <= 0:
            return
        # ASAP started it late for a reason (an input or its resource): at time 0 that reason bites
        bad = _replace(plan, victim.task, start=0.0, end=victim.end - victim.start)
        assert _rules(bad) & {3, 4}
    elif defect == "missing":
        bad = Plan(problem, plan.order, plan.tasks[1:])
        assert 1 in _rules(bad)
    else:
        by_res = {}
        for t in compute:
            by_res.setdefault(t.resource, []).append(t)
        pair = next((sorted(ts, key=lambda t: t.start)[:2] for ts in by_res.values() if len(ts) >= 2), None)
        if pair is None:
            return
        first, second = pair
        bad = _replace(plan, second.task, start=first.start, end=first.start + (second.end - second.start))
        assert 4 in _rules(bad)


def test_uniform_cluster_presets():
    c = uniform_cluster(2, accelerator="a100")
    assert c.devices[0].peak_tflops == 312.0
    with pytest.raises(OpplanError, match="unknown accelerator"):
        uniform_cluster(2, accelerator="tpu9")
