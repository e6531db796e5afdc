"""Makespan lower bounds from relaxations solved by CP-SAT: one device kept, every other one a pure delay.

The single-device relaxation keeps, for one device ``d``, everything that binds it: its compute
stream and its communication stream run one task at a time, and its live activations stay within
its cap. Every other task (other devices' compute and communication, link transfers) keeps its
duration and its dependencies but holds no resource and no memory: it starts as soon as its
predecessors end, as if it had a device of its own. Each plan of the problem is a plan of this
relaxation with the same makespan (it only drops constraints), so the relaxation's optimum, or
any bound CP-SAT proves on it, is a lower bound on the problem's makespan; the best over devices
is too.

Tasks without resource are folded into longest-path delays between the kept tasks: a release
time (from the start), a lag between two kept tasks, and a tail (to the end). Since nothing else
constrains them, scheduling them as early as their predecessors allow is always possible, so the
folded model has exactly the relaxation's optimum.

Plans that run a forward and a backward as one overlapped pair (DualPipe's F&B) are covered when
the pair takes at least the sum of its parts (overlap factor >= 1): its members run one after the
other inside the pair's span keep every dependency (each member starts no earlier and ends no
later than the pair) and every cap (allocations start no earlier, releases end no later). With a
factor below 1 no bound is claimed.

Micro-batch order (each (stage, pass) runs its micro-batches in index order) is kept as in the
full model: relabelling the k-th task of each (stage, pass) as micro-batch k keeps every
dependency, every resource's load and every memory level, in the relaxation as in the problem,
so some optimal plan of the relaxation has that order.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from opplan.planner.cpsat import solve_until_stopped
from opplan.problem import Problem
from opplan.tasks import TaskGraph, build_task_graph


@dataclass(frozen=True)
class RelaxedBound:
    """A makespan lower bound, the relaxation that gave it and whether the solver closed it."""

    value: float         # the bound in problem time (0 when nothing is proven)
    relaxation: str      # e.g. "device 3 alone (others as delays)"
    status: str          # closed: the relaxation gives no more; open: time ran out first; skipped: no proof possible
    seconds: float
    optimum_found: float | None = None   # the relaxation's best solution (an upper bound on the relaxation only)

    def __post_init__(self) -> None:
        if self.value < 0 or math.isnan(self.value):
            raise ValueError(f"a bound is a non-negative number, got {self.value!r}")
        if self.status not in ("closed", "open", "cancelled", "skipped"):
            raise ValueError(f"unknown status {self.status!r}")


@dataclass(frozen=True)
class FoldedDevice:
    """One device's tasks with every other task folded into delays (in integer time units)."""

    kept: list[int]                          # task ids of the task graph
    duration: dict[int, int]
    release: dict[int, int]                  # earliest start through resource-free predecessors
    lags: list[tuple[int, int, int]]         # start(j) >= start(i) + duration(i) + lag
    tail: dict[int, int]                     # least time from the task's end to the makespan
    floor: int                               # the longest path made of resource-free tasks only


def _integer_scale(values: list[float]) -> int | None:
    for k in (1, 2, 4, 5, 8, 10, 16, 20, 25, 50, 100, 1000):
        if all(abs(v * k - round(v * k)) <= 1e-9 * max(1.0, v * k) for v in values):
            return k
    return None


