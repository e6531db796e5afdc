"""Communication streams: an all-to-all stage runs on its device's ``.comm`` stream beside compute.

The tiny problem is one device, compute ``a`` → all-to-all ``x`` → compute ``b``, two
micro-batches; a, b take F=2 B=2 W=1, the all-to-all F=1 B=1 W=0. Every number below is worked
out by hand in the comments.
"""
from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opplan.errors import OpplanError
from opplan.outputs import Metrics
from opplan.planner.api import PlannerOptions, _heuristic_plans
from opplan.planner.bounds import problem_lower_bound
from opplan.planner.heuristic import RULES, list_schedule, sequential_order
from opplan.planner.lower import improve
from opplan.problem import COMM_STREAM, COMPUTE_STREAM, DeviceSpec, Problem, Stage, StageEdge
from opplan.report import plan_summary, plan_text
from opplan.schedule import Order, Plan, TimedTask
from opplan.simulate import make_plan, simulate
from opplan.tasks import build_task_graph
from opplan.validate import validate


def tiny(memory: float = math.inf) -> Problem:
    stages = (Stage("a", 0, 2, 2, 1), Stage("x", 0, 1, 1, 0, stream=COMM_STREAM), Stage("b", 0, 2, 2, 1))
    return Problem(stages, (StageEdge(0, 1), StageEdge(1, 2)), (DeviceSpec("dev0", memory),), 2)


def order(text: str, comm: str | None = None) -> Order:
    seqs = {"dev0": tuple(text.split())}
    if comm is not None:
        seqs["dev0.comm"] = tuple(comm.split())
    return Order(seqs)


OVERLAPPED = "0F0 0F1 2F0 2F1 2B0 2W0 2B1 2W1 0B0 0W0 0B1 0W1"
EXPOSED = "0F0 2F0 0F1 2F1 2B0 2W0 2B1 2W1 0B0 0W0 0B1 0W1"

CASES = [
    # 0F0 [0,2]; 1F0 comm [2,3] under 0F1 [2,4]; 1F1 comm [4,5] under 2F0 [4,6] (micro-batch 1's
    # all-to-all hides under micro-batch 0's compute); 2F1 [6,8] 2B0 [8,10] 2W0 [10,11] with 1B0
    # [10,11]; 2B1 [11,13] 2W1 [13,14] with 1B1 [13,14]; 0B0 [14,16] 0W0 0B1 0W1 -> 20, no idle
    ("overlapped, comm stream first come first served", OVERLAPPED, None,
     {"1F0": 2, "1F1": 4, "2F0": 4, "1B0": 10, "1B1": 13, "0B0": 14, "0W1": 19}, 20.0, 0.0, 0.0),
    ("overlapped, comm stream listed", OVERLAPPED, "1F0 1F1 1B0 1W0 1B1 1W1",
     {"1F0": 2, "1F1": 4, "2F0": 4, "1B0": 10, "1B1": 13, "0B0": 14, "0W1": 19}, 20.0, 0.0, 0.0),
    # 0F0 [0,2]; 1F0 [2,3] with compute idle (exposed 1); 2F0 [3,5]; 0F1 [5,7]; 1F1 [7,8] idle
    # again (exposed 1); 2F1 [8,10]; 2B0 [10,12] 2W0 [12,13] || 1B0 [12,13]; 2B1 [13,15]
    # 2W1 [15,16] || 1B1 [15,16]; 0B0 [16,18] 0W0 [18,19] 0B1 [19,21] 0W1 [21,22]
    ("all-to-all exposed", EXPOSED, None,
     {"1F0": 2, "2F0": 3, "0F1": 5, "1F1": 7, "2F1": 8, "1B0": 12, "0B0": 16, "0W1": 21}, 22.0, 2.0, 2.0),
]


@pytest.mark.parametrize("name, compute, comm, starts, makespan, bubble, exposed", CASES, ids=[c[0] for c in CASES])
def test_tiny_problem_times(name, compute, comm, starts, makespan, bubble, exposed):
    plan = make_plan(tiny(), order(compute, comm))
    assert plan.valid, plan.violations
    got = {t.task: t.start for t in plan.tasks}
    for task, start in starts.items():
        assert got[task] == start, task
    where = {t.task: t.resource for t in plan.tasks}
    assert where["1F0"] == "dev0.comm" and where["0F0"] == "dev0"
    m = plan.metrics
    assert (m.makespan, m.bubble, m.exposed_communication) == (makespan, [bubble], [exposed])
    assert m.busy == [20.0]            # compute stream only: 2 × (5 + 5)
    assert m.lower_bound == 20.0       # the compute stream's work
    assert m.lower_bound <= problem_lower_bound(tiny()) <= makespan


