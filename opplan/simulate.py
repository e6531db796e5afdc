"""Order → timed plan: every entry starts as early as its inputs and its resource allow (ASAP).

A discrete-event pass in time order: compute resources follow the order exactly; links and
communication streams the order does not list serve their tasks first come, first served. An order that contradicts the
dependencies cannot finish, and the error names the stuck tasks and what they wait for.

Two paths give the same times: the common one numbers entries and times task by task (a block as
its first task) with numpy-built lists; the slot-graph path handles whatever the common one turns
down (a malformed order, a deadlock) and words the error.
"""
from __future__ import annotations

import heapq
import math
from collections import Counter
from itertools import chain, repeat

import numpy as np

from opplan.actions import compute_name_head
from opplan.bulk import without_gc
from opplan.errors import OpplanError
from opplan.outputs import Provenance
from opplan.problem import Problem
from opplan.schedule import Order, Plan, TimedTask, parse_entry
from opplan.tasks import TaskGraph, build_task_graph


class DeadlockError(OpplanError):
    """The order asks a resource to run a task before the tasks it depends on can run."""


@without_gc
def simulate(problem: Problem, order: Order, tg: TaskGraph | None = None) -> list[TimedTask]:
    """Times for every task of the problem under ``order``; raises on a malformed or deadlocked order."""
    tg = tg or build_task_graph(problem, order.backward)
    _check_resources(problem, order, tg)
    entries = _entries(problem, order, tg)
    if entries is not None:
        tasks = _simulate_entries(problem, order, tg, *entries)
        if tasks is not None:
            return tasks
    return _simulate_slots(problem, order, tg)   # a malformed order, or a deadlock to describe


def _check_resources(problem: Problem, order: Order, tg: TaskGraph) -> None:
    compute_names = {d.name for d in problem.devices}
    link_names = {r for r, p in dict(zip(tg.resource, tg.pass_)).items() if p == "T"}   # a link runs transfers only
    comm_names = set(tg.comm_resources())
    for resource in order.sequences:
        if resource not in compute_names and resource not in link_names and resource not in comm_names:
            raise OpplanError(f"order names resource {resource!r}, which is neither a device "
                              f"({', '.join(sorted(compute_names))}) nor a used link or communication stream")


def _entries(problem: Problem, order: Order, tg: TaskGraph
             ) -> tuple[dict[str, list[int]], dict[int, tuple[int, ...]]] | None:
    """Per listed resource the first task of each entry, and the blocks (first task -> members),
    when every task of an entry runs on that resource, none twice, and every compute stream (and
    listed comm stream) is listed in full; else None, and the slot-graph path words what is wrong."""
    index = tg.index
    per_resource = Counter(tg.resource)
    sequences: dict[str, list[int]] = {}
    blocks: dict[int, tuple[int, ...]] = {}
    full_backwards: dict[str, tuple[int, int]] | None = None
    for resource, entries in order.sequences.items():
        firsts = list(map(index.get, entries))
        others: list[int] = []          # block members after the first
        if None in firsts:
            if full_backwards is None:
                split = order.backward == "split" and tg.backward == "split"
                full_backwards = _full_backwards(problem, tg) if split else {}
            for k in [k for k, i in enumerate(firsts) if i is None]:
                members = full_backwards.get(entries[k]) or _members(entries[k], order, tg)
                if members is None:
                    return None
                firsts[k] = members[0]
                if len(members) > 1:
                    blocks[members[0]] = members
                    others += members[1:]
        tasks = firsts + others
        if len(set(tasks)) != len(tasks) or per_resource.get(resource) != len(tasks):
            return None
        if tasks and set(map(tg.resource.__getitem__, tasks)) != {resource}:
            return None
        sequences[resource] = firsts
    if any(d.name not in sequences and per_resource.get(d.name) for d in problem.devices):
        return None
    return sequences, blocks


def _full_backwards(problem: Problem, tg: TaskGraph) -> dict[str, tuple[int, int]]:
    """In split mode, ``2BW0`` stands for the block (2B0;2W0): its name -> (B, W) tasks."""
    digits = [str(m) for m in range(problem.microbatches)]
    out: dict[str, tuple[int, int]] = {}
    for s in range(problem.num_stages):
        names = [compute_name_head(s, "BW") + d for d in digits]
        b = map(tg.index.__getitem__, [compute_name_head(s, "B") + d for d in digits])
        w = map(tg.index.__getitem__, [compute_name_head(s, "W") + d for d in digits])
        out.update(zip(names, zip(b, w)))
    return out


