"""A solver-neutral mixed-integer linear model: the formulation is written once against this,
and each backend is a thin translation of its arrays.

Rows are ranges ``lo <= a·x <= hi`` stored as coordinate triplets and assembled to CSR on demand.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

INF = math.inf


class SolveStatus(str, enum.Enum):
    """What every backend's status is mapped to; anything unrecognised becomes UNKNOWN."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"            # stopped (time limit, gap, cancel) with an incumbent
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"      # stopped before any incumbent was found
    SIZE_LIMIT = "size_limit"        # the licence refused the model's size
    ERROR = "error"
    UNKNOWN = "unknown"

    @property
    def has_solution(self) -> bool:
        return self in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


@dataclass
class Progress:
    """One progress report: seconds since start, best objective found, best bound proven."""

    seconds: float
    incumbent: float
    bound: float


ProgressCallback = Callable[[Progress], None]


@dataclass
class SolveOptions:
    time_limit: float = 60.0
    mip_gap: float = 0.0
    threads: int = 2
    progress: ProgressCallback | None = None
    should_stop: Callable[[], bool] | None = None   # polled by the solver; True cancels (incumbent kept)
    verbose: bool = False


@dataclass
class SolveResult:
    status: SolveStatus
    solver: str
    objective: float = INF
    bound: float = -INF
    runtime: float = 0.0
    values: np.ndarray | None = None
    message: str = ""

    @property
    def gap(self) -> float:
        if not self.status.has_solution or not math.isfinite(self.objective):
            return INF
        if self.objective == 0:
            return 0.0 if self.bound >= -1e-9 else INF
        return max(0.0, (self.objective - self.bound) / abs(self.objective))


@dataclass
class LinearModel:
    """Variables with bounds and integrality, range rows, a linear objective to minimise, a hint."""

    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    integer: list[bool] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    cost: dict[int, float] = field(default_factory=dict)
    objective_offset: float = 0.0
    _rows: list[int] = field(default_factory=list)
    _cols: list[int] = field(default_factory=list)
    _vals: list[float] = field(default_factory=list)
    row_lower: list[float] = field(default_factory=list)
    row_upper: list[float] = field(default_factory=list)
    hint: dict[int, float] = field(default_factory=dict)

    # --- building ------------------------------------------------------------------------
    def add_var(self, lower: float = 0.0, upper: float = INF, integer: bool = False, name: str = "") -> int:
        self.lower.append(lower)
        self.upper.append(upper)
        self.integer.append(integer)
        self.names.append(name)
        return len(self.lower) - 1

    def add_binary(self, name: str = "") -> int:
        return self.add_var(0.0, 1.0, True, name)

    def add_row(self, cols: Sequence[int], coefs: Sequence[float], lower: float = -INF, upper: float = INF) -> int:
        r = len(self.row_lower)
        for c, a in zip(cols, coefs):
            if a != 0:
                self._rows.append(r)
                self._cols.append(c)
                self._vals.append(float(a))
        self.row_lower.append(lower)
        self.row_upper.append(upper)
        return r

    def add_le(self, cols: Sequence[int], coefs: Sequence[float], rhs: float) -> int:
        return self.add_row(cols, coefs, -INF, rhs)

    def add_ge(self, cols: Sequence[int], coefs: Sequence[float], rhs: float) -> int:
        return self.add_row(cols, coefs, rhs, INF)

    def add_eq(self, cols: Sequence[int], coefs: Sequence[float], rhs: float) -> int:
        return self.add_row(cols, coefs, rhs, rhs)

    def minimise(self, terms: dict[int, float], offset: float = 0.0) -> None:
        self.cost = dict(terms)
        self.objective_offset = offset

    # --- sizes and views -------------------------------------------------------------------
    @property
    def num_vars(self) -> int:
        """Columns, as a licence's size limit counts them."""
        return len(self.lower)

    def num_constraints_one_sided(self) -> int:
        """Rows counted as solvers with one-sided rows see them (a finite range counts twice):
        the other half of a licence's size limit."""
        return sum(2 if (math.isfinite(lo) and math.isfinite(hi) and lo != hi) else 1
                   for lo, hi in zip(self.row_lower, self.row_upper))

    @property
    def num_rows(self) -> int:
        """Range rows, each counted once."""
        return len(self.row_lower)

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row starts, column indices and values of the constraint matrix (rows in order)."""
        rows = np.asarray(self._rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        cols = np.asarray(self._cols, dtype=np.int32)[order]
        vals = np.asarray(self._vals, dtype=np.float64)[order]
        counts = np.bincount(rows, minlength=self.num_rows) if len(rows) else np.zeros(self.num_rows, dtype=np.int64)
        starts = np.zeros(self.num_rows + 1, dtype=np.int32)
        np.cumsum(counts, out=starts[1:])
        return starts, cols, vals

    def cost_vector(self) -> np.ndarray:
        c = np.zeros(self.num_vars)
        for j, a in self.cost.items():
            c[j] = a
        return c

    def check(self, values: np.ndarray, tol: float = 1e-6) -> list[str]:
        """Rows and bounds a solution breaks (used to trust nothing a solver says)."""
        problems = []
        x = np.asarray(values, dtype=float)
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        bad = np.where((x < lo - tol) | (x > hi + tol))[0]
        problems += [f"variable {self.names[j] or j} = {x[j]} outside [{lo[j]}, {hi[j]}]" for j in bad[:5]]
        starts, cols, vals = self.csr()
        products = np.append(vals * x[cols], 0.0)   # the sentinel keeps reduceat's indices in range
        activity = np.add.reduceat(products, starts[:-1]) if self.num_rows else np.zeros(0)
        empty = starts[:-1] == starts[1:]
        activity[empty] = 0.0
        rl, ru = np.asarray(self.row_lower), np.asarray(self.row_upper)
        bad_rows = np.where((activity < rl - tol * (1 + np.abs(rl))) | (activity > ru + tol * (1 + np.abs(ru))))[0]
        problems += [f"row {r}: {activity[r]} not in [{rl[r]}, {ru[r]}]" for r in bad_rows[:5]]
        return problems
