"""Arcs, earliest starts, tails and lower bounds for one placed problem.

Arcs ``(i, j, lag)`` mean start(j) >= start(i) + duration(i) + lag. Beyond the problem's own
dependencies (transfers become lags here), two families are valid for some optimal schedule:

* order arcs (k,s,m) -> (k,s,m+1): micro-batches are interchangeable, so relabelling the k-th
  task of each (stage, pass) as micro-batch k keeps every dependency and every memory level;
* memory arcs W(s,m) -> F(s,m+c_s), c_s = floor(room on the device / activation bytes of s): with
  the order arcs, forwards started minus weight-gradients ended on s can never exceed c_s.

Heads add a one-machine bound over each task's same-resource ancestors (they run one at a time),
tails the mirror image; the makespan bound is the best of head + tail and, per resource (a
device's compute stream, or its communication stream), earliest start + remaining work + least
tail over any subset of its tasks.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from opplan.errors import OpplanError
from opplan.problem import COMPUTE_STREAM, Problem

PASS_ORDER = ("F", "B", "W")
Task = tuple[str, int, int]   # (pass, stage, micro-batch)


@dataclass
class Arcs:
    tasks: list[Task]
    index: dict[Task, int]
    device: list[int]          # the stage's device: memory is per device
    duration: list[float]
    arcs: list[tuple[int, int, float]]
    topo: list[int]
    machine: list[int]         # one-at-a-time resource: d for d's compute, devices + d for its comm stream


def to_grid(value: float, scale: float | None) -> float:
    """``value`` in whole grid steps, rounded to the nearest (exact when it is a multiple).

    Rounding to the nearest keeps the grid model close to the true times; the grid only proposes
    orders, which the simulator re-times exactly, and a bound from an inexact grid is not claimed.
    """
    return float(round(value / scale)) if scale else value


def _durations(problem: Problem, scale: float | None) -> dict[tuple[str, int], float]:
    out = {}
    for s, st in enumerate(problem.stages):
        for k, d in (("F", st.forward), ("B", st.input_grad), ("W", st.weight_grad)):
            out[(k, s)] = to_grid(d, scale)
    return out


def transfer_lag(problem: Problem, src: int, dst: int, scale: float | None = None) -> float:
    e = problem.edge(src, dst)
    if problem.stages[src].device == problem.stages[dst].device or e.transfer_ms <= 0:
        return 0.0
    return to_grid(e.transfer_ms, scale)


def machine_of(problem: Problem, stage: int) -> int:
    """The resource a stage's tasks hold, as an index: its device's compute stream (the device
    index) or its communication stream (devices + device index); each runs one task at a time."""
    st = problem.stages[stage]
    return st.device if st.stream == COMPUTE_STREAM else problem.num_devices + st.device


def memory_room(problem: Problem, device: int) -> float:
    """Bytes available for activations on ``device`` (cap minus parameters)."""
    return problem.devices[device].memory_bytes - problem.param_bytes(device)


def build_arcs(problem: Problem, scale: float | None = None, symmetry: bool = True,
               memory: bool = True) -> Arcs:
    """Tasks and arcs; with ``scale`` durations and lags are in whole grid steps."""
    dur = _durations(problem, scale)
    M = problem.microbatches
    tasks = [(k, s, m) for m in range(M) for s in range(problem.num_stages) for k in PASS_ORDER]
    index = {t: i for i, t in enumerate(tasks)}
    device = [problem.stages[s].device for _, s, _ in tasks]
    machine = [machine_of(problem, s) for _, s, _ in tasks]
    duration = [dur[(k, s)] for k, s, _ in tasks]
    arcs: list[tuple[int, int, float]] = []
    for m in range(M):
        for s in range(problem.num_stages):
            for q in problem.succs(s):
                lag = transfer_lag(problem, s, q, scale)
                arcs.append((index[("F", s, m)], index[("F", q, m)], lag))
                arcs.append((index[("B", q, m)], index[("B", s, m)], lag))
            arcs.append((index[("F", s, m)], index[("B", s, m)], 0.0))
            arcs.append((index[("B", s, m)], index[("W", s, m)], 0.0))
    if symmetry:
        for s in range(problem.num_stages):
            for k in PASS_ORDER:
                for m in range(M - 1):
                    arcs.append((index[(k, s, m)], index[(k, s, m + 1)], 0.0))
    if memory:
        for s, st in enumerate(problem.stages):
            if st.activation_bytes <= 0:
                continue
            room = memory_room(problem, st.device)
            c = math.floor(room / st.activation_bytes + 1e-9) if math.isfinite(room) else M
            if c < 1:
                raise OpplanError(f"stage {st.name} on {problem.devices[st.device].name}: the memory cap leaves "
                                  f"room for no activation of it")
            if symmetry:
                for m in range(M - c):
                    arcs.append((index[("W", s, m)], index[("F", s, m + c)], 0.0))
    return Arcs(tasks, index, device, duration, arcs, _topological(len(tasks), arcs), machine)


def _topological(n: int, arcs: list[tuple[int, int, float]]) -> list[int]:
    indeg = [0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for i, j, _ in arcs:
        out[i].append(j)
        indeg[j] += 1
    order = [t for t in range(n) if indeg[t] == 0]
    k = 0
    while k < len(order):
        for j in out[order[k]]:
            indeg[j] -= 1
            if indeg[j] == 0:
                order.append(j)
        k += 1
    if len(order) != n:
        raise RuntimeError("the arc set has a cycle (a bug: every arc family is acyclic together)")
    return order


def _one_machine(items: list[tuple[float, float]]) -> float:
    """max over i of (v_i + sum of p_k with v_k >= v_i): n tasks on one machine released at v."""
    best, acc = -math.inf, 0.0
    for v, p in sorted(items, key=lambda x: -x[0]):
        acc += p
        best = max(best, v + acc)
    return best


ONE_MACHINE_TASKS = 3_000    # above this many tasks the bounds skip their quadratic refinements (12k tasks: 35 s)


def heads_tails(a: Arcs, one_machine: bool | None = None) -> tuple[list[float], list[float]]:
    """head[j] = earliest start of j; tail[j] = least time from j's start to the end (incl. j).
    The one-machine refinement keeps ancestor sets (quadratic): by default only up to
    ``ONE_MACHINE_TASKS`` tasks, beyond which heads and tails are the plain longest paths."""
    n = len(a.tasks)
    if one_machine is None:
        one_machine = n <= ONE_MACHINE_TASKS
    preds: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    succs: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for i, j, lag in a.arcs:
        preds[j].append((i, lag))
        succs[i].append((j, lag))
    pos = {t: p for p, t in enumerate(a.topo)}
    dev_mask: dict[int, int] = defaultdict(int)
    for t in range(n):
        dev_mask[a.machine[t]] |= 1 << pos[t]

    def members(mask: int) -> list[int]:
        out = []
        while mask:
            low = mask & -mask
            out.append(a.topo[low.bit_length() - 1])
            mask ^= low
        return out

    head = [0.0] * n
    anc = [0] * n
    for t in a.topo:
        h, mask = 0.0, 0
        for i, lag in preds[t]:
            h = max(h, head[i] + a.duration[i] + lag)
            mask |= anc[i] | (1 << pos[i])
        anc[t] = mask
        if one_machine:
            same = members(mask & dev_mask[a.machine[t]])
            if same:
                h = max(h, _one_machine([(head[i], a.duration[i]) for i in same]))
        head[t] = h
    tail = [0.0] * n
    desc = [0] * n
    for t in reversed(a.topo):
        r, mask = 0.0, 0
        for j, lag in succs[t]:
            r = max(r, lag + tail[j])
            mask |= desc[j] | (1 << pos[j])
        desc[t] = mask
        if one_machine:
            same = members(mask & dev_mask[a.machine[t]])
            if same:
                r = max(r, _one_machine([(tail[j] - a.duration[j], a.duration[j]) for j in same]))
        tail[t] = a.duration[t] + r
    return head, tail


def lower_bound(a: Arcs, head: list[float], tail: list[float]) -> float:
    lb = max(h + q for h, q in zip(head, tail))
    by_dev: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
    for t in range(len(a.tasks)):
        by_dev[a.machine[t]].append((head[t], a.duration[t], tail[t] - a.duration[t]))
    for items in by_dev.values():
        # every distinct head is a release date to try (quadratic); on big devices only the first
        starts = sorted({h for h, _, _ in items}) if len(items) <= ONE_MACHINE_TASKS // 10 else [min(h for h, _, _ in items)]
        for h0 in starts:
            sub = sorted(((p, q) for h, p, q in items if h >= h0), key=lambda x: -x[1])
            acc = 0.0
            for p, q in sub:   # the subset whose remaining tail is at least q
                acc += p
                lb = max(lb, h0 + acc + q)
    return lb


def problem_lower_bound(problem: Problem) -> float:
    """The strongest makespan bound this module proves for ``problem`` (no solver involved)."""
    a = build_arcs(problem)
    head, tail = heads_tails(a)
    return lower_bound(a, head, tail)
