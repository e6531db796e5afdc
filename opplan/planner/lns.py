"""Large-neighbourhood search around CP-SAT for operator-level (unit-level) problems.

CP-SAT on the whole operator-level problem (thousands of unit-length tasks) stalls a few percent
above its first solutions. Here each step frees one neighbourhood of the incumbent (a window of
consecutive micro-batches, of neighbouring devices, or of time) and keeps every other task's
relative order on its resource as precedence, so CP-SAT only decides where the freed tasks go
among the others: a small search it finishes in seconds. Each neighbour's order is re-timed by
``make_plan`` and must pass the validator before it is accepted (ties accepted too, to move
along plateaus); the result is never worse than the warm start.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from opplan.outputs import Provenance
from opplan.planner.cpsat import CpSatResult, _flattened, _order, _scale, build_makespan_model, solve_cpsat, solve_until_stopped
from opplan.problem import Problem
from opplan.schedule import Plan
from opplan.simulate import DeadlockError, make_plan
from opplan.tasks import TaskGraph, build_task_graph

KINDS = ("microbatches", "devices", "time")
# the share of the time CP-SAT may run on the whole problem first (it goes 169 -> 160 within ~8 s on
# uniform_moe_8, mirrored, cap 9); measured there over 120 s: 160/159/157 at 30/60/120 s with 0.3,
# 157 from 30 s on with none, so none by default
OPENING_SHARE = 0.0


@dataclass(frozen=True)
class Neighbourhood:
    """The tasks one LNS step frees (task ids of the task graph), and what they are."""

    kind: str
    free: frozenset[int]
    label: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"neighbourhood kind must be one of {', '.join(KINDS)}, got {self.kind!r}")


@dataclass
class LnsStats:
    """Per neighbourhood kind: steps tried, improvements, ties accepted."""

    tried: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    improved: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    ties: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))


def microbatch_window(tg: TaskGraph, first: int, width: int) -> Neighbourhood:
    """Every task of micro-batches first .. first + width - 1 (both directions of a mirrored layout)."""
    chosen = range(first, first + width)
    return Neighbourhood("microbatches", frozenset(i for i in range(len(tg)) if tg.mb[i] in chosen),
                         f"micro-batches {first}-{first + width - 1}")


def device_window(tg: TaskGraph, first: int, width: int) -> Neighbourhood:
    """Every task held by devices first .. first + width - 1 (compute and communication streams)."""
    chosen = range(first, first + width)
    return Neighbourhood("devices", frozenset(i for i in range(len(tg)) if tg.device[i] in chosen),
                         f"devices {first}-{first + width - 1}")


def time_window(tg: TaskGraph, starts: list[int], begin: int, length: int) -> Neighbourhood:
    """Every task the incumbent starts in [begin, begin + length)."""
    return Neighbourhood("time", frozenset(i for i in range(len(tg)) if begin <= starts[i] < begin + length),
                         f"time [{begin}, {begin + length})")


def solve_lns(problem: Problem, warm: Plan, time_limit: float, workers: int = 2,
              should_stop: Callable[[], bool] | None = None,
              progress: Callable[[float, float, float], None] | None = None,
              step_seconds: float = 4.0, seed: int = 0, stats: LnsStats | None = None,
              opening: float = OPENING_SHARE) -> CpSatResult:
    """Minimise the makespan of ``problem`` from ``warm``: CP-SAT on the whole problem for the ``opening``
    share of the time (it takes the first easy steps fastest), then LNS steps of at most ``step_seconds``.
    Falls back to plain CP-SAT when durations are not whole in some small unit (rounded, nothing to re-use)."""
    began = time.perf_counter()
    tg = build_task_graph(problem, warm.order.backward)
    flat = _flattened(warm) if warm.valid else None
    if flat is None:
        return solve_cpsat(problem, warm, time_limit, workers, should_stop, progress)
    # the search moves a plan without overlapped pairs (the model's tasks one by one); the result is
    # the best of it and the warm start
    best = flat if flat.metrics.makespan < warm.metrics.makespan - 1e-9 else warm
    current = flat
    k, whole = _scale(list(tg.duration) + [flat.metrics.makespan], max(tg.duration, default=1.0))
    if not whole:
        return solve_cpsat(problem, warm, time_limit, workers, should_stop, progress)
    trace: list[tuple[float, float, float]] = []
    if opening > 0:
        offset = time.perf_counter() - began
        first = solve_cpsat(problem, current, opening * time_limit, workers, should_stop, progress)
        trace += [(offset + t, value, 0.0) for t, value, _ in first.trace if value < best.metrics.makespan - 1e-9]
        if first.plan.valid and first.plan.metrics.makespan < current.metrics.makespan - 1e-9:
            current = first.plan
            best = current if current.metrics.makespan < best.metrics.makespan - 1e-9 else best
    dur = [int(round(d * k)) for d in tg.duration]
    horizon = int(round(current.metrics.makespan * k))
    base = build_makespan_model(problem, tg, dur, horizon, int(math.ceil(warm.metrics.lower_bound * k - 1e-6)))
    rng = random.Random(seed)
    stats = stats if stats is not None else LnsStats()
    widths = {"microbatches": 2, "devices": 2, "time": max(4, horizon // 6)}
    step = 0
    while True:
        left = time_limit - (time.perf_counter() - began)
        if left < 0.5 or (should_stop is not None and should_stop()) \
                or best.metrics.makespan <= warm.metrics.lower_bound + 1e-9:   # nothing shorter exists
            break
        kind = KINDS[step % len(KINDS)]
        step += 1
        starts = _starts(tg, current, k)
        hood = _pick(kind, tg, starts, widths[kind], problem, rng)
        stats.tried[kind] += 1
        # one worker per step: on a small neighbourhood a single search without LP settles it in about
        # a second, where two workers with the LP ran out of time (uniform_moe_8: 1-2 s against > 6 s)
        seconds = min(step_seconds, left - 0.3)
        outcome, found = _step(problem, tg, dur, base, current, starts, hood, seconds, k, 1, should_stop, "shorten")
        if found is not None:
            stats.improved[kind] += 1
            current = found
            if found.metrics.makespan < best.metrics.makespan - 1e-9:
                best = found
                trace.append((time.perf_counter() - began, best.metrics.makespan, 0.0))
                if progress is not None:
                    progress(*trace[-1])
        elif outcome != "stopped":
            # no shorter plan here: move along the plateau, the freed tasks as early as they go, so that
            # the next neighbourhood starts from another order
            _, found = _step(problem, tg, dur, base, current, starts, hood, min(seconds, left - 0.3) / 2, k, 1,
                             should_stop, "compact")
            if found is not None:
                stats.ties[kind] += 1
                current = found
        # grow a neighbourhood CP-SAT settles quickly, shrink one it cannot
        if outcome == "settled":
            widths[kind] = _grow(kind, widths[kind], problem, horizon)
        elif outcome == "timeout":
            widths[kind] = max(1, widths[kind] * 3 // 4) if kind == "time" else max(1, widths[kind] - 1)
    status = "cancelled" if should_stop is not None and should_stop() else "feasible"
    return CpSatResult(best, status, 0.0, True, best is not warm, time.perf_counter() - began, trace, [],
                       flat)


def _grow(kind: str, width: int, problem: Problem, horizon: int) -> int:
    limit = {"microbatches": problem.microbatches, "devices": problem.num_devices, "time": horizon}[kind]
    return min(limit, width * 5 // 4 + 1) if kind == "time" else min(limit, width + 1)


def _pick(kind: str, tg: TaskGraph, starts: list[int], width: int, problem: Problem,
          rng: random.Random) -> Neighbourhood:
    if kind == "microbatches":
        return microbatch_window(tg, rng.randrange(max(1, problem.microbatches - width + 1)), width)
    if kind == "devices":
        return device_window(tg, rng.randrange(max(1, problem.num_devices - width + 1)), width)
    end = max(s + 1 for s in starts)
    if rng.random() < 0.5:   # half the time the window that ends the plan: it holds what sets the makespan
        return time_window(tg, starts, max(0, end - width), width)
    return time_window(tg, starts, rng.randrange(max(1, end - width + 1)), width)


def _starts(tg: TaskGraph, plan: Plan, k: int) -> list[int]:
    times = {t.task: t.start for t in plan.tasks}
    return [int(round(times[key] * k)) for key in tg.keys]


def _step(problem: Problem, tg: TaskGraph, dur: list[int], base, current: Plan, starts: list[int],
          hood: Neighbourhood, seconds: float, k: int, workers: int,
          should_stop: Callable[[], bool] | None, mode: str) -> tuple[str, Plan | None]:
    """One LNS step: 'settled' (searched through), 'timeout' or 'stopped', and the accepted plan (None: none).
    ``mode`` shorten: a plan at least one step shorter; compact: as long, the freed tasks earlier."""
    from ortools.sat.python import cp_model

    model = base.model.clone()
    start = [model.get_int_var_from_proto_index(v.index) for v in base.start]
    makespan = model.get_int_var_from_proto_index(base.makespan.index)
    incumbent = int(round(current.metrics.makespan * k))
    model.Add(makespan <= (incumbent - 1 if mode == "shorten" else incumbent))
    for keys in current.order.sequences.values():   # the fixed tasks keep their order on each resource
        fixed = [tg.index[key] for key in keys if tg.index[key] not in hood.free and dur[tg.index[key]] > 0]
        for a, b in zip(fixed, fixed[1:]):
            model.Add(start[b] >= start[a] + dur[a])
    for i in range(len(tg)):
        model.AddHint(start[i], starts[i])
    model.AddHint(makespan, incumbent)
    free = sorted(hood.free)
    model.Minimize(makespan if mode == "shorten" else sum(start[i] for i in free))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, seconds)
    solver.parameters.num_workers = max(1, workers)
    solver.parameters.cp_model_presolve = False   # as in cpsat.py: presolve eats the budget at operator level
    # no LP relaxation (as cpsat.py's no_lp worker): propagation alone moves fastest on unit-length tasks
    solver.parameters.linearization_level = 0
    code, _ = solve_until_stopped(solver, model, should_stop)
    settled = code in (cp_model.OPTIMAL, cp_model.INFEASIBLE)   # the neighbourhood searched through
    outcome = "settled" if settled else "stopped" if should_stop and should_stop() else "timeout"
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return outcome, None
    values = [solver.Value(s) for s in start]
    if mode == "compact" and sum(values[i] for i in free) >= sum(starts[i] for i in free):
        return outcome, None
    try:
        found = make_plan(problem, _order(tg, values, dur, current.order), Provenance(producer="lns"))
    except DeadlockError:
        return outcome, None
    limit = current.metrics.makespan - (1 / k if mode == "shorten" else 0)
    if not found.valid or found.metrics.makespan > limit + 1e-9:
        return outcome, None
    return outcome, found
