"""The independent checker. It re-derives every requirement from the problem itself (not from the
task graph or the simulator), so a bug in a producer cannot hide behind a shared helper. The one
thing it shares is the task-name notation (``actions.py``), which plans are written in.

Rules:
  1 every task exactly once
  2 durations as the problem says
  3 dependencies and transfer delays, and the waits (fences) the plan's own order declares
  4 one block at a time per resource
  5 tasks run where their stage is placed (links for transfers), on the device's compute or
    communication stream as it says
  6 memory (parameters + live activations) within each cap
  7 reported metrics agree with the times
  8 blocks well formed (same resource, start, end)

A plan that holds exactly the problem's tasks, where they belong, for as long as they should (what
the simulator makes) is screened in bulk, with numpy over the expected tasks' numbers; whatever a
screen flags is worded by the task-by-task code, which checks every other plan, so both give the
same violations in the same order.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from opplan.actions import ComputeTask, Pass, compute_name, compute_name_head, entry_names, parse_task, transfer_name
from opplan.bulk import without_gc
from opplan.errors import OpplanError
from opplan.outputs import RULES, Violation
from opplan.problem import COMM_STREAM, comm_resource
from opplan.schedule import Plan, TimedTask

__all__ = ["RULES", "Violation", "validate"]


class _Expected:
    """Every task the problem calls for, straight from its definition: the name, resource, own
    duration and pass of task ``k``. Numbered stage by stage, pass by pass, micro-batch by
    micro-batch (a block of M for each), then each link's transfers, forward then backward."""

    def __init__(self, plan: Plan) -> None:
        p = plan.problem
        M = p.microbatches
        device_names = [d.name for d in p.devices]
        self.microbatches = M
        self.grads = ("B", "W") if plan.order.backward == "split" else ("BW",)
        self.passes = ("F", *self.grads)
        digits = [str(m) for m in range(M)]
        names: list[str] = []
        blocks: list[tuple[str, float, str]] = []      # (resource, duration, pass) of each block of M
        for s, st in enumerate(p.stages):
            dev = comm_resource(device_names[st.device]) if st.stream == COMM_STREAM else device_names[st.device]
            for g in self.passes:
                head = compute_name_head(s, g)
                names += [head + d for d in digits]
                blocks.append((dev, {"F": st.forward, "B": st.input_grad, "W": st.weight_grad,
                                     "BW": st.input_grad + st.weight_grad}[g], g))
        self.n_compute = len(names)
        self.transfer_block: dict[int, int] = {}      # edge number -> its forward transfers' block
        for k, e in enumerate(p.edges):
            a, b = p.stages[e.src].device, p.stages[e.dst].device
            if a != b and e.transfer_ms > 0:
                self.transfer_block[k] = len(blocks)
                for src, dst, g, link in ((e.src, e.dst, "F", f"{device_names[a]}->{device_names[b]}"),
                                          (e.dst, e.src, "B", f"{device_names[b]}->{device_names[a]}")):
                    head = transfer_name(src, dst, g, "")
                    names += [head + d for d in digits]
                    blocks.append((link, e.transfer_ms, "T"))
        self.names = names
        self.index = dict(zip(names, range(len(names))))   # a repeated name (a duplicated edge): its last task
        self.resource = [r for r, _, _ in blocks for r in [r] * M]
        self.duration = [d for _, d, _ in blocks for d in [d] * M]
        self.pass_ = [g for _, _, g in blocks for g in [g] * M]

    def __len__(self) -> int:
        return len(self.index)

    def get(self, name: str) -> tuple[str, float, str] | None:
        """(resource, own duration, pass) of the task called ``name``, None if there is none."""
        k = self.index.get(name)
        return None if k is None else (self.resource[k], self.duration[k], self.pass_[k])

    def block(self, stage: int, pass_: str) -> int:
        """The number of the first task (micro-batch 0) of ``stage``'s ``pass_``."""
        return (stage * len(self.passes) + self.passes.index(pass_)) * self.microbatches

    def names_in_problem_order(self) -> list[str]:
        """Micro-batch by micro-batch, stage by stage, then the transfers: the order "missing"
        tasks are reported in."""
        M, K = self.microbatches, len(self.passes)
        n_stages = self.n_compute // (K * M)
        order = []
        for m in range(M):
            order += [(s * K + k) * M + m for s in range(n_stages) for k in range(K)]
            order += [(b + d) * M + m for b in self.transfer_block.values() for d in (0, 1)]
        return list(dict.fromkeys(self.names[k] for k in order))

    def pairs(self, problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (before, after) dependency as task numbers, in the order rule 3 reports them, and
        which of them are a stage's input gradient before its weight gradient (sB m, sW m: the
        one pair a block may hold)."""
        grad = self.grads[0]
        blocks: list[tuple[int, int]] = []
        for s in range(problem.num_stages):
            blocks.append((self.block(s, "F"), self.block(s, grad)))
            if grad == "B":
                blocks.append((self.block(s, "B"), self.block(s, "W")))
        for e in problem.edges:
            f_src, f_dst = self.block(e.src, "F"), self.block(e.dst, "F")
            g_src, g_dst = self.block(e.src, grad), self.block(e.dst, grad)
            fwd = self.index.get(transfer_name(e.src, e.dst, "F", 0))
            if fwd is not None:     # the edge crosses devices (or a twin edge of it does)
                bwd = self.index[transfer_name(e.dst, e.src, "B", 0)]
                blocks += [(f_src, fwd), (fwd, f_dst), (g_dst, bwd), (bwd, g_src)]
            else:
                blocks += [(f_src, f_dst), (g_dst, g_src)]
        if not blocks:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        firsts = np.array(blocks, dtype=np.int64)
        m = np.arange(self.microbatches)
        halves = np.repeat([grad == "B" and k < 2 * problem.num_stages and k % 2 == 1 for k in range(len(blocks))],
                           self.microbatches)
        return (firsts[:, :1] + m).ravel(), (firsts[:, 1:] + m).ravel(), halves


class _Report:
    """Violations as found, at most ``limit`` per rule, then one line per rule for the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.found: list[Violation] = []
        self.counts: dict[int, int] = defaultdict(int)

    def __call__(self, rule: int, message: str, tasks: tuple[str, ...] = (), times: tuple[float, ...] = ()) -> None:
        self.counts[rule] += 1
        if self.counts[rule] <= self.limit:
            self.found.append(Violation(rule, message, tasks, times))

    def violations(self) -> list[Violation]:
        for rule, count in sorted(self.counts.items()):
            if count > self.limit:
                self.found.append(Violation(rule, f"... and {count - self.limit} more violations of this rule"))
        return self.found