def fold_device(tg: TaskGraph, device: int, scale: int) -> FoldedDevice:
    """Release times, lags and tails of ``device``'s tasks through the others' (resource-free) tasks."""
    n = len(tg)
    dur = [int(round(d * scale)) for d in tg.duration]
    keep = [not tg.is_transfer(i) and tg.device[i] == device for i in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for j, deps in enumerate(tg.deps):
        for i in deps:
            succs[i].append(j)
    topo = _topological(n, tg.deps, succs)
    # release: longest path to i's start over free tasks only (a kept predecessor contributes via a lag)
    ready = [0] * n
    for i in topo:
        ready[i] = max((ready[p] + dur[p] for p in tg.deps[i] if not keep[p]), default=0)
    # tail: least time from i's end to the end over free tasks only
    after = [0] * n
    for i in reversed(topo):
        after[i] = max((dur[j] + after[j] for j in succs[i] if not keep[j]), default=0)
    floor = max((ready[i] + dur[i] + after[i] for i in range(n) if not keep[i]), default=0)
    kept = [i for i in range(n) if keep[i]]
    position = {t: p for p, t in enumerate(topo)}
    lags = [arc for i in kept for arc in _lags_from(i, dur, succs, keep, position)]
    return FoldedDevice(kept, {i: dur[i] for i in kept}, {i: ready[i] for i in kept}, lags,
                        {i: after[i] for i in kept}, floor)


def _lags_from(i: int, dur: list[int], succs: list[list[int]], keep: list[bool],
               position: dict[int, int]) -> list[tuple[int, int, int]]:
    """Arcs (i, j, lag) to every kept j reached from i directly or through free tasks only; lag is
    the longest such path from i's end to j's start."""
    free: set[int] = set()
    stack = [j for j in succs[i] if not keep[j]]
    while stack:
        t = stack.pop()
        if t not in free:
            free.add(t)
            stack.extend(j for j in succs[t] if not keep[j])
    dist = {t: 0 for t in free}   # longest time from i's end to t's start, settled in topological order
    best = {j: 0 for j in succs[i] if keep[j]}
    for t in sorted(free, key=position.__getitem__):
        through = dist[t] + dur[t]
        for j in succs[t]:
            if keep[j]:
                best[j] = max(best.get(j, 0), through)
            else:
                dist[j] = max(dist[j], through)
    return [(i, j, lag) for j, lag in best.items()]


def _topological(n: int, deps: list[list[int]], succs: list[list[int]]) -> list[int]:
    indeg = [len(d) for d in deps]
    order = [t for t in range(n) if indeg[t] == 0]
    k = 0
    while k < len(order):
        for j in succs[order[k]]:
            indeg[j] -= 1
            if indeg[j] == 0:
                order.append(j)
        k += 1
    return order
def device_bound(problem: Problem, device: int, time_limit: float, horizon: float | None = None, workers: int = 2,
                 should_stop: Callable[[], bool] | None = None, symmetry: bool = True,
                 presolve: bool = True) -> RelaxedBound:
    """The makespan bound CP-SAT proves within ``time_limit`` s on ``device`` alone (others as delays).
    ``horizon``: only plans of at most this makespan are searched; any plan of the problem is one of the
    relaxation, so a plan's makespan keeps the optimum, and "infeasible" proves horizon + 1 step.
    Asking for a short horizon (a decision run) propagates far better than minimising from a long one."""
    began = time.perf_counter()
    name = f"device {device} alone (others as delays)"
    tg = build_task_graph(problem, "split")
    room = problem.devices[device].memory_bytes - problem.param_bytes(device)
    scale = _integer_scale(list(tg.duration) + ([horizon] if horizon else []))
    if scale is None or problem.overlap_factor < 1:   # rounded times, or faster overlapped pairs: no proof
        return RelaxedBound(0.0, name, "skipped", time.perf_counter() - began)
    folded = fold_device(tg, device, scale)
    from ortools.sat.python import cp_model

    top = int(round(horizon * scale)) if horizon else sum(int(round(d * scale)) for d in tg.duration)
    model = cp_model.CpModel()
    start = {i: model.NewIntVar(folded.release[i], max(folded.release[i], top - folded.duration[i]), f"s{i}")
             for i in folded.kept}
    makespan = model.NewIntVar(folded.floor, max(folded.floor, top), "makespan")
    for i, j, gap in device_arcs(tg, folded, room, symmetry):   # dependencies, micro-batch order, windows
        model.Add(start[j] >= start[i] + gap)
    by_resource: dict[str, list[int]] = {}
    for i in folded.kept:
        model.Add(makespan >= start[i] + folded.duration[i] + folded.tail[i])
        if folded.duration[i] > 0:
            by_resource.setdefault(tg.resource[i], []).append(i)
    for tasks in by_resource.values():
        model.AddNoOverlap([model.NewFixedSizeIntervalVar(start[i], folded.duration[i], "") for i in tasks])
    _device_memory(model, tg, folded, start, room, top)
    model.Minimize(makespan)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit - (time.perf_counter() - began))
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.cp_model_presolve = presolve
    code, stopped = solve_until_stopped(solver, model, should_stop)
    status = "cancelled" if stopped else "closed" if code == cp_model.OPTIMAL else "open"
    if code == cp_model.INFEASIBLE:   # no plan within the horizon: the horizon + 1 step is a bound
        return RelaxedBound((top + 1) / scale, name, "closed", time.perf_counter() - began)
    proven = solver.BestObjectiveBound() if code in (cp_model.OPTIMAL, cp_model.FEASIBLE) else folded.floor
    found = solver.ObjectiveValue() / scale if code in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None
    return RelaxedBound(math.ceil(proven - 1e-9) / scale, name, status, time.perf_counter() - began, found)


