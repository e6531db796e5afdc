"""Constraint-programming engine (OR-Tools CP-SAT) for placed problems too large for the time-indexed MIP.

One interval per task, no-overlap per resource (compute stream, communication stream, link), the
task graph's precedences, and memory as a cumulative per device over each micro-batch's activation
lifetime (its forward's start to its weight gradient's end). Times are scaled to integers; when no
small scale makes every duration whole they are rounded up and the solver's bound proves nothing.
The solver's start times only give an order (each resource's tasks by start), which ``make_plan``
re-times ASAP and validates: the returned plan is never taken on the solver's word, and never worse
than the warm start.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from opplan.outputs import Provenance
from opplan.problem import Problem
from opplan.schedule import Order, Plan, parse_entry
from opplan.simulate import DeadlockError, make_plan
from opplan.tasks import TaskGraph, build_task_graph

SCALES = (1, 2, 4, 5, 8, 10, 16, 20, 25, 50, 100, 1000)


@dataclass
class CpSatResult:
    """The best valid plan (the warm start when nothing better was found) and what the solver proved."""

    plan: Plan
    status: str                  # optimal, feasible, infeasible, unknown or cancelled (the solver's verdict)
    bound: float                 # a lower bound on the makespan in problem time (0 when nothing is proven)
    exact: bool                  # False: durations were rounded, the bound is not a proof
    improved: bool
    seconds: float
    trace: list[tuple[float, float, float]] = field(default_factory=list)   # (seconds, makespan, bound)
    snapshots: list[tuple[float, Order]] = field(default_factory=list)    # with record=True: each solution's order
    start: Plan | None = None    # where the search began: the warm start, or its groups run one member at a time


def available() -> tuple[bool, str]:
    try:
        import ortools  # noqa: F401
    except ImportError:
        return False, "ortools is not installed (pip install ortools)"
    return True, "OR-Tools CP-SAT is installed"


def _scale(values: list[float], limit: float) -> tuple[int, bool]:
    """The smallest listed factor making every value whole (exact), else one rounding to ~1/1000 of ``limit``."""
    for k in SCALES:
        if all(abs(v * k - round(v * k)) <= 1e-9 * max(1.0, v * k) for v in values):
            return k, True
    return max(1, int(1000 / max(limit, 1e-9))), False


@dataclass
class MakespanModel:
    """The CP-SAT model of a placed problem (no objective set): one start variable per task of ``tg``."""

    model: object
    start: list
    makespan: object


def build_makespan_model(problem: Problem, tg: TaskGraph, dur: list[int], horizon: int, floor: int = 0,
                         symmetry: bool = True) -> MakespanModel:
    """Intervals, precedences, one task at a time per resource, memory; ``dur`` in integer steps."""
    from ortools.sat.python import cp_model

    n = len(tg)
    model = cp_model.CpModel()
    start = [model.NewIntVar(0, horizon - dur[i], f"s{i}") for i in range(n)]
    interval = [model.NewFixedSizeIntervalVar(start[i], dur[i], f"t{i}") for i in range(n)]
    has_succ = [False] * n
    for j, deps in enumerate(tg.deps):
        for i in deps:
            model.Add(start[j] >= start[i] + dur[i])
            has_succ[i] = True
    makespan = model.NewIntVar(min(floor, horizon), horizon, "makespan")
    by_resource: dict[str, list[int]] = {}
    for i in range(n):
        by_resource.setdefault(tg.resource[i], []).append(i)
    for tasks in by_resource.values():
        model.AddNoOverlap([interval[i] for i in tasks if dur[i] > 0])
        model.Add(makespan >= sum(dur[i] for i in tasks))   # the resource's load: redundant, but it lifts the bound
    for i in range(n):
        if not has_succ[i]:
            model.Add(makespan >= start[i] + dur[i])
    if symmetry:
        _order_microbatches(model, tg, start, dur)
    _memory(model, problem, tg, start, dur, horizon, symmetry)
    return MakespanModel(model, start, makespan)


def solve_cpsat(problem: Problem, warm: Plan, time_limit: float, workers: int = 2,
                should_stop: Callable[[], bool] | None = None,
                progress: Callable[[float, float, float], None] | None = None,
                symmetry: bool = True, record: bool = False, hint: bool = True) -> CpSatResult:
    """Minimise the makespan of ``problem`` (placed) from the warm start ``warm`` within ``time_limit`` seconds.
    ``hint=False`` uses the warm start only as the horizon: a poor hint (one micro-batch at a time)
    holds the search near it for the whole run."""
    began = time.perf_counter()   # before the import: loading CP-SAT takes seconds the first time
    from ortools.sat.python import cp_model

    tg = build_task_graph(problem, warm.order.backward)
    n = len(tg)
    timed = time.perf_counter()
    seed = _flattened(warm) if warm.valid else None   # the hint, and the start when it beats the warm start
    # the solver's answer is simulated and validated after it stops: keep that much time in hand
    reserve = 1.5 * (time.perf_counter() - timed)
    start_from = seed if seed is not None and seed.metrics.makespan < warm.metrics.makespan - 1e-9 else warm
    incumbent = start_from.metrics.makespan
    k, whole = _scale(list(tg.duration) + [incumbent], max(tg.duration, default=1.0))
    exact = whole and problem.overlap_factor >= 1   # overlapped F&B blocks are not modelled: no proof then
    dur = [int(math.ceil(d * k - 1e-9)) for d in tg.duration]
    # rounded-up durations may not fit the warm start's length: then the horizon is everything in a row
    horizon = int(math.ceil(incumbent * k - 1e-9)) if warm.valid and whole else int(sum(dur))
    trace: list[tuple[float, float, float]] = []
    snapshots: list[tuple[float, Order]] = []

    floor = int(math.ceil(warm.metrics.lower_bound * k - 1e-6)) if whole else 0
    built = build_makespan_model(problem, tg, dur, horizon, floor, symmetry)
    model, start, makespan = built.model, built.start, built.makespan
    model.Minimize(makespan)
    if seed is not None and hint:
        times = {t.task: t.start for t in seed.tasks}
        for i in range(n):
            model.AddHint(start[i], min(horizon - dur[i], max(0, int(round(times[tg.keys[i]] * k)))))

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, time_limit - (time.perf_counter() - began) - reserve)
    solver.parameters.num_workers = max(1, workers)
    # presolve turns unit-length no-overlaps into all-different constraints over booleans and probes
    # them: at operator level that takes the whole budget before a first solution, so it stays off
    solver.parameters.cp_model_presolve = False
    # the full-problem worker without the LP relaxation: on uniform_moe_8 (operator level) it reached
    # makespan 157 in 31 s where the default (with LP) stood at 161 after 30 s; the bound is no weaker there
    solver.parameters.subsolvers.append("no_lp")
    cancelled = threading.Event()

    class Watch(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            trace.append((time.perf_counter() - began, self.ObjectiveValue() / k,
                          self.BestObjectiveBound() / k if exact else 0.0))
            if record:
                snapshots.append((trace[-1][0], _order(tg, [self.Value(s) for s in start], dur, warm.order)))
            if progress is not None:
                progress(*trace[-1])
            if should_stop is not None and should_stop():
                cancelled.set()
                self.StopSearch()

    code, stopped = solve_until_stopped(solver, model, should_stop, Watch())
    if stopped:
        cancelled.set()
    names = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible", cp_model.INFEASIBLE: "infeasible"}
    status = "cancelled" if cancelled.is_set() else names.get(code, "unknown")
    bound = solver.BestObjectiveBound() / k if exact and code in (cp_model.OPTIMAL, cp_model.FEASIBLE) else 0.0
    best, improved = start_from, start_from is not warm
    if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        try:
            found = make_plan(problem, _order(tg, [solver.Value(s) for s in start], dur, warm.order),
                              Provenance(producer="cp-sat"))
        except DeadlockError:   # ties between zero-length tasks sorted against their dependencies
            found = None
        if found is not None and found.valid and (not best.valid or found.metrics.makespan < incumbent - 1e-9):
            best, improved = found, True
    return CpSatResult(best, status, min(bound, best.metrics.makespan), exact, improved,
                       time.perf_counter() - began, trace, snapshots, start_from)


def solve_until_stopped(solver, model, should_stop: Callable[[], bool] | None,
                        callback=None) -> tuple[int, bool]:
    """``solver.Solve`` that a stop request ends: ``should_stop`` is polled every 50 ms, also before
    the search has begun (where a solution callback would not see it). Returns (status, stopped)."""
    stopped = threading.Event()
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.05):
            if should_stop is not None and should_stop():
                stopped.set()
                solver.StopSearch()

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        code = solver.Solve(model) if callback is None else solver.Solve(model, callback)
    finally:
        done.set()
        watcher.join()
    return code, stopped.is_set()


def _flattened(warm: Plan) -> Plan | None:
    """The warm order with its groups (overlapped blocks) run member after member, re-timed: a start
    the model can express; None when that breaks a cap or deadlocks."""
    backward = warm.order.backward
    flat = Order({r: tuple(name for e in seq for name in parse_entry(e, backward))
                  for r, seq in warm.order.sequences.items()}, backward)
    try:
        plan = make_plan(warm.problem, flat, Provenance(producer="cp-sat"))
    except DeadlockError:
        return None
    return plan if plan.valid else None


def _order_microbatches(model, tg: TaskGraph, start: list, dur: list[int]) -> None:
    """Micro-batches of one stage are interchangeable: each (stage, pass) runs them in micro-batch order."""
    chains: dict[tuple[int, str], list[int]] = {}
    for i in range(len(tg)):
        if not tg.is_transfer(i):
            chains.setdefault((tg.stage[i], tg.pass_[i]), []).append(i)
    for chain in chains.values():
        chain.sort(key=lambda i: tg.mb[i])
        for a, b in zip(chain, chain[1:]):
            model.Add(start[b] >= start[a] + (dur[a] if dur[a] > 0 and dur[b] > 0 else 0))


def _in_flight_windows(model, tg: TaskGraph, items: list[tuple[int, int, float]], room: float, start: list,
                       dur: list[int]) -> None:
    """Redundant with the cumulative, but it propagates far better: a stage whose micro-batches run
    in order holds at most k = room // activation of them at once, so micro-batch m + k's forward
    starts after micro-batch m's weight gradient ends. (Valid only with the micro-batch order.)"""
    by_stage: dict[int, list[tuple[int, int, int, float]]] = {}
    for f, w, a in items:
        by_stage.setdefault(tg.stage[f], []).append((tg.mb[f], f, w, a))
    for lives in by_stage.values():
        lives.sort()
        k = int(math.floor(room / lives[0][3] + 1e-9))
        if k < 1:
            continue
        for (_, _, w, _), (_, f, _, _) in zip(lives, lives[k:]):
            model.Add(start[f] >= start[w] + dur[w])