@without_gc
def validate(plan: Plan, tol: float = 1e-9, limit: int = 50) -> list[Violation]:
    """All violations found (up to ``limit`` per rule); an empty list means the plan is valid.

    A plan that holds exactly the problem's tasks, where they belong, for as long as they should,
    is checked in bulk (arrays); any other is checked task by task, which words what is wrong.
    """
    report = _Report(limit)
    expected = _Expected(plan)
    columns = _Columns(plan.tasks)
    makespan = max(columns.ends, default=0.0)
    eps = tol * max(1.0, abs(makespan))
    times = _TimesByTask.of(columns, expected, eps)
    if times is None:
        _check_task_by_task(plan, expected, report, makespan, eps)
    else:
        _check_in_bulk(plan, expected, columns, times, report, makespan, eps)
    return report.violations()


class _Columns:
    """The plan's tasks column by column, in the plan's order (times and blocks as arrays)."""

    def __init__(self, tasks: list[TimedTask]) -> None:
        self.names, self.resources, starts, ends, groups = zip(*tasks) if tasks else ((),) * 5
        self.ends = ends
        self.exact = set(map(type, starts)) | set(map(type, ends)) <= {float} and set(map(type, groups)) <= {int}
        self.start = np.fromiter(starts, dtype=float, count=len(tasks)) if self.exact else None
        self.end = np.fromiter(ends, dtype=float, count=len(tasks)) if self.exact else None
        self.group = np.fromiter(groups, dtype=np.int64, count=len(tasks)) if self.exact else None
        self._codes: tuple[list[str], np.ndarray] | None = None

    def resource_codes(self) -> np.ndarray:
        """Each task's resource as a number (resources numbered in order of first appearance)."""
        return self.resource_names_and_codes()[1]

    def resource_names_and_codes(self) -> tuple[list[str], np.ndarray]:
        if self._codes is None:
            names = list(dict.fromkeys(self.resources))
            code = dict(zip(names, range(len(names))))
            self._codes = names, np.fromiter(map(code.__getitem__, self.resources), dtype=np.int64,
                                             count=len(self.resources))
        return self._codes


