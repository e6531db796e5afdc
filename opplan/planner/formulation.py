"""The lower-level MIP: a time-indexed *step* formulation on a time grid, for a fixed horizon T.

Binary z[j,t] = 1 means task j has started by grid time t. It is a variable only inside j's
window [ES_j, LS_j), where ES comes from heads and LS = T - tail. It is 0 before the window and
1 after it, and start_j = ES_j + Σ_t (1 - z[j,t]). Rows:

  monotone    z[j,t-1] <= z[j,t]
  arcs        z[j,t] <= z[i, t - p_i - lag]               (dependencies, order and memory arcs)
  one at a time  Σ_{j on r} z[j,t] - z[j,t-p_j] <= 1       at every t, per resource r (a
                                                           device's compute and its comm stream)
  memory      Σ_F a_F z[F,t] - Σ_W a_W z[W,t-p_W] <= room  at every t (skipped where the memory
                                                           arcs already say exactly this)

Its LP relaxation is strong. The planner asks "is there a schedule of length T?" for T = lower
bound, +1, ...; the first feasible T is optimal when every smaller one was proven infeasible.
With objective "memory", one horizon is fixed and the peak memory is minimised.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from opplan.actions import ComputeTask, Pass
from opplan.planner.bounds import Arcs, memory_room
from opplan.planner.linear import LinearModel
from opplan.problem import Problem, comm_resource
from opplan.schedule import Order

MAX_GRID_STEPS = 1600    # exact grids up to this many steps over the horizon
INEXACT_GRID_STEPS = 800   # otherwise: this many steps, durations rounded to the nearest step


@dataclass
class Grid:
    """Time grid: ``scale`` ms (or time units) per step; ``exact`` when no duration was rounded."""

    scale: float
    exact: bool


MAX_BINARIES = 40_000     # inexact grids are coarsened until the windows fit in about this many binaries


def choose_grid(problem: Problem, horizon: float, total_slack: float = 0.0) -> Grid:
    """The coarsest step on which every duration and transfer is whole, if the horizon then
    needs at most MAX_GRID_STEPS steps; else horizon / INEXACT_GRID_STEPS, rounding to the nearest.
    Model size grows with each task's window (its slack), not with the whole horizon:
    ``total_slack`` (the sum of the windows) coarsens an inexact grid to about MAX_BINARIES."""
    values = [v for st in problem.stages for v in (st.forward, st.input_grad, st.weight_grad) if v > 0]
    values += [e.transfer_ms for e in problem.edges if e.transfer_ms > 0]
    if not values:
        return Grid(1.0, True)
    for step in (1.0, 0.5, 0.25, 0.2, 0.1, 0.05, 0.025, 0.02, 0.01):
        if all(abs(v / step - round(v / step)) < 1e-9 for v in values):
            if horizon / step <= MAX_GRID_STEPS:
                return Grid(step, True)
            break
    return Grid(max(horizon / INEXACT_GRID_STEPS, total_slack / MAX_BINARIES), False)


@dataclass
class StepModel:
    """One horizon's model and the map from its variables back to start times."""

    arcs: Arcs
    horizon: int
    es: list[int]
    ls: list[int]
    model: LinearModel = field(default_factory=LinearModel)
    col: dict[tuple[int, int], int] = field(default_factory=dict)
    infeasible: bool = False
    peak: int | None = None

    def z(self, j: int, t: int) -> int | float:
        """Variable index, or the constant 0.0 / 1.0 outside the window."""
        if t < self.es[j]:
            return 0.0
        if t >= self.ls[j]:
            return 1.0
        return self.col[(j, t)]

    def starts(self, values: np.ndarray) -> list[int]:
        out = []
        for j in range(len(self.arcs.tasks)):
            s = self.es[j]
            for t in range(self.es[j], self.ls[j]):
                if values[self.col[(j, t)]] < 0.5:
                    s = t + 1
            out.append(s)
        return out


def _fold(model: StepModel, terms: list[tuple[float, int, int]]) -> tuple[dict[int, float], float]:
    """Σ coef·z[j,t] as (variable coefficients, constant): z outside a window is a constant."""
    cols: dict[int, float] = defaultdict(float)
    const = 0.0
    for coef, j, t in terms:
        v = model.z(j, t)
        if isinstance(v, float):
            const += coef * v
        else:
            cols[v] += coef
    return {c: a for c, a in cols.items() if a != 0}, const


