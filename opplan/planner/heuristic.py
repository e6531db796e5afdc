"""Memory-aware list scheduling: a fast, always-available producer of orders for any DAG.

It gives the planner an incumbent where no baseline fits the caps, and a warm start otherwise.
Each resource (a device's compute stream, and its communication stream when it has all-to-all
stages), whenever it is free, starts the best ready task under a priority rule; a forward starts
only if its activations fit its device's cap, which both streams share. Transfers count as delays here (the simulator then
times them exactly on their links). Micro-batches of one stage and pass run in order.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Callable

from opplan.actions import ComputeTask, Pass, compute_name
from opplan.problem import Problem
from opplan.schedule import Order
from opplan.tasks import build_task_graph

# priority rules: lower sorts first; each gets (pass, micro-batch, stage, head) of a ready task
RULES: dict[str, Callable[[str, int, int, float], tuple]] = {
    # 1F1B-like: backward first (frees memory soonest), then forward, weight-gradient last
    "backward-first": lambda p, m, s, h: ({"B": 0, "F": 1, "W": 2}[p], m, -s),
    # free memory eagerly: W right after B
    "eager-w": lambda p, m, s, h: ({"B": 0, "W": 1, "F": 2}[p], m, -s),
    # forward first while memory allows (GPipe-like fill), backward next
    "forward-first": lambda p, m, s, h: ({"F": 0, "B": 1, "W": 2}[p], m, -s),
    # critical-path: the task with the longest remaining work after it goes first
    "critical-path": lambda p, m, s, h: (-h, {"B": 0, "F": 1, "W": 2}[p], m),
}


def list_schedule(problem: Problem, rule: str = "backward-first") -> Order | None:
    """An order built greedily under ``rule``; None if the caps leave it stuck.

    Each step starts, on the device that can start something soonest, the best task by ``rule``
    among those startable then. Starts only grow, so the order is generated in time order.
    """
    from opplan.metrics import heads_and_tails

    priority = RULES[rule]
    tg = build_task_graph(problem, "split")
    _, tail, _ = heads_and_tails(problem)
    n = len(tg)
    names = [d.name for d in problem.devices]
    names += sorted(set(tg.resource[i] for i in range(n) if tg.pass_[i] != "T") - set(names))   # comm streams
    res_of = [names.index(problem.resource_of(s)) for s in range(problem.num_stages)]
    n_res = len(names)
    room = [d.memory_bytes - problem.param_bytes(i) for i, d in enumerate(problem.devices)]
    free_at = [0.0] * n_res
    indeg = [len(d) for d in tg.deps]
    succ: list[list[int]] = [[] for _ in range(n)]
    for j, deps in enumerate(tg.deps):
        for i in deps:
            succ[i].append(j)
    ready_time = [0.0] * n
    next_mb: dict[tuple[int, str], int] = {}
    ready: list[list[int]] = [[] for _ in range(n_res)]
    sequences: dict[str, list[str]] = {name: [] for name in names}
    # Deadlock avoidance: a micro-batch entering a device reserves room for every later stage it
    # will run there, so nothing it still needs can be crowded out by younger micro-batches.
    later_on_device = later_stages_on_same_device(problem)
    reserved: set[tuple[int, int]] = set()   # (stage, micro-batch) whose forward has room set aside
    pending: list[list[tuple[float, float]]] = [[] for _ in problem.devices]   # (time, bytes) freed later

    def finish(i: int, t: float) -> None:
        """Task i ends at t: its successors learn when their inputs arrive."""
        for j in succ[i]:
            ready_time[j] = max(ready_time[j], t)
            indeg[j] -= 1
            if indeg[j] == 0:
                if tg.pass_[j] == "T":  # a transfer: a pure delay here
                    finish(j, ready_time[j] + tg.duration[j])
                else:
                    ready[res_of[tg.stage[j]]].append(j)

    for i in range(n):
        if indeg[i] == 0 and tg.pass_[i] != "T":
            ready[res_of[tg.stage[i]]].append(i)
    total = sum(1 for i in range(n) if tg.pass_[i] != "T")
    for _ in range(total):
        best_res, best_start, best_task, best_key = -1, math.inf, -1, None
        for r in range(n_res):
            for i in ready[r]:
                if tg.mb[i] != next_mb.get((tg.stage[i], tg.pass_[i]), 0):
                    continue
                start = max(free_at[r], ready_time[i])
                if tg.alloc[i] > 0 and (tg.stage[i], tg.mb[i]) not in reserved:
                    need = tg.alloc[i] + sum(problem.stages[t].activation_bytes for t in later_on_device[tg.stage[i]])
                    start = _when_room(room[tg.device[i]], pending[tg.device[i]], need, start)
                    if start == math.inf:
                        continue
                as_mb0 = compute_name(tg.stage[i], tg.pass_[i], 0)   # tails are the same for every micro-batch
                key = priority(tg.pass_[i], tg.mb[i], tg.stage[i], tail.get(as_mb0, 0.0))
                if start < best_start - 1e-12 or (abs(start - best_start) <= 1e-12 and key < best_key):
                    best_res, best_start, best_task, best_key = r, start, i, key
        if best_task < 0:
            return None  # every device is blocked by its memory cap
        i, r, d = best_task, best_res, tg.device[best_task]
        ready[r].remove(i)
        for dev, waiting in enumerate(pending):   # memory freed by now is free for good
            while waiting and waiting[0][0] <= best_start:
                room[dev] += heapq.heappop(waiting)[1]
        next_mb[(tg.stage[i], tg.pass_[i])] = tg.mb[i] + 1
        if tg.alloc[i] > 0:
            if (tg.stage[i], tg.mb[i]) in reserved:
                reserved.discard((tg.stage[i], tg.mb[i]))   # its room was taken from ``room`` already
            else:
                later = later_on_device[tg.stage[i]]
                room[d] -= tg.alloc[i] + sum(problem.stages[t].activation_bytes for t in later)
                reserved.update((t, tg.mb[i]) for t in later)
        if tg.release[i] > 0:   # freed at W's end; the device's other stream may start before then
            heapq.heappush(pending[d], (best_start + tg.duration[i], tg.release[i]))
        free_at[r] = best_start + tg.duration[i]
        sequences[names[r]].append(tg.keys[i])
        finish(i, free_at[r])
    return Order({k: tuple(v) for k, v in sequences.items()}, "split")


def _when_room(room: float, pending: list[tuple[float, float]], need: float, start: float) -> float:
    """The earliest time from ``start`` at which ``need`` bytes are free, counting releases still
    ahead (a heap of (time, bytes)); infinity if they never suffice."""
    fits = room
    for time, freed in sorted(pending):
        if time <= start:
            fits += freed
    if need <= fits * (1 + 1e-12) + 1e-12:
        return start
    for time, freed in sorted(pending):
        if time > start:
            fits += freed
            if need <= fits * (1 + 1e-12) + 1e-12:
                return time
    return math.inf


def sequential_order(problem: Problem) -> Order:
    """One micro-batch at a time through the whole model: slow, but feasible whenever one
    micro-batch's activations fit, so it proves a cap is achievable."""
    topo = _stage_topological_order(problem)
    seqs: dict[str, list[ComputeTask]] = {d.name: [] for d in problem.devices}
    for m in range(problem.microbatches):
        for s in topo:
            seqs.setdefault(problem.resource_of(s), []).append(ComputeTask(s, Pass.FORWARD, m))
        for s in reversed(topo):
            seqs.setdefault(problem.resource_of(s), []).extend([ComputeTask(s, Pass.INPUT_GRAD, m),
                                                                ComputeTask(s, Pass.WEIGHT_GRAD, m)])
    return Order({k: tuple(v) for k, v in seqs.items()}, "split")


def later_stages_on_same_device(problem: Problem) -> list[list[int]]:
    """For each stage, the stages downstream of it that sit on the same device."""
    topo = _stage_topological_order(problem)
    below: list[set[int]] = [set() for _ in range(problem.num_stages)]
    for s in reversed(topo):
        for t in problem.succs(s):
            below[s] |= below[t] | {t}
    return [sorted(t for t in below[s] if problem.stages[t].device == problem.stages[s].device)
            for s in range(problem.num_stages)]


def _stage_topological_order(problem: Problem) -> list[int]:
    indeg = [len(problem.preds(s)) for s in range(problem.num_stages)]
    stack = [s for s in range(problem.num_stages) if indeg[s] == 0][::-1]
    out = []
    while stack:
        s = stack.pop()
        out.append(s)
        for t in sorted(problem.succs(s), reverse=True):
            indeg[t] -= 1
            if indeg[t] == 0:
                stack.append(t)
    return out