class _TimesByTask:
    """The plan's start, end and block of every expected task, by task number, once rules 1, 5 and
    2 hold for every single task (the screen ``of`` applies)."""

    def __init__(self, start: np.ndarray, end: np.ndarray, group: np.ndarray, number: np.ndarray) -> None:
        self.start, self.end, self.group = start, end, group
        self.number = number           # the expected task number of the plan's task i

    @classmethod
    def of(cls, columns: _Columns, expected: _Expected, eps: float) -> _TimesByTask | None:
        """None unless each expected task appears once, on its resource, with finite times from
        0 on and, outside blocks, its own duration: then rules 1, 5 and 2 have nothing to say
        about single tasks."""
        n = len(columns.names)
        if not n or not columns.exact or n != len(expected) or len(expected.names) != len(expected):
            return None
        number = list(map(expected.index.get, columns.names))
        if None in number or len(set(number)) != n:
            return None
        if list(map(expected.resource.__getitem__, number)) != list(columns.resources):
            return None
        start, end, group = columns.start, columns.end, columns.group
        k = np.fromiter(number, dtype=np.int64, count=n)
        if not (np.isfinite(start).all() and np.isfinite(end).all() and (start >= -eps).all()):
            return None
        single = group < 0
        own = np.array(expected.duration)[k]
        if (np.abs((end - start) - own)[single] > eps).any():
            return None
        by_number = cls(np.empty(len(k)), np.empty(len(k)), np.empty(len(k), dtype=np.int64), k)
        by_number.start[k], by_number.end[k], by_number.group[k] = start, end, group
        return by_number


def _check_in_bulk(plan: Plan, expected: _Expected, columns: _Columns, times: _TimesByTask, report: _Report,
                   makespan: float, eps: float) -> None:
    """Rules 8, 3, 4, 6 and 7 over arrays; where an array test finds something, the task-by-task
    check of that rule reports it, so the words and their order are the same either way."""
    problem = plan.problem
    by_name = dict(zip(columns.names, plan.tasks))
    if not _blocks_look_right(problem, expected, columns, times, eps):
        _check_blocks(problem, expected, _blocks(plan, columns), report, eps)
    before, after, halves = expected.pairs(problem)
    group = times.group
    together = (group[before] >= 0) & (group[before] == group[after])
    # what _broken reports: a block holding a task and one it depends on (but sB m with sW m), or a late start
    suspect = np.where(together, ~halves, times.start[after] < times.end[before] - eps)
    names = expected.names
    for k in np.flatnonzero(suspect).tolist():
        _broken(by_name, names[before[k]], names[after[k]], report, eps)
    _check_fences(plan, by_name, report, eps)
    intervals = _Intervals(plan, columns)
    if _any_overlap(intervals, eps):
        _check_overlaps(_intervals(by_name, _blocks(plan, columns)), report, eps)
    peaks = _check_memory_in_bulk(problem, expected, times, report)
    if plan.metrics is not None:
        busy = _busy_in_bulk(plan, intervals)
        exposed = [_exposed_in_bulk(intervals, dev.name, makespan) for dev in problem.devices]
        _check_metrics(plan, busy, peaks, exposed, makespan, report)