def best_device_bound(problem: Problem, time_limit: float, horizon: float | None = None, workers: int = 2,
                      should_stop: Callable[[], bool] | None = None,
                      devices: list[int] | None = None) -> list[RelaxedBound]:
    """``device_bound`` for each device (default all), ``time_limit`` shared evenly; best first."""
    devices = list(range(problem.num_devices)) if devices is None else devices
    deadline = time.perf_counter() + time_limit
    out = []
    for k, d in enumerate(devices):
        if should_stop is not None and should_stop():
            break
        share = (deadline - time.perf_counter()) / (len(devices) - k)
        out.append(device_bound(problem, d, share, horizon, workers, should_stop))
    return sorted(out, key=lambda b: -b.value)


def _device_memory(model, tg: TaskGraph, folded: FoldedDevice, start: dict, room: float, top: int) -> None:
    """Live activations (forward start to weight-gradient end) within the device's room."""
    kept = set(folded.kept)
    frees = {(tg.stage[i], tg.mb[i]): i for i in kept if tg.release[i] > 0}
    items = [(i, frees[(tg.stage[i], tg.mb[i])], tg.alloc[i]) for i in folded.kept
             if tg.alloc[i] > 0 and (tg.stage[i], tg.mb[i]) in frees]
    if not items or not math.isfinite(room) or sum(a for _, _, a in items) <= room + 1e-9:
        return
    q = _integer_scale([a for _, _, a in items] + [room])
    if q is None:   # rounding demands up and the room down only tightens: not a relaxation then
        return
    spans = [model.NewIntervalVar(start[f], model.NewIntVar(0, top, ""), start[w] + folded.duration[w], "")
             for f, w, _ in items]
    model.AddCumulative(spans, [int(round(a * q)) for _, _, a in items], int(round(room * q)))


def device_arcs(tg: TaskGraph, folded: FoldedDevice, room: float, symmetry: bool = True) -> list[tuple[int, int, int]]:
    """Arcs (i, j, gap): start(j) >= start(i) + gap among the kept tasks: the folded dependencies,
    and with ``symmetry`` the micro-batch order and the in-flight windows (a stage holds at most
    room // activation of its micro-batches, so micro-batch m + k starts after m's weight gradient)."""
    arcs = [(i, j, folded.duration[i] + lag) for i, j, lag in folded.lags]
    if not symmetry:
        return arcs
    chains: dict[tuple[int, str], list[int]] = {}
    for i in folded.kept:
        chains.setdefault((tg.stage[i], tg.pass_[i]), []).append(i)
    for chain in chains.values():
        chain.sort(key=lambda i: tg.mb[i])
        for a, b in zip(chain, chain[1:]):
            arcs.append((a, b, folded.duration[a] if folded.duration[a] > 0 and folded.duration[b] > 0 else 0))
    if math.isfinite(room):
        for (stage, p), chain in chains.items():
            if p != "F" or tg.alloc[chain[0]] <= 0:
                continue
            frees = chains.get((stage, "W"))
            if not frees:
                continue
            k = int(math.floor(room / tg.alloc[chain[0]] + 1e-9))
            for w, f in zip(frees, chain[k:]):
                arcs.append((w, f, folded.duration[w]))
    return arcs