def test_report_shows_exposed_communication_only_when_any():
    hidden, shown = make_plan(tiny(), order(OVERLAPPED)), make_plan(tiny(), order(EXPOSED))
    assert "exposed comm" not in plan_text(hidden)
    assert "exposed comm  2" in plan_text(shown)
    assert plan_summary(shown)["exposed_communication"] == [2.0]


def _corrupt(plan: Plan, task: str, **changes) -> Plan:
    tasks = [t._replace(**changes) if t.task == task else t for t in plan.tasks]
    return Plan(plan.problem, plan.order, tasks, plan.metrics)


CORRUPTIONS = [
    # a comm task moved onto the compute stream, at a time the compute stream is idle
    ("comm task on compute", dict(task="1F0", resource="dev0", start=2.0, end=3.0), EXPOSED, 5),
    # 1F1 pulled back onto 1F0's slot: two all-to-alls at once on dev0.comm
    ("two comm tasks at once", dict(task="1F1", start=2.5, end=3.5), EXPOSED, 4),
    # a compute task claimed to run on the comm stream
    ("compute task on comm stream", dict(task="0W1", resource="dev0.comm"), EXPOSED, 5),
]


@pytest.mark.parametrize("name, change, compute, rule", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_corrupted_plans_break_the_rule(name, change, compute, rule):
    plan = make_plan(tiny(), order(compute))
    task = change.pop("task")
    rules = {v.rule for v in validate(_corrupt(plan, task, **change))}
    assert rule in rules


def test_lying_exposed_communication_breaks_rule_7():
    plan = make_plan(tiny(), order(EXPOSED))
    lie = dataclasses.replace(plan.metrics, exposed_communication=[0.0])
    assert [v.rule for v in validate(Plan(plan.problem, plan.order, plan.tasks, lie))] == [7]


def test_memory_counts_comm_stages_too():
    # a, x, b each hold one activation unit per micro-batch; 0F0 0F1 already holds 4 with 1F0, 1F1
    plan = make_plan(tiny(memory=3.0), order(OVERLAPPED))
    assert plan.metrics.peak_activation_bytes == [6.0]     # a×2, x×2, b×2 alive before 2B0
    assert {v.rule for v in plan.violations} == {6}


def test_old_plan_metrics_load_with_zero_exposure():
    data = make_plan(tiny(), order(OVERLAPPED)).metrics.to_dict()
    del data["exposed_communication"]
    assert Metrics.from_dict(data).exposed_communication == [0.0]


@pytest.mark.parametrize("seqs, message", [
    ({"dev0": tuple(OVERLAPPED.split()), "dev0.comm": ("1F0", "1F1")}, "omits"),
    ({"dev0": tuple(OVERLAPPED.replace("0F1", "1F1").split())}, "runs on dev0.comm"),
    ({"dev0": tuple(OVERLAPPED.split()), "dev1.comm": ()}, "neither a device"),
    ({"dev0": tuple(OVERLAPPED.replace("0B0 0W0", "(0B0;1B0) 0W0").split())}, "runs on dev0.comm"),
], ids=["comm stream listed in part", "comm task on compute", "unknown comm stream", "block across streams"])
def test_simulator_rejects_bad_orders(seqs, message):
    with pytest.raises(OpplanError, match=message):
        simulate(tiny(), Order(seqs))


# --- random problems ---------------------------------------------------------------------------
def random_problem(rng: random.Random) -> Problem:
    devices = rng.randint(1, 3)
    n = rng.randint(2, 6)
    stages = []
    for s in range(n):
        stream = COMM_STREAM if s and rng.random() < 0.4 else COMPUTE_STREAM
        w = 0 if stream == COMM_STREAM else rng.randint(0, 3)
        stages.append(Stage(f"s{s}", rng.randrange(devices), rng.randint(1, 4), rng.randint(1, 4), w,
                            stream=stream))
    edges = [StageEdge(s, s + 1, 1.0, rng.choice([0.0, 0.0, 1.0, 2.5])) for s in range(n - 1)]
    if n > 3 and rng.random() < 0.5:
        edges.append(StageEdge(0, n - 1, 1.0, 0.0))   # a skip connection: a DAG, not a chain
    fixed = [StageEdge(e.src, e.dst, e.bytes, e.transfer_ms if stages[e.src].device != stages[e.dst].device else 0.0)
             for e in edges]
    return Problem(tuple(stages), tuple(fixed), tuple(DeviceSpec(f"dev{d}") for d in range(devices)),
                   rng.randint(1, 4))


def random_order(problem: Problem, rng: random.Random) -> Order:
    """A random topological order of the task graph, cut per resource; comm streams listed or
    left first come, first served at random."""
    tg = build_task_graph(problem)
    indeg = [len(d) for d in tg.deps]
    succ: list[list[int]] = [[] for _ in range(len(tg))]
    for j, deps in enumerate(tg.deps):
        for i in deps:
            succ[i].append(j)
    ready = [i for i in range(len(tg)) if indeg[i] == 0]
    seqs: dict[str, list[str]] = {d.name: [] for d in problem.devices}
    while ready:
        i = ready.pop(rng.randrange(len(ready)))
        if not tg.is_transfer(i):
            seqs.setdefault(tg.resource[i], []).append(tg.keys[i])
        for j in succ[i]:
            indeg[j] -= 1
            if not indeg[j]:
                ready.append(j)
    return Order({r: tuple(s) for r, s in seqs.items() if "." not in r or rng.random() < 0.5})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**9))
