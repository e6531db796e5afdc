"""The simulator's and the validator's fast paths give what their straightforward paths give.

The simulator times an order of single tasks task by task (and runs tasks on sequenced resources
at once, outside the event queue); the validator checks a plan of exactly the problem's tasks in
bulk. Both must agree exactly with the slot-graph simulation and the task-by-task check on random
problems with free links, comm streams, zero durations (ties everywhere) and fences.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from opplan import validate as validate_module
from opplan.metrics import compute_metrics
from opplan.problem import COMM_STREAM, DeviceSpec, Problem, Stage, StageEdge
from opplan.schedule import Order, Plan
from opplan.simulate import _simulate_slots, simulate
from opplan.tasks import build_task_graph
from opplan.validate import _exposed_in_arrays, _exposed_of_unions, validate

DURATIONS = (0.0, 0.0, 0.5, 1.0, 1.0, 2.0)


def random_problem(rng: random.Random) -> Problem:
    """A few stages on two or three devices, some on comm streams, edges forward in stage order."""
    devices = rng.randint(2, 3)
    stages = []
    for s in range(rng.randint(2, 6)):
        stream = COMM_STREAM if rng.random() < 0.3 else "compute"
        stages.append(Stage(f"s{s}", rng.randrange(devices), rng.choice(DURATIONS), rng.choice(DURATIONS),
                            rng.choice(DURATIONS), rng.choice((0.0, 1.0, 2.0)), 0.0, stream=stream))
    edges = [StageEdge(a, b, 1.0, rng.choice((0.0, 0.25, 1.0)))
             for a in range(len(stages)) for b in range(a + 1, len(stages)) if b == a + 1 or rng.random() < 0.2]
    caps = [rng.choice((3.0, 6.0, 100.0)) for _ in range(devices)]
    return Problem(tuple(stages), tuple(edges), tuple(DeviceSpec(f"dev{d}", caps[d]) for d in range(devices)),
                   rng.randint(1, 5))


def random_order(problem: Problem, rng: random.Random, backward: str) -> Order:
    """Sequences taken from a random topological order of the tasks: compute streams always,
    comm streams and links sometimes (else first come, first served), in split mode some input
    and weight gradients as one block; a few fences that agree with that order."""
    tg = build_task_graph(problem, backward)
    waiting = [len(d) for d in tg.deps]
    ready = [i for i in range(len(tg)) if not waiting[i]]
    topological = []
    while ready:
        i = ready.pop(rng.randrange(len(ready)))
        topological.append(i)
        for j in tg.succs[i]:
            waiting[j] -= 1
            if not waiting[j]:
                ready.append(j)
    listed = {d.name for d in problem.devices} | {r for r in set(tg.resource) if rng.random() < 0.3}
    sequences: dict[str, list[str]] = {}
    blocks = backward == "split" and rng.random() < 0.5     # some sB m, sW m run as the block sBW m
    merged = set()
    for i in topological:
        if tg.resource[i] in listed and i not in merged:
            name = tg.keys[i]
            if blocks and tg.pass_[i] == "B" and rng.random() < 0.6:
                merged.add(tg.index[f"{tg.stage[i]}W{tg.mb[i]}"])    # a W waits only for its B
                name = f"{tg.stage[i]}BW{tg.mb[i]}"
            sequences.setdefault(tg.resource[i], []).append(name)
    fences = []
    for _ in range(rng.randint(0, 3)):
        a, b = sorted(rng.sample(range(len(topological)), 2)) if len(topological) > 1 else (0, 0)
        if a != b and topological[b] not in merged:    # a merged W runs earlier, with its B
            fences.append((tg.keys[topological[a]], tg.keys[topological[b]]))
    return Order(sequences, backward, tuple(fences))


@pytest.mark.parametrize("seed", range(300))
def test_task_by_task_timing_matches_the_slot_graph(seed):
    rng = random.Random(seed)
    problem = random_problem(rng)
    backward = rng.choice(("split", "full"))
    order = random_order(problem, rng, backward)
    tg = build_task_graph(problem, backward)
    assert simulate(problem, order, tg) == _simulate_slots(problem, order, tg)


def check_task_by_task(plan: Plan) -> list:
    """``validate`` with the bulk screen turned off."""
    original = validate_module._TimesByTask.of
    validate_module._TimesByTask.of = classmethod(lambda cls, *args: None)
    try:
        return validate(plan)
    finally:
        validate_module._TimesByTask.of = original


@pytest.mark.parametrize("seed", range(150))
def test_bulk_check_matches_the_task_by_task_check(seed):
    rng = random.Random(1000 + seed)
    problem = random_problem(rng)
    backward = rng.choice(("split", "full"))
    order = random_order(problem, rng, backward)
    tasks = simulate(problem, order)
    metrics = compute_metrics(problem, tasks)
    for _ in range(4):      # shifted tasks keep their durations, so the bulk check still applies
        moved = list(tasks)
        for _ in range(rng.randint(0, 4)):
            k = rng.randrange(len(moved))
            shift = rng.choice((-1.0, -0.5, 0.5, 3.0))
            moved[k] = moved[k]._replace(start=max(0.0, moved[k].start + shift), end=max(0.0, moved[k].start + shift)
                                         + moved[k].end - moved[k].start)
        if rng.random() < 0.3:
            k = rng.randrange(len(moved))
            moved[k] = moved[k]._replace(group=rng.choice((0, 1)))
        rng.shuffle(moved)
        plan = Plan(problem, order, moved, metrics if rng.random() < 0.5 else compute_metrics(problem, moved))
        assert validate(plan) == check_task_by_task(plan)


@pytest.mark.parametrize("seed", range(100))
def test_exposed_communication_by_binary_search_matches_the_walk(seed):
    rng = np.random.default_rng(seed)

    def pieces(count: int) -> list[list[float]]:
        edges = np.sort(rng.choice(np.arange(0.0, 40.0, 0.5), size=2 * count, replace=False))
        return [[float(a), float(b)] for a, b in edges.reshape(-1, 2)]

    comm, busy = pieces(int(rng.integers(0, 8))), pieces(int(rng.integers(0, 8)))
    makespan = float(rng.choice((20.0, 40.0)))
    assert _exposed_in_arrays(comm, busy, makespan) == _exposed_of_unions(comm, busy, makespan)
