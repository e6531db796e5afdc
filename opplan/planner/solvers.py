"""Which backend runs, and why: ``auto`` takes Gurobi when it imports, is licensed and the model
fits its licence, HiGHS otherwise; a size-limit refusal during a run falls back to HiGHS."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from opplan.errors import OpplanError
from opplan.planner import backend_gurobi, backend_highs
from opplan.planner.linear import LinearModel, SolveOptions, SolveResult, SolveStatus

SOLVERS = ("auto", "gurobi", "highs")          # the backends of the time-indexed MIP
PLANNER_SOLVERS = (*SOLVERS, "cpsat")          # what a user may ask the planner for (CP-SAT has its own model)


@dataclass
class SolverRun:
    result: SolveResult
    reason: str        # one sentence a user can read: which solver ran and why


@lru_cache(maxsize=1)
def _gurobi_status() -> tuple[bool, str, int | None]:
    ok, why = backend_gurobi.available()
    if not ok:
        return False, why, None
    try:
        return True, why, backend_gurobi.licence_size_limit()
    except Exception as error:  # any failure probing the licence means: do not rely on Gurobi
        return False, f"gurobipy licence probe failed ({error})", None


def gurobi_fits(model: LinearModel) -> tuple[bool, str]:
    ok, why, limit = _gurobi_status()
    if not ok:
        return False, why
    if limit is None:
        return True, "Gurobi has an unrestricted licence"
    rows = model.num_constraints_one_sided()
    if model.num_vars > limit or rows > limit:
        return False, (f"the model ({model.num_vars} variables, {rows} constraints) exceeds Gurobi's free "
                       f"licence limit of {limit} variables and {limit} constraints")
    return True, f"the model ({model.num_vars} variables, {rows} constraints) fits Gurobi's free licence"


def solve_model(model: LinearModel, solver: str, options: SolveOptions) -> SolverRun:
    if solver not in SOLVERS:
        raise OpplanError(f"unknown solver {solver!r} (choose from {', '.join(SOLVERS)})")
    if solver in ("auto", "gurobi"):
        fits, why = gurobi_fits(model)
        if solver == "gurobi" and not _gurobi_status()[0]:
            raise OpplanError(f"solver gurobi: {why}", field="solver")
        if fits or solver == "gurobi":
            result = backend_gurobi.solve(model, options)
            if result.status == SolveStatus.SIZE_LIMIT:
                fallback = backend_highs.solve(model, options)
                return SolverRun(fallback, f"Gurobi refused the model at its licence size limit "
                                           f"({model.num_vars} variables); fell back to HiGHS")
            return SolverRun(result, f"Gurobi: {why}" if solver == "auto" else "Gurobi, as requested")
        ok, highs_why = backend_highs.available()
        if not ok:
            raise OpplanError(f"no solver available: {why}; {highs_why}")
        return SolverRun(backend_highs.solve(model, options), f"HiGHS, because {why}")
    ok, why = backend_highs.available()
    if not ok:
        raise OpplanError(f"solver highs: {why}", field="solver")
    return SolverRun(backend_highs.solve(model, options), "HiGHS, as requested")
