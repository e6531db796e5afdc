"""Order → timed plan: every entry starts as early as its inputs and its resource allow (ASAP).

A discrete-event pass in time order: compute resources follow the order exactly; links the order
does not list serve transfers first come, first served. An order that contradicts the
dependencies cannot finish, and the error names the stuck tasks and what they wait for.
"""
from __future__ import annotations

import heapq
import math
from typing import Any, Mapping

from opplan.errors import OpplanError
from opplan.problem import Problem
from opplan.schedule import Order, Plan, TimedTask, parse_entry
from opplan.tasks import TaskGraph, build_task_graph


class DeadlockError(OpplanError):
    """The order asks a resource to run a task before the tasks it depends on can run."""


def simulate(problem: Problem, order: Order, tg: TaskGraph | None = None) -> list[TimedTask]:
    """Times for every task of the problem under ``order``; raises on a malformed or deadlocked order."""
    tg = tg or build_task_graph(problem, order.backward)
    n = len(tg)
    compute_names = {d.name for d in problem.devices}
    link_names = {tg.resource[i] for i in range(n) if tg.pass_[i] == "T"}
    for resource in order.sequences:
        if resource not in compute_names and resource not in link_names:
            raise OpplanError(f"order names resource {resource!r}, which is neither a device "
                              f"({', '.join(sorted(compute_names))}) nor a used link")

    # --- slots: one per order entry; a slot holds one task or a group --------------------------
    slot_members: list[tuple[int, ...]] = []
    slot_resource: list[str] = []
    slot_of = [-1] * n
    fixed_sequences: dict[str, list[int]] = {}
    for resource, entries in order.sequences.items():
        seq = []
        for entry in entries:
            members = tuple(tg.lookup(k) for k in parse_entry(entry, order.backward))
            for i in members:
                if tg.resource[i] != resource:
                    raise OpplanError(f"order lists {tg.keys[i]} on {resource}, but it runs on {tg.resource[i]}")
                if slot_of[i] != -1:
                    raise OpplanError(f"order lists task {tg.keys[i]} twice")
                slot_of[i] = len(slot_members)
            seq.append(len(slot_members))
            slot_members.append(members)
            slot_resource.append(resource)
        fixed_sequences[resource] = seq
    missing = [tg.keys[i] for i in range(n) if slot_of[i] == -1 and tg.pass_[i] != "T"]
    if missing:
        raise OpplanError(f"order omits {len(missing)} task(s), e.g. {', '.join(missing[:5])}")
    for i in range(n):  # transfers on links the order leaves free: one slot each
        if slot_of[i] == -1:
            slot_of[i] = len(slot_members)
            slot_members.append((i,))
            slot_resource.append(tg.resource[i])

    n_slots = len(slot_members)
    duration = [problem.block_duration([tg.duration[i] for i in m], [tg.pass_[i] for i in m]) if len(m) > 1
                else tg.duration[m[0]] for m in slot_members]
    pending = [0] * n_slots
    ready = [0.0] * n_slots
    succs: list[list[int]] = [[] for _ in range(n)]
    for j in range(n):
        sj = slot_of[j]
        for i in tg.deps[j]:
            if slot_of[i] != sj:
                pending[sj] += 1
                succs[i].append(j)
    next_pos = {r: 0 for r in fixed_sequences}
    position = [0] * n_slots
    for r, seq in fixed_sequences.items():
        for p, s in enumerate(seq):
            position[s] = p
    free_at: dict[str, float] = {}
    heap: list[tuple[float, int, int]] = []
    counter = 0

    def is_head(s: int) -> bool:
        r = slot_resource[s]
        seq = fixed_sequences.get(r)
        return seq is None or seq[next_pos[r]] == s

    for s in range(n_slots):
        if pending[s] == 0 and is_head(s):
            heapq.heappush(heap, (0.0, counter, s))
            counter += 1

    start = [math.nan] * n
    end = [math.nan] * n
    done = 0
    while heap:
        t, _, s = heapq.heappop(heap)
        r = slot_resource[s]
        begin = max(ready[s], free_at.get(r, 0.0))
        if begin > t:  # a free link was taken meanwhile: wait for it
            heapq.heappush(heap, (begin, counter, s))
            counter += 1
            continue
        finish = begin + duration[s]
        free_at[r] = finish
        done += 1
        for i in slot_members[s]:
            start[i] = begin
            end[i] = finish
        if r in fixed_sequences:
            next_pos[r] += 1
            seq = fixed_sequences[r]
            if next_pos[r] < len(seq):
                nxt = seq[next_pos[r]]
                if pending[nxt] == 0:
                    heapq.heappush(heap, (max(ready[nxt], finish), counter, nxt))
                    counter += 1
        for i in slot_members[s]:
            for j in succs[i]:
                sj = slot_of[j]
                if finish > ready[sj]:
                    ready[sj] = finish
                pending[sj] -= 1
                if pending[sj] == 0 and is_head(sj):
                    heapq.heappush(heap, (max(ready[sj], free_at.get(slot_resource[sj], 0.0)), counter, sj))
                    counter += 1
    if done < n_slots:
        raise DeadlockError(_describe_deadlock(tg, fixed_sequences, next_pos, slot_members, start))
    groups = [slot_of[i] if len(slot_members[slot_of[i]]) > 1 else -1 for i in range(n)]
    return [TimedTask(tg.keys[i], tg.resource[i], start[i], end[i], groups[i]) for i in range(n)]


def _describe_deadlock(tg: TaskGraph, sequences: dict[str, list[int]], next_pos: dict[str, int],
                       slot_members: list[tuple[int, ...]], start: list[float]) -> str:
    parts = []
    for r, seq in sequences.items():
        if next_pos[r] >= len(seq):
            continue
        members = slot_members[seq[next_pos[r]]]
        waits = sorted({tg.keys[d] for i in members for d in tg.deps[i]
                        if math.isnan(start[d]) and d not in members})
        head = "(" + ";".join(tg.keys[i] for i in members) + ")" if len(members) > 1 else tg.keys[members[0]]
        parts.append(f"{r} stuck at {head} waiting for {', '.join(waits[:3]) or '?'}")
        if len(parts) == 4:
            break
    return "order deadlocks: " + "; ".join(parts)


def make_plan(problem: Problem, order: Order, provenance: Mapping[str, Any] | None = None) -> Plan:
    """The only way plans are made: simulate, measure, and run the independent validator.

    The verdict travels with the plan (``plan.violations``), so nothing unchecked is shown or saved.
    """
    from opplan.metrics import compute_metrics
    from opplan.validate import validate

    tasks = simulate(problem, order)
    plan = Plan(problem, order, tasks, provenance=dict(provenance or {}))
    plan.metrics = compute_metrics(problem, tasks)
    plan.violations = validate(plan)
    return plan