def _check_task_by_task(plan: Plan, expected: _Expected, report: _Report, makespan: float, eps: float) -> None:
    """Every rule, one task at a time: the words for whatever is wrong."""
    problem = plan.problem
    # rules 1, 5 and 2 (single tasks) in one pass ----------------------------------------------
    by_name: dict[str, TimedTask] = {}
    groups: dict[int, list[TimedTask]] = defaultdict(list)
    lookup = expected.get
    for t in plan.tasks:
        name, resource, start, end, group = t
        want = lookup(name)
        if want is None:
            report(1, f"task {name} is not part of this problem", (name,))
            continue
        if name in by_name:
            report(1, f"task {name} appears twice", (name,))
            continue
        by_name[name] = t
        if resource != want[0]:
            report(5, f"task {name} runs on {resource}, its stage is placed on {want[0]}", (name,))
        if not (-eps <= start < math.inf and end < math.inf):
            report(2, f"task {name} has start {start} and end {end}", (name,), (start, end))
        if group >= 0:
            groups[group].append(t)
        elif abs((end - start) - want[1]) > eps:
            report(2, f"task {name} lasts {end - start:g}, should last {want[1]:g}", (name,), (start, end))
    if len(by_name) < len(expected):
        for name in expected.names_in_problem_order():
            if name not in by_name:
                report(1, f"task {name} is missing", (name,))
    _check_blocks(problem, expected, groups, report, eps)

    # rule 3 -----------------------------------------------------------------------------------
    get = by_name.get
    names = expected.names
    before, after, _ = expected.pairs(problem)
    for x, y in zip(before.tolist(), after.tolist()):
        x, y = names[x], names[y]
        a, b = get(x), get(y)
        if a is None or b is None or b[2] < a[3] - eps or (a[4] >= 0 and a[4] == b[4]):
            _broken(by_name, x, y, report, eps)
    _check_fences(plan, by_name, report, eps)

    # rule 4 -----------------------------------------------------------------------------------
    per_resource = _intervals(by_name, groups)
    _check_overlaps(per_resource, report, eps)

    # rule 6 (and the peaks rule 7 checks) ---------------------------------------------------------
    grad = expected.grads[0]
    events: dict[int, list[tuple[float, int, float, str]]] = defaultdict(list)
    for s, st in enumerate(problem.stages):
        if st.activation_bytes == 0:
            continue
        f_first, w_first = expected.block(s, "F"), expected.block(s, "W" if grad == "B" else "BW")
        for f_name, w_name in zip(names[f_first:f_first + problem.microbatches],
                                  names[w_first:w_first + problem.microbatches]):
            f, free = by_name.get(f_name), by_name.get(w_name)
            if f is None or free is None:
                continue
            events[st.device].append((f[2], 1, st.activation_bytes, f_name))
            events[st.device].append((free[3], 0, -st.activation_bytes, w_name))
    peaks = [0.0] * problem.num_devices
    for d, dev in enumerate(problem.devices):
        _check_parameters(problem, d, report)
        params, limit = problem.param_bytes(d), _memory_limit(dev.memory_bytes)
        level = peak = 0.0
        over = False
        for time, _, delta, name in sorted(events.get(d, [])):   # at equal times, releases first
            level += delta
            if level > peak:
                peak = level
                if not over and params + level > limit:
                    over = True
                    _report_memory(report, problem, d, params + level, time, name)
        peaks[d] = peak

    # rule 7: the reported metrics, recomputed here from the times alone -------------------------
    if plan.metrics is not None:
        busy = [0.0] * problem.num_devices
        device_index = {dev.name: d for d, dev in enumerate(problem.devices)}
        seen_blocks: set[int] = set()
        for t in by_name.values():
            d = device_index.get(t[1])
            if d is None or (t[4] >= 0 and t[4] in seen_blocks):
                continue
            if t[4] >= 0:
                seen_blocks.add(t[4])
            busy[d] += t[3] - t[2]
        exposed = [_exposed(per_resource.get(comm_resource(dev.name), []), per_resource.get(dev.name, []), makespan)
                   for dev in problem.devices]
        _check_metrics(plan, busy, peaks, exposed, makespan, report)