def _memory(model, problem: Problem, tg: TaskGraph, start: list, dur: list[int], horizon: int,
            symmetry: bool = True) -> None:
    """Per device, live activations (forward start to weight-gradient end) within the cap less the parameters."""
    frees = {(tg.stage[i], tg.mb[i]): i for i in range(len(tg)) if tg.release[i] > 0}
    lives: dict[int, list[tuple[int, int, float]]] = {}
    for i in range(len(tg)):
        if tg.alloc[i] > 0 and (tg.stage[i], tg.mb[i]) in frees:
            lives.setdefault(tg.device[i], []).append((i, frees[(tg.stage[i], tg.mb[i])], tg.alloc[i]))
    for d, items in lives.items():
        room = problem.devices[d].memory_bytes - problem.param_bytes(d)
        if not math.isfinite(room) or sum(a for _, _, a in items) <= room + 1e-9:
            continue
        if symmetry:
            _in_flight_windows(model, tg, items, room, start, dur)
        q, whole = _scale([a for _, _, a in items] + [room], max(a for _, _, a in items))
        demands = [int(math.ceil(a * q - 1e-9)) for _, _, a in items]
        capacity = int(math.floor(room * q + 1e-9)) if whole else int(math.floor(room * q))
        spans = []
        for f, w, _ in items:
            size = model.NewIntVar(0, horizon, "")
            spans.append(model.NewIntervalVar(start[f], size, start[w] + dur[w], ""))
        model.AddCumulative(spans, demands, max(0, capacity))


def _order(tg: TaskGraph, starts: list[int], dur: list[int], like: Order) -> Order:
    """Each resource's tasks by start: compute and communication streams, and links too (so that they
    serve transfers in the solver's order rather than first come, first served)."""
    per: dict[str, list[int]] = {}
    for i in range(len(tg)):
        per.setdefault(tg.resource[i], []).append(i)
    sequences = {r: tuple(tg.keys[i] for i in sorted(tasks, key=lambda i: (starts[i], starts[i] + dur[i], i)))
                 for r, tasks in per.items()}
    return Order(sequences, like.backward)