def _members(entry: str, order: Order, tg: TaskGraph) -> tuple[int, ...] | None:
    """The tasks of an order entry, None if it names one the task graph does not have."""
    try:
        names = parse_entry(entry, order.backward)
    except OpplanError:
        return None
    members = tuple(map(tg.index.get, names))
    return None if None in members else members


def _simulate_entries(problem: Problem, order: Order, tg: TaskGraph, sequences: dict[str, list[int]],
                      blocks: dict[int, tuple[int, ...]]) -> list[TimedTask] | None:
    """The common case, timed without a slot graph: a block runs as its first task (every other
    member hands its dependencies to it), a single task as itself. None on a deadlock (the
    slot-graph path describes it)."""
    n = len(tg)
    slot_of, following, pending, head, free = _number_entries(tg, sequences, blocks)
    nodes = np.flatnonzero(head == np.arange(n))
    task_of = np.empty(len(nodes), dtype=np.int64)
    task_of[slot_of[nodes]] = nodes
    fence_after: dict[int, list[int]] = {}
    for a, b in _fence_slots(tg, order, slot_of.tolist()):
        fence_after.setdefault(int(task_of[a]), []).append(int(task_of[b]))
        pending[task_of[b]] += 1
    if blocks:
        after, waiting = _graph_of_nodes(tg, head, following, fence_after, pending - np.fromiter(map(len, tg.deps),
                                                                                              dtype=np.int64, count=n))
        duration = _block_durations(problem, tg, blocks)
    else:
        after, waiting = _waiting_on(_successors(tg), following.tolist(), fence_after), pending.tolist()
        duration = tg.duration
    if len(free):
        lane_of = {r: -1 if r in sequences else k for k, r in enumerate(dict.fromkeys(tg.resource))}
        lane = list(map(lane_of.__getitem__, tg.resource))
        times = _run_in_time_order(duration, after, waiting, lane, slot_of.tolist(), task_of.tolist(), len(lane_of))
    else:
        times = _run_in_any_order(duration, after, waiting, len(nodes))
    return None if times is None else _timed_tasks(tg, *times, head, slot_of, blocks)