def _row(model: StepModel, terms: list[tuple[float, int, int]], rhs: float) -> None:
    """Add Σ coef·z[j,t] <= rhs; drop rows that can never bind."""
    cols, const = _fold(model, terms)
    if not cols:
        if const > rhs + 1e-9:
            model.infeasible = True
        return
    if const + sum(a for a in cols.values() if a > 0) <= rhs + 1e-9:
        return
    model.model.add_le(list(cols), list(cols.values()), rhs - const)


def build_step_model(problem: Problem, arcs: Arcs, head: list[float], tail: list[float], horizon: int,
                     minimise_memory: bool = False) -> StepModel:
    """The model for makespan <= ``horizon`` grid steps (arcs, heads and tails on the grid)."""
    es = [int(math.ceil(h - 1e-9)) for h in head]
    ls = [int(math.floor(horizon - q + 1e-9)) for q in tail]
    sm = StepModel(arcs, horizon, es, ls)
    if any(latest < earliest for earliest, latest in zip(es, ls)):
        sm.infeasible = True
        return sm
    dur = [int(round(d)) for d in arcs.duration]
    for j in range(len(arcs.tasks)):
        for t in range(es[j], ls[j]):
            sm.col[(j, t)] = sm.model.add_binary()
    for j in range(len(arcs.tasks)):
        for t in range(es[j] + 1, ls[j]):
            _row(sm, [(1, j, t - 1), (-1, j, t)], 0)
    for i, j, lag in arcs.arcs:
        shift = dur[i] + int(round(lag))
        for t in range(es[j], ls[j]):
            _row(sm, [(1, j, t), (-1, i, t - shift)], 0)
    by_device: dict[int, list[int]] = defaultdict(list)
    by_machine: dict[int, list[int]] = defaultdict(list)
    for j, d in enumerate(arcs.device):
        by_device[d].append(j)
        by_machine[arcs.machine[j]].append(j)
    if minimise_memory:
        sm.peak = sm.model.add_var(0.0, math.inf, False, "peak")
        sm.model.minimise({sm.peak: 1.0})
    for tasks in by_machine.values():
        lo = min(es[j] for j in tasks)
        hi = max(ls[j] + dur[j] for j in tasks)
        for t in range(lo, hi):
            terms = []
            for j in tasks:
                if dur[j] > 0 and es[j] <= t < ls[j] + dur[j]:
                    terms += [(1, j, t), (-1, j, t - dur[j])]
            _row(sm, terms, 1)
    for d, tasks in by_device.items():   # memory: every stage on the device, whatever its stream
        lo = min(es[j] for j in tasks)
        hi = max(ls[j] + dur[j] for j in tasks)
        forward_stages = {arcs.tasks[j][1] for j in tasks if arcs.tasks[j][0] == "F"
                          and problem.stages[arcs.tasks[j][1]].activation_bytes > 0}
        room = memory_room(problem, d)
        if minimise_memory or (len(forward_stages) > 1 and math.isfinite(room)):
            params = problem.param_bytes(d)
            for t in range(lo, hi):
                terms = [(problem.stages[arcs.tasks[j][1]].activation_bytes, j, t) for j in tasks
                         if arcs.tasks[j][0] == "F"]
                terms += [(-problem.stages[arcs.tasks[j][1]].activation_bytes, j, t - dur[j]) for j in tasks
                          if arcs.tasks[j][0] == "W"]
                if minimise_memory:
                    # params + live activations <= peak, and still within the cap
                    cols, const = _fold(sm, terms)
                    sm.model.add_le(list(cols) + [sm.peak], list(cols.values()) + [-1.0], -const - params)
                    if math.isfinite(room):
                        _row(sm, terms, room)
                else:
                    _row(sm, terms, room)
    return sm


def order_from_grid_starts(problem: Problem, arcs: Arcs, starts: list[int]) -> Order:
    """Each resource's tasks by start (every device, and each comm stream that has tasks). At
    equal starts zero-length tasks go first (a weight-gradient that frees memory at t precedes a
    forward that allocates at t), then the arcs' topological order."""
    pos = {t: p for p, t in enumerate(arcs.topo)}
    per_machine: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    for j in range(len(arcs.tasks)):
        per_machine[arcs.machine[j]].append((starts[j], 1 if arcs.duration[j] > 0 else 0, pos[j], j))
    n = problem.num_devices
    names = [dev.name for dev in problem.devices] + [comm_resource(dev.name) for dev in problem.devices]
    seqs = {}
    for r, name in enumerate(names):
        if r >= n and r not in per_machine:
            continue
        entries = sorted(per_machine.get(r, []))
        seqs[name] = tuple(ComputeTask(s, Pass(k), m) for k, s, m in (arcs.tasks[j] for *_, j in entries))
    return Order(seqs, "split")
