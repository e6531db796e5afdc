"""Gurobi backend. The pip licence is size-limited (2,000 variables and 2,000 constraints); a
model over it is refused here with SIZE_LIMIT so the caller can fall back."""
from __future__ import annotations

import math
import time

import numpy as np

from opplan.planner.linear import INF, LinearModel, Progress, SolveOptions, SolveResult, SolveStatus

NAME = "gurobi"
SIZE_LIMIT_ERRNO = 10010
FREE_LICENCE_LIMIT = 2000


def available() -> tuple[bool, str]:
    """Importable and licensed? (kept apart: an importable Gurobi may have no licence)."""
    try:
        import gurobipy as gp
    except ImportError as error:
        return False, f"gurobipy is not installed ({error})"
    try:
        env = gp.Env(params={"OutputFlag": 0})
        env.dispose()
    except gp.GurobiError as error:
        return False, f"gurobipy has no usable licence ({error})"
    return True, "gurobipy imports and is licensed"


def licence_size_limit() -> int | None:
    """The size limit of the installed licence: None when unrestricted, else 2000 (the pip one)."""
    import gurobipy as gp

    env = gp.Env(params={"OutputFlag": 0})
    try:
        m = gp.Model(env=env)
        m.addVars(FREE_LICENCE_LIMIT + 1)
        m.optimize()
        return None
    except gp.GurobiError as error:
        if error.errno == SIZE_LIMIT_ERRNO:
            return FREE_LICENCE_LIMIT
        raise
    finally:
        env.dispose()


def solve(model: LinearModel, options: SolveOptions) -> SolveResult:
    import gurobipy as gp
    import scipy.sparse as sp
    from gurobipy import GRB

    env = gp.Env(params={"OutputFlag": 1 if options.verbose else 0})
    try:
        m = gp.Model(env=env)
        m.Params.TimeLimit = float(options.time_limit)
        m.Params.MIPGap = float(options.mip_gap)
        m.Params.Threads = int(options.threads)
        vtype = np.array([GRB.INTEGER if i else GRB.CONTINUOUS for i in model.integer])
        binary = np.array([i and lo == 0 and hi == 1 for i, lo, hi in zip(model.integer, model.lower, model.upper)])
        vtype[binary] = GRB.BINARY
        x = m.addMVar(model.num_vars, lb=np.array(model.lower), ub=np.array(model.upper), vtype=vtype)
        starts, cols, vals = model.csr()
        a = sp.csr_matrix((vals, cols, starts), shape=(model.num_rows, model.num_vars))
        lo, hi = np.array(model.row_lower), np.array(model.row_upper)
        eq = lo == hi
        le = ~eq & np.isfinite(hi)
        ge = ~eq & np.isfinite(lo)
        for mask, sense, rhs in ((eq, "=", hi), (le, "<", hi), (ge, ">", lo)):
            if mask.any():
                m.addMConstr(a[mask], x, sense, rhs[mask])
        m.setObjective(model.cost_vector() @ x + model.objective_offset, GRB.MINIMIZE)
        m.update()
        if model.hint:
            start = np.full(model.num_vars, GRB.UNDEFINED)
            for j, v in model.hint.items():
                start[j] = v
            x.Start = start
        began = time.perf_counter()

        def callback(cb_model: gp.Model, where: int) -> None:
            if where == GRB.Callback.MIP:
                if options.progress is not None:
                    options.progress(Progress(cb_model.cbGet(GRB.Callback.RUNTIME),
                                              cb_model.cbGet(GRB.Callback.MIP_OBJBST),
                                              cb_model.cbGet(GRB.Callback.MIP_OBJBND)))
                if options.should_stop is not None and options.should_stop():
                    cb_model.terminate()

        try:
            m.optimize(callback if (options.progress or options.should_stop) else None)
        except gp.GurobiError as error:
            if error.errno == SIZE_LIMIT_ERRNO:
                return SolveResult(SolveStatus.SIZE_LIMIT, NAME, message=f"Gurobi licence size limit: {error}")
            return SolveResult(SolveStatus.ERROR, NAME, message=str(error))
        runtime = time.perf_counter() - began
        has_incumbent = m.SolCount > 0
        if m.Status == GRB.OPTIMAL:
            status = SolveStatus.OPTIMAL
        elif m.Status in (GRB.INFEASIBLE, GRB.INF_OR_UNBD):
            status = SolveStatus.INFEASIBLE
        elif m.Status in (GRB.TIME_LIMIT, GRB.INTERRUPTED, GRB.NODE_LIMIT, GRB.SOLUTION_LIMIT, GRB.USER_OBJ_LIMIT):
            status = SolveStatus.FEASIBLE if has_incumbent else SolveStatus.NO_SOLUTION
        else:
            status = SolveStatus.FEASIBLE if has_incumbent else SolveStatus.UNKNOWN
        values = np.array(x.X, dtype=float) if has_incumbent else None
        objective = m.ObjVal if has_incumbent else INF
        try:
            bound = m.ObjBound
        except (gp.GurobiError, AttributeError):
            bound = -INF
        return SolveResult(status, NAME, objective, bound if math.isfinite(bound) else -INF, runtime, values,
                           f"Gurobi status {m.Status}")
    finally:
        env.dispose()