def _check_blocks(problem, expected: _Expected, groups: dict[int, list[TimedTask]], report: _Report,
                  eps: float) -> None:
    """Rule 8 (a block's members agree) and rule 2 for whole blocks."""
    for gid, members in groups.items():
        names = tuple(t.task for t in members)
        if len(members) < 2:
            report(8, f"block {gid} has a single task {names[0]}", names)
            continue
        if len({t.resource for t in members}) > 1 or len({t.start for t in members}) > 1 \
                or len({t.end for t in members}) > 1:
            report(8, f"block ({';'.join(names)}) members differ in resource, start or end", names)
            continue
        wants = [expected.get(n) for n in names]
        want = problem.block_duration([w[1] for w in wants], [w[2] for w in wants])
        got = members[0].end - members[0].start
        if abs(got - want) > eps:
            report(2, f"block ({';'.join(names)}) lasts {got:g}, should last {want:g}", names,
                   (members[0].start, members[0].end))


def _blocks(plan: Plan, columns: _Columns) -> dict[int, list[TimedTask]]:
    """Block number -> its members, in the plan's order."""
    groups: dict[int, list[TimedTask]] = defaultdict(list)
    for i in np.flatnonzero(columns.group >= 0).tolist():
        groups[plan.tasks[i].group].append(plan.tasks[i])
    return groups


def _blocks_look_right(problem, expected: _Expected, columns: _Columns, times: _TimesByTask, eps: float) -> bool:
    """Whether ``_check_blocks`` has nothing to report, over arrays: every block has two members
    or more, on one resource, with one start and one end, and lasts what its members' durations
    (added in the plan's order) make, shrunk by the overlap factor for a forward with a backward."""
    where = np.flatnonzero(columns.group >= 0)
    if not len(where):
        return True
    where = where[np.argsort(columns.group[where], kind="stable")]     # by block, members in plan order
    gid = columns.group[where]
    opens = np.concatenate([[True], gid[1:] != gid[:-1]])
    first = np.flatnonzero(opens)
    size = np.diff(np.append(first, len(where)))
    if (size < 2).any():
        return False
    lead = np.repeat(where[first], size)
    resource = columns.resource_codes()
    if ((resource[where] != resource[lead]) | (columns.start[where] != columns.start[lead])
            | (columns.end[where] != columns.end[lead])).any():
        return False
    number = times.number[where]
    own = np.fromiter(map(expected.duration.__getitem__, number.tolist()), dtype=float, count=len(where))
    passes = np.array([expected.pass_[k] for k in number.tolist()])
    total = np.zeros(len(first))
    for k in range(int(size.max())):     # added one member after another, as sum() does
        has = size > k
        total[has] += own[first[has] + k]
    block_of = np.repeat(np.arange(len(first)), size)
    forward = np.bincount(block_of, weights=passes == "F", minlength=len(first)) > 0
    backward = np.bincount(block_of, weights=np.isin(passes, ("B", "W", "BW")), minlength=len(first)) > 0
    want = np.where(forward & backward, total * problem.overlap_factor, total)
    got = columns.end[where[first]] - columns.start[where[first]]
    return not (np.abs(got - want) > eps).any()


def _broken(by_name: dict[str, TimedTask], before: str, after: str, report: _Report, eps: float) -> None:
    """Rule 3 (or 8) for one dependency a quick test flagged: the words, if it is broken."""
    a, b = by_name.get(before), by_name.get(after)
    if a is None or b is None:
        return
    if a.group >= 0 and a.group == b.group:
        x = parse_task(before)   # a name of an expected task; only sB m may share a block with sW m
        if not (isinstance(x, ComputeTask) and x.pass_ is Pass.INPUT_GRAD
                and after == compute_name(x.stage, Pass.WEIGHT_GRAD, x.microbatch)):
            report(8, f"block puts {after} together with {before}, which it depends on", (before, after))
        return
    if b.start < a.end - eps:
        report(3, f"{after} starts at {b.start:g} before {before} ends at {a.end:g}", (before, after),
               (a.end, b.start))