def device_fits_mip(problem: Problem, device: int, horizon: float, time_limit: float, threads: int = 2,
                    should_stop: Callable[[], bool] | None = None, symmetry: bool = True) -> tuple[str, float]:
    """Is there a plan of the single-device relaxation of makespan <= ``horizon``? A time-indexed
    feasibility MIP (its LP is far tighter than CP-SAT's interval model here): 'infeasible' proves the
    problem's makespan exceeds ``horizon``; also 'feasible' or 'unknown'. Returns (answer, seconds)."""
    from opplan.planner.linear import LinearModel, SolveOptions, SolveStatus
    from opplan.planner.solvers import solve_model

    began = time.perf_counter()
    tg = build_task_graph(problem, "split")
    scale = _integer_scale(list(tg.duration) + [horizon])
    if scale is None or problem.overlap_factor < 1:   # rounded times, or faster overlapped pairs: no proof
        return "unknown", time.perf_counter() - began
    folded = fold_device(tg, device, scale)
    room_bytes = problem.devices[device].memory_bytes - problem.param_bytes(device)
    T = int(round(horizon * scale))
    if folded.floor > T:
        return "infeasible", time.perf_counter() - began
    arcs = device_arcs(tg, folded, room_bytes, symmetry)
    windows = _windows(folded, arcs, T)
    if windows is None:
        return "infeasible", time.perf_counter() - began
    model = LinearModel()
    started: dict[int, dict[int, int]] = {}   # started[j][t]: column of "j has started by t", early <= t < late

    for j in folded.kept:
        lo, hi = windows[j]
        started[j] = {t: model.add_binary() for t in range(lo, hi)}
        for t in range(lo + 1, hi):
            model.add_le([started[j][t - 1], started[j][t]], [1, -1], 0)

    def term(j: int, t: int) -> int | tuple[int]:
        """'j started by t': (its column,) inside j's window, else the constant 0 (before its earliest
        start) or 1 (from its latest start on)."""
        lo, hi = windows[j]
        return 0 if t < lo else 1 if t >= hi else (started[j][t],)

    def add_le(terms: list[tuple[float, int | tuple[int]]], rhs: float) -> None:
        cols = [v[0] for _, v in terms if isinstance(v, tuple)]
        coefs = [a for a, v in terms if isinstance(v, tuple)]
        const = sum(a * v for a, v in terms if not isinstance(v, tuple))
        model.add_le(cols, coefs, rhs - const)

    for i, j, gap in arcs:   # j started by t => i started by t - gap
        for t in range(windows[j][0], windows[j][1]):
            add_le([(1, term(j, t)), (-1, term(i, t - gap))], 0)
    resources: dict[str, list[int]] = {}
    for j in folded.kept:
        if folded.duration[j] > 0:
            resources.setdefault(tg.resource[j], []).append(j)
    for tasks in resources.values():   # one task running per instant
        for t in range(T):
            terms = []
            for j in tasks:
                if windows[j][0] <= t < windows[j][1] + folded.duration[j]:
                    terms += [(1, term(j, t)), (-1, term(j, t - folded.duration[j]))]
            if terms:
                add_le(terms, 1)
    kept = set(folded.kept)
    frees = {(tg.stage[i], tg.mb[i]): i for i in kept if tg.release[i] > 0}
    lives = [(f, frees[(tg.stage[f], tg.mb[f])], tg.alloc[f]) for f in folded.kept
             if tg.alloc[f] > 0 and (tg.stage[f], tg.mb[f]) in frees]
    if math.isfinite(room_bytes) and sum(a for _, _, a in lives) > room_bytes + 1e-9:
        for t in range(T):   # allocated at a forward's start, freed at its weight gradient's end
            terms = []
            for f, w, a in lives:
                terms += [(a, term(f, t)), (-a, term(w, t - folded.duration[w]))]
            add_le(terms, room_bytes + 1e-9)
    model.minimise({})
    run = solve_model(model, "highs", SolveOptions(time_limit=max(0.5, time_limit - (time.perf_counter() - began)),
                                                   threads=threads, should_stop=should_stop))
    status = run.result.status
    answer = "infeasible" if status == SolveStatus.INFEASIBLE else "feasible" if status.has_solution else "unknown"
    return answer, time.perf_counter() - began