def test_random_problems_random_orders_are_valid(seed):
    rng = random.Random(seed)
    problem = random_problem(rng)
    orders = [random_order(problem, rng), sequential_order(problem)]
    orders += [o for o in (list_schedule(problem, rule) for rule in RULES) if o is not None]
    bound = problem_lower_bound(problem)
    for o in orders:
        plan = make_plan(problem, o)
        assert plan.valid, (o.to_text(), plan.violations[:3])
        m = plan.metrics
        assert max(m.lower_bound, bound) <= m.makespan + 1e-9
        assert all(0 <= x <= m.makespan + 1e-9 for x in m.exposed_communication)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_improve_returns_a_valid_plan_within_bounds(seed):
    rng = random.Random(seed)
    problem = random_problem(rng)
    while not problem.has_comm_streams:
        problem = random_problem(rng)
    sequential = make_plan(problem, sequential_order(problem))
    warm = min(_heuristic_plans(problem), key=lambda p: p.metrics.makespan)
    plan = improve(problem, warm, PlannerOptions(time_limit=5.0), 5.0, "given")
    assert plan.valid, plan.violations
    assert plan.metrics.makespan <= warm.metrics.makespan + 1e-9 <= sequential.metrics.makespan + 1e-9
    assert plan.provenance.lower_bound is not None
    assert plan.provenance.lower_bound <= plan.metrics.makespan + 1e-9
    assert plan.metrics.lower_bound <= plan.metrics.makespan + 1e-9


def test_improve_overlaps_the_all_to_all():
    # two devices, a → x (comm on dev0) → b on dev1: the MIP must hide x under a's next forward
    stages = (Stage("a", 0, 2, 2, 2), Stage("x", 0, 2, 2, 0, stream=COMM_STREAM), Stage("b", 1, 2, 2, 2))
    problem = Problem(stages, (StageEdge(0, 1), StageEdge(1, 2)), (DeviceSpec("dev0"), DeviceSpec("dev1")), 3)
    warm = make_plan(problem, sequential_order(problem))
    plan = improve(problem, warm, PlannerOptions(time_limit=10.0), 10.0, "given")
    assert plan.valid
    assert plan.metrics.makespan < warm.metrics.makespan
    assert plan.metrics.makespan >= plan.provenance.lower_bound - 1e-9


def test_timed_task_rows_keep_their_stream():
    plan = make_plan(tiny(), order(OVERLAPPED))
    assert {t.resource for t in plan.tasks} == {"dev0", "dev0.comm"}
    assert all(isinstance(t, TimedTask) for t in plan.tasks)


def test_improve_on_real_valued_times_with_caps():
    # compute / all-to-all alternating over three devices, times off any grid, a memory cap:
    # the inexact path (local search, then the rounded grid) must keep a valid plan
    rng = random.Random(5)
    stages = []
    for s in range(6):
        comm = s % 2 == 1
        stages.append(Stage(f"s{s}", s // 2, rng.uniform(0.5, 3), rng.uniform(0.5, 3),
                            0 if comm else rng.uniform(0.2, 2), stream=COMM_STREAM if comm else COMPUTE_STREAM))
    edges = [StageEdge(s, s + 1, 1.0, 0.37 if stages[s].device != stages[s + 1].device else 0.0) for s in range(5)]
    problem = Problem(tuple(stages), tuple(edges), tuple(DeviceSpec(f"dev{d}", 6.0) for d in range(3)), 6)
    warm = min((p for p in _heuristic_plans(problem) if p.valid), key=lambda p: p.metrics.makespan)
    plan = improve(problem, warm, PlannerOptions(time_limit=4.0), 4.0, "given")
    assert plan.valid, plan.violations
    assert plan.provenance.lower_bound - 1e-9 <= plan.metrics.makespan <= warm.metrics.makespan + 1e-9