def _check_fences(plan: Plan, by_name: dict[str, TimedTask], report: _Report, eps: float) -> None:
    """Rule 3 for the waits the plan's own program declares."""
    split = plan.order.backward == "split"

    def fenced(name: str) -> TimedTask | None:
        task = by_name.get(name)     # a plan's task name is its own entry's first name
        if task is not None:
            return task
        try:
            return by_name.get(entry_names(name, split_backward=split)[0])
        except OpplanError:
            return None

    for before, after in plan.order.fences:
        a, b = fenced(before), fenced(after)
        if a is None or b is None:
            report(3, f"fence {before} < {after} names a task the plan does not have", (before, after))
        elif b.start < a.end - eps:
            report(3, f"{after} starts at {b.start:g} before {before} ends at {a.end:g}, against the order's fence",
                   (before, after), (a.end, b.start))


def _intervals(by_name: dict[str, TimedTask], groups: dict[int, list[TimedTask]]) -> dict[str, list[tuple[float, float, str]]]:
    """Per resource, (start, end, label) of each task or block, a block labelled by its members."""
    per_resource: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    seen_groups: set[int] = set()
    for t in by_name.values():
        if t.group >= 0:
            if t.group in seen_groups:
                continue
            seen_groups.add(t.group)
            label = "(" + ";".join(x.task for x in groups[t.group]) + ")"
        else:
            label = t.task
        per_resource[t.resource].append((t.start, t.end, label))
    return per_resource


def _check_overlaps(per_resource: dict[str, list[tuple[float, float, str]]], report: _Report, eps: float) -> None:
    """Rule 4: one task or block at a time on each resource."""
    for resource, intervals in per_resource.items():
        intervals.sort()
        for (s1, e1, n1), (s2, e2, n2) in zip(intervals, intervals[1:]):
            if s2 < e1 - eps and e2 - s2 > eps and e1 - s1 > eps:
                report(4, f"{n1} [{s1:g}, {e1:g}) and {n2} [{s2:g}, {e2:g}) overlap on {resource}", (n1, n2),
                       (s1, e1, s2, e2))


