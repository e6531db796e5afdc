"""Makespan, bubbles, memory and lower bounds: the numbers plans are judged by.

bubble of a device = makespan − its busy time; bubble ratio = 1 − Σ busy / (devices × makespan).
Busy time is the compute stream's: a device's communication stream (all-to-all) is reported as
exposed communication, the part of it no computation hides.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from opplan.actions import ComputeTask, Pass, compute_names
from opplan.outputs import Metrics
from opplan.problem import Problem, comm_resource
from opplan.schedule import TimedTask
from opplan.tasks import build_task_graph


def device_busy(problem: Problem, tasks: Iterable[TimedTask]) -> list[float]:
    """Time each device computes; a block of tasks run together counts once."""
    index = {d.name: i for i, d in enumerate(problem.devices)}
    busy = [0.0] * problem.num_devices
    seen_groups: set[int] = set()
    for t in tasks:
        d = index.get(t.resource)
        if d is None:
            continue
        if t.group >= 0:
            if t.group in seen_groups:
                continue
            seen_groups.add(t.group)
        busy[d] += t.end - t.start
    return busy


def exposed_communication(problem: Problem, tasks: Iterable[TimedTask]) -> list[float]:
    """Per device, time its comm stream is busy while its compute stream is idle.

    A sweep over start/end events of both streams: time counts while comm > 0 and compute == 0.
    """
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
    # task name -> (device, change, at its end): every forward and every pass that frees what it
    # stored, named by the codec; one lookup per task is cheaper than parsing every name
    effects: dict[str, tuple[int, float, bool]] = {}
    for s, stage in enumerate(problem.stages):
        if stage.activation_bytes == 0:
            continue
        for pass_ in (Pass.FORWARD, Pass.WEIGHT_GRAD, Pass.FULL_BACKWARD):
            frees = pass_.frees_activations
            effect = (stage.device, -stage.activation_bytes if frees else stage.activation_bytes, frees)
            effects.update(dict.fromkeys(compute_names(s, pass_, problem.microbatches), effect))
    events: list[list[tuple[float, float]]] = [[] for _ in range(problem.num_devices)]
    for t in tasks:
        effect = effects.get(t.task)
        if effect is not None:
            device, delta, at_end = effect
            events[device].append((t.end if at_end else t.start, delta))
    for e in events:
        e.sort()
    return events


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
    peaks = []
    for events in memory_events(problem, tasks):
        level = peak = 0.0
        for _, delta in events:
            level += delta
            peak = max(peak, level)
        peaks.append(peak)
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


def compute_metrics(problem: Problem, tasks: Sequence[TimedTask]) -> Metrics:
    """Everything the CLI, charts and comparisons report, from the timed tasks alone."""
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