def _windows(folded: FoldedDevice, arcs: list[tuple[int, int, int]], T: int) -> dict[int, tuple[int, int]] | None:
    """(earliest start, latest start) of each kept task within makespan T, by longest paths; None
    when some window is empty (no plan of length T)."""
    early = dict(folded.release)
    late = {j: T - folded.duration[j] - folded.tail[j] for j in folded.kept}
    out: dict[int, list[tuple[int, int]]] = {}
    into: dict[int, list[tuple[int, int]]] = {}
    for i, j, g in arcs:
        out.setdefault(i, []).append((j, g))
        into.setdefault(j, []).append((i, g))
    indeg = {j: len(into.get(j, [])) for j in folded.kept}
    topo = [j for j in folded.kept if indeg[j] == 0]
    k = 0
    while k < len(topo):
        for j, _ in out.get(topo[k], []):
            indeg[j] -= 1
            if indeg[j] == 0:
                topo.append(j)
        k += 1
    for i in topo:
        for j, g in out.get(i, []):
            early[j] = max(early[j], early[i] + g)
    for j in reversed(topo):
        for i, g in into.get(j, []):
            late[i] = min(late[i], late[j] - g)
    if any(early[j] > late[j] for j in folded.kept):
        return None
    return {j: (early[j], late[j]) for j in folded.kept}


def relaxation_bound(problem: Problem, time_limit: float, start: float | None = None, devices: list[int] | None = None,
                     threads: int = 2, should_stop: Callable[[], bool] | None = None) -> RelaxedBound:
    """The single-device relaxations' bound, ascending: for T = ``start`` (default the analytic bound),
    T + 1, ... ask every device's feasibility MIP whether T fits; a T that one device rules out raises
    the bound to T + 1. Closed when every device fits some T (the relaxation gives no more)."""
    from opplan.planner.bounds import problem_lower_bound

    began = time.perf_counter()
    deadline = began + time_limit
    devices = _middle_first(problem.num_devices) if devices is None else devices
    scale = _integer_scale(list(build_task_graph(problem, "split").duration))
    if scale is None or problem.overlap_factor < 1:
        return RelaxedBound(0.0, "single device", "skipped", time.perf_counter() - began)
    # an optimal plan starts every task on the durations' grid (ASAP), so T ruled out means T + 1 step
    bound = math.ceil(scale * (problem_lower_bound(problem) if start is None else start) - 1e-9) / scale
    proved_by = "the analytic bound"
    while True:
        ruled_out = None
        for d in devices:
            left = deadline - time.perf_counter()
            if left < 0.5 or (should_stop is not None and should_stop()):
                return RelaxedBound(bound, f"single device, best: {proved_by}", "open", time.perf_counter() - began)
            answer, _ = device_fits_mip(problem, d, bound, left, threads, should_stop)
            if answer == "infeasible":
                ruled_out = d
                break
            if answer == "unknown":
                return RelaxedBound(bound, f"single device, best: {proved_by}", "open", time.perf_counter() - began)
        if ruled_out is None:
            return RelaxedBound(bound, f"single device, best: {proved_by}", "closed", time.perf_counter() - began)
        proved_by = f"device {ruled_out} alone rules out {bound:g}"
        bound += 1 / scale


def _middle_first(devices: int) -> list[int]:
    """Devices from the middle out: in a mirrored layout they wait longest for their first backward."""
    return sorted(range(devices), key=lambda d: (abs(2 * d - (devices - 1)), d))