def _first_of_each_block(plan: Plan, group: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """Which of the plan's tasks (``among`` them, default all) stand for their interval: single
    tasks and, for a block, its first member in the plan's order."""
    keep = group < 0
    if among is not None:
        keep &= among
    seen: set[int] = set()
    for i in np.flatnonzero(group >= 0 if among is None else (group >= 0) & among).tolist():
        if plan.tasks[i].group not in seen:
            seen.add(plan.tasks[i].group)
            keep[i] = True
    return keep


def _any_overlap(intervals: _Intervals, eps: float) -> bool:
    """Whether rule 4 has anything to report: the same test as ``_check_overlaps`` on intervals
    sorted by resource, start and end (the labels that break ties do not change the test)."""
    keep = intervals.keep
    resource, start, end = intervals.resource[keep], intervals.start[keep], intervals.end[keep]
    order = np.lexsort((end, start, resource))
    resource, start, end = resource[order], start[order], end[order]
    s1, e1, s2, e2 = start[:-1], end[:-1], start[1:], end[1:]
    return bool(((resource[:-1] == resource[1:]) & (s2 < e1 - eps) & (e2 - s2 > eps) & (e1 - s1 > eps)).any())


def _memory_limit(cap: float) -> float:
    return cap * (1 + 1e-9) + 1e-9


def _check_parameters(problem, d: int, report: _Report) -> None:
    dev = problem.devices[d]
    params = problem.param_bytes(d)
    if params > dev.memory_bytes * (1 + 1e-9):
        report(6, f"{dev.name}: parameters alone ({params:g} B) exceed the cap {dev.memory_bytes:g} B")


def _report_memory(report: _Report, problem, d: int, held: float, time: float, name: str) -> None:
    dev = problem.devices[d]
    report(6, f"{dev.name} holds {held:g} B at time {time:g} (after {name} starts), cap {dev.memory_bytes:g} B",
           (name,), (time,))


def _check_memory_in_bulk(problem, expected: _Expected, times: _TimesByTask, report: _Report) -> list[float]:
    """Rule 6 as ``_check_task_by_task`` does it, over arrays: per device the events (+bytes at a
    forward's start, −bytes at the end of the pass that frees it) sorted by time, releases first,
    then by change; the level is their running sum. Returns each device's peak."""
    M = problem.microbatches
    free_pass = "W" if expected.grads[0] == "B" else "BW"
    peaks = [0.0] * problem.num_devices
    for d, dev in enumerate(problem.devices):
        _check_parameters(problem, d, report)
        stages = [s for s, st in enumerate(problem.stages) if st.device == d and st.activation_bytes != 0]
        if not stages:
            continue
        allocs = np.concatenate([np.arange(expected.block(s, "F"), expected.block(s, "F") + M) for s in stages])
        frees = np.concatenate([np.arange(expected.block(s, free_pass), expected.block(s, free_pass) + M)
                                for s in stages])
        size = np.repeat([problem.stages[s].activation_bytes for s in stages], M).astype(float)
        time = np.concatenate([times.start[allocs], times.end[frees]])
        kind = np.concatenate([np.ones(len(allocs), dtype=np.int64), np.zeros(len(frees), dtype=np.int64)])
        delta = np.concatenate([size, -size])
        task = np.concatenate([allocs, frees])
        order = np.lexsort((delta, kind, time))
        time, kind, delta, task = time[order], kind[order], delta[order], task[order]
        level = np.cumsum(delta)
        highest = float(level.max())
        peaks[d] = highest if highest > 0.0 else 0.0
        params = problem.param_bytes(d)
        before = np.concatenate([[0.0], np.maximum(np.maximum.accumulate(level)[:-1], 0.0)])
        over = np.flatnonzero((level > before) & (params + level > _memory_limit(dev.memory_bytes)))
        if len(over):
            k = int(over[0])
            tied = np.flatnonzero((time == time[k]) & (kind == kind[k]) & (delta == delta[k]))
            name = sorted(expected.names[i] for i in task[tied].tolist())[k - int(tied[0])]
            _report_memory(report, problem, d, params + float(level[k]), float(time[k]), name)
    return peaks


def _busy_in_bulk(plan: Plan, intervals: _Intervals) -> list[float]:
    """Per device, the time its compute stream works: each task or block once, summed in the
    plan's order (as ``_check_task_by_task`` adds them)."""
    problem = plan.problem
    device_of = np.array([-1] * len(intervals.names))
    for d, dev in enumerate(problem.devices):
        if dev.name in intervals.code:
            device_of[intervals.code[dev.name]] = d
    device = device_of[intervals.resource]
    keep = _first_of_each_block(plan, intervals.group, device >= 0)
    length = intervals.end - intervals.start
    busy = []
    for d in range(problem.num_devices):
        mine = length[keep & (device == d)]
        busy.append(float(np.cumsum(mine)[-1]) if len(mine) else 0.0)
    return busy


def _exposed_in_bulk(intervals: _Intervals, device: str, makespan: float) -> float:
    """``_exposed`` of a device's streams from the arrays: the same unions, the same sums."""
    comm = intervals.on(comm_resource(device))
    if not len(comm):
        return 0
    compute = intervals.on(device)
    return _exposed_in_arrays(_union_of(intervals.start[comm], intervals.end[comm]),
                              _union_of(intervals.start[compute], intervals.end[compute]), makespan)


class _Intervals:
    """The plan's tasks as arrays in the plan's order: resource code, start, end; ``keep`` marks
    the ones that stand for their interval (single tasks, each block's first member)."""

    def __init__(self, plan: Plan, columns: _Columns) -> None:
        self.names, self.resource = columns.resource_names_and_codes()
        self.code = dict(zip(self.names, range(len(self.names))))
        self.start, self.end, self.group = columns.start, columns.end, columns.group
        self.keep = _first_of_each_block(plan, columns.group)

    def on(self, resource: str) -> np.ndarray:
        """The intervals (plan positions) on ``resource``."""
        code = self.code.get(resource)
        if code is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.keep & (self.resource == code))


