"""Makespan, bubbles, memory and lower bounds: the numbers plans are judged by.

bubble of a device = makespan − its busy time; bubble ratio = 1 − Σ busy / (devices × makespan).
Busy time is the compute stream's: a device's communication stream (all-to-all) is reported as
exposed communication, the part of it no computation hides.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from opplan.actions import ComputeTask, Pass, compute_names
from opplan.bulk import without_gc
from opplan.outputs import Metrics
from opplan.problem import Problem, comm_resource
from opplan.schedule import TimedTask
from opplan.tasks import build_task_graph


def device_busy(problem: Problem, tasks: Iterable[TimedTask]) -> list[float]:
    """Time each device computes; a block of tasks run together counts once (its first member in
    the tasks' order). Summed in the tasks' order, one after another, as a loop would."""
    columns = _Columns(tasks)
    index = {d.name: i for i, d in enumerate(problem.devices)}
    device = np.fromiter((index.get(r, -1) for r in columns.resource_names), dtype=np.int64,
                         count=len(columns.resource_names))[columns.resource]
    counted = _first_of_each_block(columns.group, device >= 0)
    length = columns.end - columns.start
    busy = []
    for d in range(problem.num_devices):
        mine = length[counted & (device == d)]
        busy.append(float(np.cumsum(mine)[-1]) if len(mine) else 0.0)
    return busy


class _Columns:
    """Timed tasks column by column (numpy arrays; resources as codes into ``resource_names``)."""

    def __init__(self, tasks: Iterable[TimedTask]) -> None:
        tasks = tasks if isinstance(tasks, (list, tuple)) else list(tasks)
        n = len(tasks)
        self.names, resources, starts, ends, groups = zip(*tasks) if tasks else ((),) * 5
        self.resource_names = list(dict.fromkeys(resources))
        code = dict(zip(self.resource_names, range(len(self.resource_names))))
        self.resource = np.fromiter(map(code.__getitem__, resources), dtype=np.int64, count=n)
        self.start = np.fromiter(starts, dtype=float, count=n)
        self.end = np.fromiter(ends, dtype=float, count=n)
        self.group = np.fromiter(groups, dtype=np.int64, count=n)


def _first_of_each_block(group: np.ndarray, among: np.ndarray) -> np.ndarray:
    """The tasks ``among`` those given that count: single tasks, and each block's first one."""
    counted = among & (group < 0)
    seen: set[int] = set()
    for i in np.flatnonzero(among & (group >= 0)).tolist():
        if int(group[i]) not in seen:
            seen.add(int(group[i]))
            counted[i] = True
    return counted


def exposed_communication(problem: Problem, tasks: Iterable[TimedTask]) -> list[float]:
    """Per device, time its comm stream is busy while its compute stream is idle.

    A sweep over start/end events of both streams: time counts while comm > 0 and compute == 0.
    A device whose comm stream runs nothing has none.
    """
    tasks = tasks if isinstance(tasks, (list, tuple)) else list(tasks)
    used = set(t.resource for t in tasks)
    if not any(comm_resource(d.name) in used for d in problem.devices):
        return [0.0] * problem.num_devices
    stream_of: dict[str, tuple[int, int]] = {}
    for d, dev in enumerate(problem.devices):
        stream_of[dev.name] = (d, 0)
        stream_of[comm_resource(dev.name)] = (d, 1)
    events: list[list[tuple[float, int, int]]] = [[] for _ in range(problem.num_devices)]
    seen_groups: set[int] = set()
    for t in tasks:
        where = stream_of.get(t.resource)
        if where is None or t.end <= t.start:
            continue
        if t.group >= 0:
            if t.group in seen_groups:
                continue
            seen_groups.add(t.group)
        d, stream = where
        events[d].append((t.start, 1, stream))
        events[d].append((t.end, -1, stream))
    out = []
    for evs in events:
        evs.sort()
        active = [0, 0]
        last, total = 0.0, 0.0
        for time, delta, stream in evs:
            if active[1] > 0 and active[0] == 0:
                total += time - last
            last = time
            active[stream] += delta
        out.append(total)
    return out


def memory_events(problem: Problem, tasks: Iterable[TimedTask]) -> list[list[tuple[float, float]]]:
    """Per device, (time, change in activation bytes): +bytes at a forward's start, −bytes at the
    end of the weight-gradient (or full backward) that frees it. Releases sort before allocations."""
    # one lookup per task (by name, as the codec writes them) is cheaper than parsing every name
    effects = _memory_effects(problem)
    events: list[list[tuple[float, float]]] = [[] for _ in range(problem.num_devices)]
    for t in tasks:
        effect = effects.get(t.task)
        if effect is not None:
            device, delta, at_end = effect
            events[device].append((t.end if at_end else t.start, delta))
    for e in events:
        e.sort()
    return events


def _memory_effects(problem: Problem) -> dict[str, tuple[int, float, bool]]:
    """Task name -> (device, change in activation bytes, at its end) for every task that changes
    what a device holds: forwards store, weight gradients (or full backwards) free."""
    effects: dict[str, tuple[int, float, bool]] = {}
    for s, stage in enumerate(problem.stages):
        if stage.activation_bytes == 0:
            continue
        for pass_ in (Pass.FORWARD, Pass.WEIGHT_GRAD, Pass.FULL_BACKWARD):
            frees = pass_.frees_activations
            effect = (stage.device, -stage.activation_bytes if frees else stage.activation_bytes, frees)
            effects.update(dict.fromkeys(compute_names(s, pass_, problem.microbatches), effect))
    return effects


def memory_timeline(problem: Problem, tasks: Iterable[TimedTask]) -> list[list[tuple[float, float]]]:
    """Per device, step points (time, activation bytes alive from that time on)."""
    timelines = []
    for events in memory_events(problem, tasks):
        level, points = 0.0, [(0.0, 0.0)]
        for time, delta in events:
            level += delta
            if points and points[-1][0] == time:
                points[-1] = (time, level)
            else:
                points.append((time, level))
        timelines.append(points)
    return timelines


def peak_activation_bytes(problem: Problem, tasks: Iterable[TimedTask]) -> list[float]:
    """Per device, the most activation bytes alive at once: the running sum of ``memory_events``
    (sorted by time, releases first at equal times), over arrays."""
    tasks = tasks if isinstance(tasks, (list, tuple)) else list(tasks)
    effects = _memory_effects(problem)
    hits = [(effect, t) for effect, t in zip(map(effects.get, (t.task for t in tasks)), tasks) if effect is not None]
    device = np.fromiter((e[0] for e, _ in hits), dtype=np.int64, count=len(hits))
    delta = np.fromiter((e[1] for e, _ in hits), dtype=float, count=len(hits))
    time = np.fromiter((t.end if e[2] else t.start for e, t in hits), dtype=float, count=len(hits))
    peaks = []
    for d in range(problem.num_devices):
        mine = device == d
        order = np.lexsort((delta[mine], time[mine]))
        level = np.cumsum(delta[mine][order])
        highest = float(level.max()) if len(level) else 0.0
        peaks.append(highest if highest > 0.0 else 0.0)
    return peaks


def heads_and_tails(problem: Problem) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per task of micro-batch 0: earliest start (head), least time after its end (tail), duration;
    from the dependencies alone. Micro-batches are identical, so these hold for every one."""
    tg = build_task_graph(problem.with_microbatches(1), "split")
    n = len(tg)
    succs: list[list[int]] = [[] for _ in range(n)]
    indeg = [len(d) for d in tg.deps]
    for j in range(n):
        for i in tg.deps[j]:
            succs[i].append(j)
    topo, stack = [], [i for i in range(n) if indeg[i] == 0]
    while stack:
        i = stack.pop()
        topo.append(i)
        for j in succs[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                stack.append(j)
    head = [0.0] * n
    for i in topo:
        for j in succs[i]:
            head[j] = max(head[j], head[i] + tg.duration[i])
    tail = [0.0] * n
    for i in reversed(topo):
        for j in succs[i]:
            tail[i] = max(tail[i], tg.duration[j] + tail[j])
    return ({tg.keys[i]: head[i] for i in range(n)}, {tg.keys[i]: tail[i] for i in range(n)},
            {tg.keys[i]: tg.duration[i] for i in range(n)})


def lower_bound(problem: Problem) -> dict[str, float]:
    """Makespans no schedule can beat: one micro-batch's critical path, and for each resource (a
    device's compute stream, its comm stream) its earliest possible start + its total work + the
    least work that must follow it. The streams run side by side, so each is bounded alone."""
    head, tail, duration = heads_and_tails(problem)
    critical = max(head[k] + duration[k] + tail[k] for k in head)
    shrink = min(1.0, problem.overlap_factor)
    best_device = 0.0
    on_resource: dict[str, list[int]] = {}
    for s in range(problem.num_stages):
        on_resource.setdefault(problem.resource_of(s), []).append(s)
    for stages in on_resource.values():
        work = sum(s_.forward + s_.input_grad + s_.weight_grad for s_ in (problem.stages[s] for s in stages))
        load = work * problem.microbatches * shrink
        keys = [str(ComputeTask(s, p, 0)) for s in stages for p in (Pass.FORWARD, Pass.INPUT_GRAD, Pass.WEIGHT_GRAD)]
        first = min(head[k] for k in keys)
        last = min(tail[k] for k in keys)
        best_device = max(best_device, first + load + last)
    return {"critical_path": critical, "device": best_device, "lower_bound": max(critical, best_device)}


@without_gc
def compute_metrics(problem: Problem, tasks: Sequence[TimedTask]) -> Metrics:
    """Everything the CLI, charts and comparisons report, from the timed tasks alone."""
    tasks = tasks if isinstance(tasks, (list, tuple)) else list(tasks)
    makespan = max((t.end for t in tasks), default=0.0)
    busy = device_busy(problem, tasks)
    eps = 1e-9 * max(1.0, makespan)
    bubble = [0.0 if abs(makespan - b) <= eps else makespan - b for b in busy]   # no "-8.9e-16" idle
    n = problem.num_devices
    ratio = 1.0 - sum(busy) / (n * makespan) if makespan > 0 else 0.0
    peaks = peak_activation_bytes(problem, tasks)
    params = [problem.param_bytes(d) for d in range(n)]
    unit = problem.activation_unit_bytes
    bound = lower_bound(problem)
    return Metrics(
        makespan=makespan,
        busy=busy,
        bubble=bubble,
        bubble_ratio=ratio,
        peak_activation_bytes=peaks,
        peak_activations=[p / unit for p in peaks] if unit else None,
        param_bytes=params,
        peak_memory_bytes=[p + q for p, q in zip(peaks, params)],
        memory_cap_bytes=[d.memory_bytes for d in problem.devices],
        lower_bound=bound["lower_bound"],
        critical_path=bound["critical_path"],
        device_bound=bound["device"],
        num_tasks=len(tasks),
        exposed_communication=exposed_communication(problem, tasks),
    )