def _number_entries(tg: TaskGraph, sequences: dict[str, list[int]], blocks: dict[int, tuple[int, ...]]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per task: its entry number (the slot-graph path's slot: the tie-break among equal ready
    times; free tasks numbered after the order's entries, in task order), the next entry's first
    task on its resource, its inputs (dependencies and the previous entry), the task it runs as
    (its block's first, or itself); and the free tasks."""
    n = len(tg)
    slot_of = np.full(n, -1, dtype=np.int64)
    following = np.full(n, -1, dtype=np.int64)
    pending = np.fromiter(map(len, tg.deps), dtype=np.int64, count=n)
    first = 0
    for seq in sequences.values():
        tasks = np.array(seq, dtype=np.int64)
        slot_of[tasks] = np.arange(first, first + len(tasks))
        first += len(tasks)
        following[tasks[:-1]] = tasks[1:]
        pending[tasks[1:]] += 1
    head = np.arange(n)
    if blocks:
        members = np.fromiter((m for ms in blocks.values() for m in ms), dtype=np.int64)
        leads = np.repeat(np.fromiter(blocks, dtype=np.int64), [len(ms) for ms in blocks.values()])
        head[members] = leads
        slot_of[members] = slot_of[leads]
    free = np.flatnonzero(slot_of < 0)             # on links and comm streams the order leaves free
    slot_of[free] = np.arange(first, first + len(free))
    return slot_of, following, pending, head, free


def _timed_tasks(tg: TaskGraph, start: list[float], end: list[float], head: np.ndarray, slot_of: np.ndarray,
                 blocks: dict[int, tuple[int, ...]]) -> list[TimedTask]:
    """Every task with the times of the node it ran as; a block's members carry its entry number."""
    if not blocks:
        return list(map(tuple.__new__, repeat(TimedTask), zip(tg.keys, tg.resource, start, end, repeat(-1))))
    group = np.where(head != np.arange(len(tg)), slot_of, -1)
    group[list(blocks)] = slot_of[list(blocks)]
    head_of = head.tolist()
    start, end = list(map(start.__getitem__, head_of)), list(map(end.__getitem__, head_of))
    return list(map(tuple.__new__, repeat(TimedTask), zip(tg.keys, tg.resource, start, end, group.tolist())))


def _graph_of_nodes(tg: TaskGraph, head: np.ndarray, following: np.ndarray, fence_after: dict[int, list[int]],
                    others: np.ndarray) -> tuple[list[list[int]], list[int]]:
    """Waiters and input counts per node when blocks run as their first task: every dependency
    between two nodes (none inside a block), the next entry, the fences; ``others`` counts the
    inputs besides dependencies. A block's other members never run on their own (count -1)."""
    n = len(tg)
    src = np.fromiter(chain.from_iterable(tg.deps), dtype=np.int64)
    dst = np.repeat(np.arange(n), np.fromiter(map(len, tg.deps), dtype=np.int64, count=n))
    src, dst = head[src], head[dst]
    between = src != dst
    src, dst = src[between], dst[between]
    waiting = (np.bincount(dst, minlength=n) + others).tolist()
    for m in np.flatnonzero(head != np.arange(n)).tolist():
        waiting[m] = -1
    order = np.argsort(src, kind="stable")
    flat = dst[order].tolist()
    ends = np.cumsum(np.bincount(src, minlength=n)).tolist()
    after = [flat[a:b] for a, b in zip([0] + ends[:-1], ends)]
    return _waiting_on(after, following.tolist(), fence_after), waiting


def _block_durations(problem: Problem, tg: TaskGraph, blocks: dict[int, tuple[int, ...]]) -> list[float]:
    """Task durations, a block's first task taking the block's: ``Problem.block_duration`` for all
    blocks at once (members added one after another, as sum() does, then shrunk by the overlap
    factor where a forward runs with a backward)."""
    size = np.fromiter(map(len, blocks.values()), dtype=np.int64, count=len(blocks))
    members = np.fromiter(chain.from_iterable(blocks.values()), dtype=np.int64, count=int(size.sum()))
    own = np.asarray(tg.duration)[members]
    passes = np.asarray(tg.pass_)[members]
    first = np.cumsum(size) - size
    total = np.zeros(len(blocks))
    for k in range(int(size.max())):
        has = size > k
        total[has] += own[first[has] + k]
    block_of = np.repeat(np.arange(len(blocks)), size)
    forward = np.bincount(block_of, weights=passes == "F", minlength=len(blocks)) > 0
    backward = np.bincount(block_of, weights=np.isin(passes, ("B", "W", "BW")), minlength=len(blocks)) > 0
    duration = np.asarray(tg.duration, dtype=float)
    duration[np.fromiter(blocks, dtype=np.int64, count=len(blocks))] = np.where(
        forward & backward, total * problem.overlap_factor, total)
    return duration.tolist()


def _successors(tg: TaskGraph) -> list[list[int]]:
    """The task graph's successor lists (derived from ``deps`` for a graph built without them)."""
    if len(tg.succs) == len(tg):
        return tg.succs
    succs: list[list[int]] = [[] for _ in range(len(tg))]
    for j, deps in enumerate(tg.deps):
        for i in deps:
            succs[i].append(j)
    return succs


def _waiting_on(succs: list[list[int]], following: list[int], fence_after: dict[int, list[int]]) -> list[list[int]]:
    """Per task, every task that waits for it: its successors in the task graph, the next task on
    its resource, and the tasks fenced after it (new lists; the task graph's stay as they are)."""
    after = [s + [f] if f >= 0 else s for s, f in zip(succs, following)]
    for a, bs in fence_after.items():
        after[a] = after[a] + bs
    return after


def _run_in_any_order(duration: list[float], after: list[list[int]], pending: list[int], nodes: int
                      ) -> tuple[list[float], list[float]] | None:
    """Every resource sequenced: a task starts when its last input ends, whatever order they are
    visited in. (start, end) per task, or None if some task never became ready."""
    n = len(duration)
    ready = [0.0] * n
    end = [0.0] * n
    stack = [i for i in range(n) if not pending[i]]
    pop, push = stack.pop, stack.append
    done = 0
    while stack:
        s = pop()
        done += 1
        finish = end[s] = ready[s] + duration[s]
        for t in after[s]:
            if finish > ready[t]:
                ready[t] = finish
            pending[t] -= 1
            if not pending[t]:
                push(t)
    return (ready, end) if done == nodes else None


def _run_in_time_order(duration: list[float], after: list[list[int]], pending: list[int], lane: list[int],
                       slot_of: list[int], task_of: list[int], lanes: int) -> tuple[list[float], list[float]] | None:
    """Some resources free (lane >= 0): events in time order, ties by entry number, each free
    resource serving its ready tasks first come, first served. None if some task never ran.

    A node (a task, or a block as its first task) on a sequenced resource that takes time runs
    the moment it is ready, without a turn in the event queue: whatever it releases is ready
    strictly after every event the queue would have served before it, so the free resources see
    their tasks in the same order. A node that takes no time (or none that shows at its start
    time) waits its turn in the queue, where a tie with another event is broken by entry number
    as always.
    """
    n = len(duration)
    ready = [0.0] * n
    start = [0.0] * n
    end = [0.0] * n
    free_at = [0.0] * lanes
    heap = [(0.0, slot_of[i]) for i in range(n) if not pending[i]]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    now: list[int] = []           # tasks run at once, whose waiters are still to be released
    done = 0
    while heap:
        key, slot = pop(heap)
        s = task_of[slot]
        begin = ready[s]
        r = lane[s]
        if r >= 0:
            if free_at[r] > begin:
                begin = free_at[r]
            if begin > key:  # the resource was taken meanwhile: wait for it
                push(heap, (begin, slot))
                continue
            finish = free_at[r] = begin + duration[s]
        else:
            finish = begin + duration[s]
        done += 1
        start[s] = begin
        end[s] = finish
        while True:
            for t in after[s]:
                if finish > ready[t]:
                    ready[t] = finish
                pending[t] -= 1
                if not pending[t]:
                    begin = ready[t]
                    if lane[t] < 0 and begin + duration[t] > begin:
                        start[t] = begin
                        end[t] = begin + duration[t]
                        done += 1
                        now.append(t)
                    else:
                        push(heap, (begin, slot_of[t]))
            if not now:
                break
            s = now.pop()
            finish = end[s]
    return (start, end) if done == len(task_of) else None


def _simulate_slots(problem: Problem, order: Order, tg: TaskGraph) -> list[TimedTask]:
    """The general path: a slot per order entry (one task or a block), a slot graph, events."""
    n = len(tg)
    compute_names = {d.name for d in problem.devices}
    comm_names = set(tg.comm_resources())
    # --- slots: one per order entry; a slot holds one task or a group --------------------------
    slot_members: list[tuple[int, ...]] = []
    slot_resource: list[str] = []
    slot_of = [-1] * n
    index = tg.index
    fixed_sequences: dict[str, list[int]] = {}
    task_resource = tg.resource
    for resource, entries in order.sequences.items():
        seq = []
        for entry in entries:
            slot = len(slot_members)
            i = index.get(entry)
            if i is not None and task_resource[i] == resource and slot_of[i] == -1:   # the common case
                slot_of[i] = slot
                members: tuple[int, ...] = (i,)
            else:
                members = (i,) if i is not None else tuple(tg.lookup(k) for k in parse_entry(entry, order.backward))
                for i in members:
                    if task_resource[i] != resource:
                        raise OpplanError(f"order lists {tg.keys[i]} on {resource}, but it runs on {task_resource[i]}")
                    if slot_of[i] != -1:
                        raise OpplanError(f"order lists task {tg.keys[i]} twice")
                    slot_of[i] = slot
            seq.append(slot)
            slot_members.append(members)
            slot_resource.append(resource)
        fixed_sequences[resource] = seq
    # compute streams, and communication streams the order lists, must be listed in full
    listed = compute_names | (comm_names & set(fixed_sequences))
    missing = [tg.keys[i] for i in range(n) if slot_of[i] == -1 and task_resource[i] in listed]
    if missing:
        raise OpplanError(f"order omits {len(missing)} task(s), e.g. {', '.join(missing[:5])}")
    for i in range(n):  # tasks on links and comm streams the order leaves free: one slot each
        if slot_of[i] == -1:
            slot_of[i] = len(slot_members)
            slot_members.append((i,))
            slot_resource.append(tg.resource[i])

    n_slots = len(slot_members)
    duration = [problem.block_duration([tg.duration[i] for i in m], [tg.pass_[i] for i in m]) if len(m) > 1
                else tg.duration[m[0]] for m in slot_members]
    # The slot graph: task dependencies between slots, plus "previous entry on the same
    # resource" for resources the order sequences. A slot may start when its count hits zero.
    pending = [0] * n_slots
    slot_succ: list[list[int]] = [[] for _ in range(n_slots)]
    for j, deps in enumerate(tg.deps):
        sj = slot_of[j]
        for i in deps:
            si = slot_of[i]
            if si != sj:
                pending[sj] += 1
                slot_succ[si].append(sj)
    for seq in fixed_sequences.values():
        for a, b in zip(seq, seq[1:]):
            pending[b] += 1
            slot_succ[a].append(b)
    fences = _fence_slots(tg, order, slot_of)
    for a, b in fences:
        pending[b] += 1
        slot_succ[a].append(b)
    dynamic = [slot_resource[s] not in fixed_sequences for s in range(n_slots)]
    ready = [0.0] * n_slots
    slot_start = [math.nan] * n_slots
    slot_end = [math.nan] * n_slots

    def run(s: int, begin: float, release) -> float:
        """Time slot ``s`` from ``begin``; successors whose last input this was are released."""
        finish = begin + duration[s]
        slot_start[s] = begin
        slot_end[s] = finish
        for t in slot_succ[s]:
            if finish > ready[t]:
                ready[t] = finish
            pending[t] -= 1
            if not pending[t]:
                release(t)
        return finish

    if not any(dynamic):
        # every resource is sequenced: start times are determined, any processing order works
        stack = [s for s in range(n_slots) if pending[s] == 0]
        while stack:
            s = stack.pop()
            run(s, ready[s], stack.append)
    else:
        # free links and comm streams serve tasks in the order they become ready: events in time order
        free_at: dict[str, float] = {}
        heap = [(0.0, s) for s in range(n_slots) if pending[s] == 0]
        heapq.heapify(heap)

        def release(t: int) -> None:
            heapq.heappush(heap, (ready[t], t))

        while heap:
            key, s = heapq.heappop(heap)
            begin = ready[s]
            if dynamic[s]:
                r = slot_resource[s]
                begin = max(begin, free_at.get(r, 0.0))
                if begin > key:  # the link was taken meanwhile: wait for it
                    heapq.heappush(heap, (begin, s))
                    continue
            finish = run(s, begin, release)
            if dynamic[s]:
                free_at[r] = finish
    if any(math.isnan(x) for x in slot_start):
        raise DeadlockError(_describe_deadlock(tg, fixed_sequences, slot_members, slot_of, slot_start, fences))
    block = [s if len(m) > 1 else -1 for s, m in enumerate(slot_members)]
    rows = ((k, r, slot_start[s], slot_end[s], block[s]) for k, r, s in zip(tg.keys, tg.resource, slot_of))
    return list(map(tuple.__new__, repeat(TimedTask), rows))


def _fence_slots(tg: TaskGraph, order: Order, slot_of: list[int]) -> list[tuple[int, int]]:
    """The order's fences as (before, after) slots; a fence inside one block could never be met."""
    def slot(name: str) -> int:
        i = tg.index.get(name)
        return slot_of[i if i is not None else tg.lookup(parse_entry(name, order.backward)[0])]

    pairs = []
    for before, after in order.fences:
        a, b = slot(before), slot(after)
        if a == b:
            raise OpplanError(f"order fence {before} < {after} names two tasks of one block, which start together")
        pairs.append((a, b))
    return pairs


def _describe_deadlock(tg: TaskGraph, sequences: dict[str, list[int]], slot_members: list[tuple[int, ...]],
                       slot_of: list[int], slot_start: list[float], fences: list[tuple[int, int]]) -> str:
    parts = []
    for r, seq in sequences.items():
        stuck = next((s for s in seq if math.isnan(slot_start[s])), None)
        if stuck is None:
            continue
        members = slot_members[stuck]
        waits = sorted({tg.keys[d] for i in members for d in tg.deps[i]
                        if d not in members and math.isnan(slot_start[slot_of[d]])}
                       | {f"{tg.keys[slot_members[a][0]]} (fence)" for a, b in fences
                          if b == stuck and math.isnan(slot_start[a])})
        head = "(" + ";".join(tg.keys[i] for i in members) + ")" if len(members) > 1 else tg.keys[members[0]]
        parts.append(f"{r} stuck at {head} waiting for {', '.join(waits[:3]) or 'its resource'}")
        if len(parts) == 4:
            break
    return "order deadlocks: " + "; ".join(parts)


def make_plan(problem: Problem, order: Order, provenance: Provenance | None = None) -> Plan:
    """The only way plans are made: simulate, measure, and run the independent validator.

    The verdict travels with the plan (``plan.violations``), so nothing unchecked is shown or saved.
    """
    from opplan.metrics import compute_metrics
    from opplan.validate import validate

    tasks = simulate(problem, order)
    plan = Plan(problem, order, tasks, provenance=provenance or Provenance())
    plan.metrics = compute_metrics(problem, tasks)
    plan.violations = validate(plan)
    return plan