def _exposed_in_arrays(comm: list[list[float]], busy: list[list[float]], makespan: float) -> float:
    """``_exposed_of_unions`` with the pairs of overlapping pieces found by binary search: the
    same amounts, taken off one after another in the same order."""
    if not comm:
        return 0
    c_start, c_end = np.array(comm).T
    covered = sum(np.maximum(0.0, np.minimum(c_end, makespan) - np.maximum(c_start, 0.0)).tolist())
    if not busy:
        return covered
    b_start, b_end = np.array(busy).T
    first = np.searchsorted(b_end, c_start, side="right")    # the busy pieces ending after c starts
    stop = np.maximum(np.searchsorted(b_start, c_end, side="left"), first)   # ... and starting before c ends
    count = stop - first
    if not count.sum():
        return covered
    piece = np.repeat(np.arange(len(comm)), count)
    j = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + np.repeat(first, count)
    overlap = np.maximum(0.0, np.minimum(np.minimum(c_end[piece], b_end[j]), makespan)
                         - np.maximum(np.maximum(c_start[piece], b_start[j]), 0.0))
    return float(np.subtract.accumulate(np.concatenate([[covered], overlap]))[-1])


def _union_of(start: np.ndarray, end: np.ndarray) -> list[list[float]]:
    """``_union`` of intervals given as arrays: sorted by start then end, an interval opens a new
    piece when it starts after every earlier one has ended."""
    if not len(start):
        return []
    order = np.lexsort((end, start))
    start, end = start[order], end[order]
    reach = np.maximum.accumulate(end)
    opens = np.concatenate([[True], start[1:] > reach[:-1]])
    first = np.flatnonzero(opens)
    last = np.concatenate([first[1:] - 1, [len(start) - 1]])
    return [[b, e] for b, e in zip(start[first].tolist(), reach[last].tolist())]


def _check_metrics(plan: Plan, busy: list[float], peaks: list[float], exposed: list[float], makespan: float,
                   report: _Report) -> None:
    """Rule 7: the reported metrics against the ones recomputed here from the times alone."""
    problem = plan.problem
    n_dev = problem.num_devices
    recomputed = {
        "makespan": makespan,
        "busy": busy,
        "bubble": [makespan - b for b in busy],
        "bubble_ratio": 1.0 - sum(busy) / (n_dev * makespan) if makespan > 0 else 0.0,
        "peak_activation_bytes": peaks,
        "peak_memory_bytes": [problem.param_bytes(d) + peaks[d] for d in range(n_dev)],
        "exposed_communication": exposed,
    }
    for key, value in recomputed.items():
        got = getattr(plan.metrics, key)
        got_list, want_list = (got, value) if isinstance(value, list) else ([got], [value])
        if not isinstance(got_list, list) or len(got_list) != len(want_list) or any(
                not math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6 * max(1.0, makespan))
                for x, y in zip(got_list, want_list)):
            report(7, f"reported {key} differs from the one recomputed from the task times")


def _union(intervals: list[tuple[float, float, str]]) -> list[list[float]]:
    """Disjoint sorted intervals covering the same time (overlaps were rule 4's business)."""
    merged: list[list[float]] = []
    for start, end, _ in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _exposed(comm: list[tuple[float, float, str]], compute: list[tuple[float, float, str]],
             makespan: float) -> float:
    """Time in [0, makespan] the comm stream is busy and the compute stream is not."""
    return _exposed_of_unions(_union(comm), _union(compute), makespan)


def _exposed_of_unions(comm_union: list[list[float]], busy: list[list[float]], makespan: float) -> float:
    """``_exposed`` once both streams' busy time is a sorted list of disjoint pieces."""
    covered = sum(max(0.0, min(e, makespan) - max(b, 0.0)) for b, e in comm_union)
    k = 0
    for start, end in comm_union:   # subtract the overlap with compute, both lists sorted and disjoint
        while k < len(busy) and busy[k][1] <= start:
            k += 1
        j = k
        while j < len(busy) and busy[j][0] < end:
            covered -= max(0.0, min(end, busy[j][1], makespan) - max(start, busy[j][0], 0.0))
            j += 1
    return covered
