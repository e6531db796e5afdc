"""Memory-aware list scheduling: a fast, always-available producer of orders for any DAG.

It gives the planner an incumbent where no baseline fits the caps, and a warm start otherwise.
Each resource (a device's compute stream, and its communication stream when it has all-to-all
stages), whenever it is free, starts the best ready task under a priority rule; a forward starts
only if its activations fit its device's cap, which both streams share. Transfers count as delays here (the simulator then
times them exactly on their links). Micro-batches of one stage and pass run in order.
"""
from __future__ import annotations

import bisect
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


def list_schedule(problem: Problem, rule: str = "backward-first",
                  should_stop: Callable[[], bool] | None = None) -> Order | None:
    """An order built greedily under ``rule``; None if the caps leave it stuck, or if
    ``should_stop`` (the caller's deadline or stop request, asked every few hundred steps) says so.

    Each step starts, on the device that can start something soonest, the best task by ``rule``
    among those startable then. Starts only grow, so the order is generated in time order.
    Micro-batches of one (stage, pass) run in order, so only the next micro-batch of each
    (stage, pass) is a candidate: a step costs the number of (stage, pass) pairs, not the number
    of tasks, and the whole schedule is linear in the micro-batches.
    """
    from opplan.metrics import heads_and_tails

    priority = RULES[rule]
    tg = build_task_graph(problem, "split")
    _, tail, _ = heads_and_tails(problem)
    n = len(tg)
    names = [d.name for d in problem.devices]
    names += sorted(set(tg.resource[i] for i in range(n) if tg.pass_[i] != "T") - set(names))   # comm streams
    index_of = {name: r for r, name in enumerate(names)}
    res_of = [index_of[problem.resource_of(s)] for s in range(problem.num_stages)]
    room = [d.memory_bytes - problem.param_bytes(i) for i, d in enumerate(problem.devices)]
    free_at = [0.0] * len(names)
    indeg = [len(d) for d in tg.deps]
    succ: list[list[int]] = [[] for _ in range(n)]
    for j, deps in enumerate(tg.deps):
        for i in deps:
            succ[i].append(j)
    ready_time = [0.0] * n
    # (stage, pass) -> the next micro-batch it may run, and its tasks whose inputs are all done
    next_mb: dict[tuple[int, str], int] = {}
    arrived: dict[tuple[int, str], dict[int, int]] = {}
    arrival = [0] * n                      # when a task became ready: ties go to the earliest, as a scan would
    counter = [0]
    candidates: dict[tuple[int, str], int] = {}   # (stage, pass) -> its next micro-batch's task, once ready
    sequences: dict[str, list[str]] = {name: [] for name in names}
    # Deadlock avoidance: a micro-batch entering a device reserves room for every later stage it
    # will run there, so nothing it still needs can be crowded out by younger micro-batches.
    later_on_device = later_stages_on_same_device(problem)
    later_bytes = [sum(problem.stages[t].activation_bytes for t in later) for later in later_on_device]
    reserved: set[tuple[int, int]] = set()   # (stage, micro-batch) whose forward has room set aside
    pending: list[list[tuple[float, float]]] = [[] for _ in problem.devices]   # (time, bytes) freed later, sorted
    keys = {}

    def arrive(j: int) -> None:
        pair = (tg.stage[j], tg.pass_[j])
        arrival[j] = counter[0]
        counter[0] += 1
        if tg.mb[j] == next_mb.get(pair, 0):
            candidates[pair] = j
        else:
            arrived.setdefault(pair, {})[tg.mb[j]] = j

    def finish(i: int, t: float) -> None:
        """Task i ends at t: its successors learn when their inputs arrive (depth first through
        transfers, without recursion: a long chain of transfers must not exhaust the stack)."""
        stack = [(iter(succ[i]), t)]
        while stack:
            successors, t = stack[-1]
            for j in successors:
                ready_time[j] = max(ready_time[j], t)
                indeg[j] -= 1
                if indeg[j] == 0:
                    if tg.pass_[j] == "T":  # a transfer: a pure delay here
                        stack.append((iter(succ[j]), ready_time[j] + tg.duration[j]))
                        break
                    arrive(j)
            else:
                stack.pop()

    def key_of(i: int) -> tuple:
        if i not in keys:
            as_mb0 = compute_name(tg.stage[i], tg.pass_[i], 0)   # tails are the same for every micro-batch
            keys[i] = priority(tg.pass_[i], tg.mb[i], tg.stage[i], tail.get(as_mb0, 0.0))
        return keys[i]

    for i in range(n):
        if indeg[i] == 0 and tg.pass_[i] != "T":
            arrive(i)
    total = sum(1 for i in range(n) if tg.pass_[i] != "T")
    for step in range(total):
        if should_stop is not None and step % 256 == 0 and should_stop():
            return None
        best_res, best_start, best_task, best_key = -1, math.inf, -1, None
        # scan order as before the rewrite: by resource, then by when the task became ready
        for i in sorted(candidates.values(), key=lambda c: (res_of[tg.stage[c]], arrival[c])):
            r = res_of[tg.stage[i]]
            start = max(free_at[r], ready_time[i])
            if tg.alloc[i] > 0 and (tg.stage[i], tg.mb[i]) not in reserved:
                need = tg.alloc[i] + later_bytes[tg.stage[i]]
                start = _when_room(room[tg.device[i]], pending[tg.device[i]], need, start)
                if start == math.inf:
                    continue
            key = key_of(i)
            if start < best_start - 1e-12 or (abs(start - best_start) <= 1e-12 and key < best_key):
                best_res, best_start, best_task, best_key = r, start, i, key
        if best_task < 0:
            return None  # every device is blocked by its memory cap
        i, r, d = best_task, best_res, tg.device[best_task]
        pair = (tg.stage[i], tg.pass_[i])
        del candidates[pair]
        next_mb[pair] = tg.mb[i] + 1
        waiting = arrived.get(pair)
        if waiting and tg.mb[i] + 1 in waiting:
            candidates[pair] = waiting.pop(tg.mb[i] + 1)
        for dev, queue in enumerate(pending):   # memory freed by now is free for good
            freed = 0
            while freed < len(queue) and queue[freed][0] <= best_start:
                room[dev] += queue[freed][1]
                freed += 1
            if freed:
                del queue[:freed]
        if tg.alloc[i] > 0:
            if (tg.stage[i], tg.mb[i]) in reserved:
                reserved.discard((tg.stage[i], tg.mb[i]))   # its room was taken from ``room`` already
            else:
                later = later_on_device[tg.stage[i]]
                room[d] -= tg.alloc[i] + later_bytes[tg.stage[i]]
                reserved.update((t, tg.mb[i]) for t in later)
        if tg.release[i] > 0:   # freed at W's end; the device's other stream may start before then
            bisect.insort(pending[d], (best_start + tg.duration[i], tg.release[i]))
        free_at[r] = best_start + tg.duration[i]
        sequences[names[r]].append(tg.keys[i])
        finish(i, free_at[r])
    return Order({k: tuple(v) for k, v in sequences.items()}, "split")


def _when_room(room: float, pending: list[tuple[float, float]], need: float, start: float) -> float:
    """The earliest time from ``start`` at which ``need`` bytes are free, counting releases still
    ahead (a list of (time, bytes) sorted by time); infinity if they never suffice."""
    fits = room
    later = len(pending)
    for k, (time, freed) in enumerate(pending):
        if time > start:
            later = k
            break
        fits += freed
    if need <= fits * (1 + 1e-12) + 1e-12:
        return start
    for time, freed in pending[later:]:
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
