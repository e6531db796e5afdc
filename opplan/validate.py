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
"""
from __future__ import annotations

import math
from collections import defaultdict

from opplan.actions import ComputeTask, Pass, compute_name, compute_names, entry_names, parse_task, transfer_name
from opplan.errors import OpplanError
from opplan.outputs import RULES, Violation
from opplan.problem import COMM_STREAM, comm_resource
from opplan.schedule import Plan, TimedTask

__all__ = ["RULES", "Violation", "validate"]


def _expected_tasks(plan: Plan) -> dict[str, tuple[str, float, str]]:
    """task name -> (resource, own duration, pass) straight from the problem definition."""
    p = plan.problem
    names = [d.name for d in p.devices]
    grads = ("B", "W") if plan.order.backward == "split" else ("BW",)
    out: dict[str, tuple[str, float, str]] = {}
    for m in range(p.microbatches):
        for s, st in enumerate(p.stages):
            dev = comm_resource(names[st.device]) if st.stream == COMM_STREAM else names[st.device]
            out[compute_name(s, "F", m)] = (dev, st.forward, "F")
            for g in grads:
                out[compute_name(s, g, m)] = (dev, {"B": st.input_grad, "W": st.weight_grad,
                                                    "BW": st.input_grad + st.weight_grad}[g], g)
        for e in p.edges:
            a, b = p.stages[e.src].device, p.stages[e.dst].device
            if a != b and e.transfer_ms > 0:
                out[transfer_name(e.src, e.dst, "F", m)] = (f"{names[a]}->{names[b]}", e.transfer_ms, "T")
                out[transfer_name(e.dst, e.src, "B", m)] = (f"{names[b]}->{names[a]}", e.transfer_ms, "T")
    return out


def validate(plan: Plan, tol: float = 1e-9, limit: int = 50) -> list[Violation]:
    """All violations found (up to ``limit`` per rule); an empty list means the plan is valid."""
    found: list[Violation] = []
    counts: dict[int, int] = defaultdict(int)

    def report(rule: int, message: str, tasks: tuple[str, ...] = (), times: tuple[float, ...] = ()) -> None:
        counts[rule] += 1
        if counts[rule] <= limit:
            found.append(Violation(rule, message, tasks, times))

    problem = plan.problem
    expected = _expected_tasks(plan)
    makespan = max((t.end for t in plan.tasks), default=0.0)
    eps = tol * max(1.0, abs(makespan))

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
        for name in expected:
            if name not in by_name:
                report(1, f"task {name} is missing", (name,))

    for gid, members in groups.items():
        names = tuple(t.task for t in members)
        if len(members) < 2:
            report(8, f"block {gid} has a single task {names[0]}", names)
            continue
        if len({t.resource for t in members}) > 1 or len({t.start for t in members}) > 1 \
                or len({t.end for t in members}) > 1:
            report(8, f"block ({';'.join(names)}) members differ in resource, start or end", names)
            continue
        want = problem.block_duration([expected[n][1] for n in names], [expected[n][2] for n in names])
        got = members[0].end - members[0].start
        if abs(got - want) > eps:
            report(2, f"block ({';'.join(names)}) lasts {got:g}, should last {want:g}", names,
                   (members[0].start, members[0].end))

    # rule 3 -----------------------------------------------------------------------------------
    def broken(before: str, after: str) -> None:
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

    def check_pairs(befores: list[str], afters: list[str]) -> None:
        """Fast path over many (before, after) pairs; anything suspicious goes to ``broken``."""
        get = by_name.get
        for x, y in zip(befores, afters):
            a, b = get(x), get(y)
            if a is None or b is None or b[2] < a[3] - eps or (a[4] >= 0 and a[4] == b[4]):
                broken(x, y)

    grad = "B" if plan.order.backward == "split" else "BW"
    mbs = range(problem.microbatches)
    names_of = {(s, k): compute_names(s, k, problem.microbatches) for s in range(problem.num_stages)
                for k in (("F", "B", "W") if grad == "B" else ("F", "BW"))}
    for s in range(problem.num_stages):
        check_pairs(names_of[(s, "F")], names_of[(s, grad)])
        if grad == "B":
            check_pairs(names_of[(s, "B")], names_of[(s, "W")])
    for e in problem.edges:
        if transfer_name(e.src, e.dst, "F", 0) in expected:
            fwd = [transfer_name(e.src, e.dst, "F", m) for m in mbs]
            bwd = [transfer_name(e.dst, e.src, "B", m) for m in mbs]
            check_pairs(names_of[(e.src, "F")], fwd)
            check_pairs(fwd, names_of[(e.dst, "F")])
            check_pairs(names_of[(e.dst, grad)], bwd)
            check_pairs(bwd, names_of[(e.src, grad)])
        else:
            check_pairs(names_of[(e.src, "F")], names_of[(e.dst, "F")])
            check_pairs(names_of[(e.dst, grad)], names_of[(e.src, grad)])
    def fenced(name: str) -> TimedTask | None:
        try:
            return by_name.get(entry_names(name, split_backward=grad == "B")[0])
        except OpplanError:
            return None

    for before, after in plan.order.fences:    # waits the plan's own program declares
        a, b = fenced(before), fenced(after)
        if a is None or b is None:
            report(3, f"fence {before} < {after} names a task the plan does not have", (before, after))
        elif b.start < a.end - eps:
            report(3, f"{after} starts at {b.start:g} before {before} ends at {a.end:g}, against the order's fence",
                   (before, after), (a.end, b.start))

    # rule 4 -----------------------------------------------------------------------------------
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
    for resource, intervals in per_resource.items():
        intervals.sort()
        for (s1, e1, n1), (s2, e2, n2) in zip(intervals, intervals[1:]):
            if s2 < e1 - eps and e2 - s2 > eps and e1 - s1 > eps:
                report(4, f"{n1} [{s1:g}, {e1:g}) and {n2} [{s2:g}, {e2:g}) overlap on {resource}", (n1, n2),
                       (s1, e1, s2, e2))

    # rule 6 (and the peaks rule 7 checks) ---------------------------------------------------------
    events: dict[int, list[tuple[float, int, float, str]]] = defaultdict(list)
    for s, st in enumerate(problem.stages):
        if st.activation_bytes == 0:
            continue
        for f_name, w_name in zip(names_of[(s, "F")], names_of[(s, "W" if grad == "B" else "BW")]):
            f, free = by_name.get(f_name), by_name.get(w_name)
            if f is None or free is None:
                continue
            events[st.device].append((f[2], 1, st.activation_bytes, f_name))
            events[st.device].append((free[3], 0, -st.activation_bytes, w_name))
    peaks = [0.0] * problem.num_devices
    for d, dev in enumerate(problem.devices):
        params = problem.param_bytes(d)
        if params > dev.memory_bytes * (1 + 1e-9):
            report(6, f"{dev.name}: parameters alone ({params:g} B) exceed the cap {dev.memory_bytes:g} B")
        level = peak = 0.0
        over = False
        for time, _, delta, name in sorted(events.get(d, [])):   # at equal times, releases first
            level += delta
            if level > peak:
                peak = level
                if not over and params + level > dev.memory_bytes * (1 + 1e-9) + 1e-9:
                    over = True
                    report(6, f"{dev.name} holds {params + level:g} B at time {time:g} (after {name} starts), "
                              f"cap {dev.memory_bytes:g} B", (name,), (time,))
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
        n_dev = problem.num_devices
        recomputed = {
            "makespan": makespan,
            "busy": busy,
            "bubble": [makespan - b for b in busy],
            "bubble_ratio": 1.0 - sum(busy) / (n_dev * makespan) if makespan > 0 else 0.0,
            "peak_activation_bytes": peaks,
            "peak_memory_bytes": [problem.param_bytes(d) + peaks[d] for d in range(n_dev)],
            "exposed_communication": [_exposed(per_resource.get(comm_resource(dev.name), []),
                                               per_resource.get(dev.name, []), makespan)
                                      for dev in problem.devices],
        }
        for key, value in recomputed.items():
            got = getattr(plan.metrics, key)
            got_list, want_list = (got, value) if isinstance(value, list) else ([got], [value])
            if not isinstance(got_list, list) or len(got_list) != len(want_list) or any(
                    not math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6 * max(1.0, makespan))
                    for x, y in zip(got_list, want_list)):
                report(7, f"reported {key} differs from the one recomputed from the task times")
    for rule, count in sorted(counts.items()):
        if count > limit:
            found.append(Violation(rule, f"... and {count - limit} more violations of this rule"))
    return found


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
    comm_union, busy = _union(comm), _union(compute)
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
