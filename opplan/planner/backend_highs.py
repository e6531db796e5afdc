"""HiGHS backend: translate a LinearModel, map HiGHS's status to ours, keep any incumbent."""
from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time

import numpy as np

from opplan.planner.linear import INF, LinearModel, Progress, SolveOptions, SolveResult, SolveStatus

NAME = "highs"
_THREADS_IN_USE: int | None = None   # HiGHS keeps one thread pool per process: a later solve cannot change its size
_LOCK = threading.Lock()             # guards _THREADS_IN_USE, _BANNER_SHOWN and the fd-1 redirect
_BANNER_SHOWN = False                # the banner prints once per process: only the first instance needs silencing


@contextlib.contextmanager
def _stdout_silenced():
    """HiGHS prints a banner on file descriptor 1 once per process, which would corrupt
    ``--json`` output; route that descriptor to /dev/null while the first instance is made."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _new_highs():
    """A Highs instance; the first one of the process is made with file descriptor 1 silenced.

    Later ones do not touch the descriptor: redirecting it from concurrent solves (threads of the
    dashboard) could restore it to another solve's /dev/null and leave stdout silenced for good."""
    import highspy

    global _BANNER_SHOWN
    with _LOCK:
        if not _BANNER_SHOWN:
            with _stdout_silenced():
                h = highspy.Highs()
            _BANNER_SHOWN = True
            return h
    return highspy.Highs()


ABANDON_AFTER = 1.5   # seconds a cancelled HiGHS run may take to stop before it is left behind


def _run_or_abandon(h, options: SolveOptions) -> bool:
    """Run ``h``; False when a requested stop was not honoured within ``ABANDON_AFTER`` seconds.

    HiGHS checks its interrupt callbacks only between phases, and some (presolve, the root
    heuristics on large models) run for tens of seconds without one. The run then continues in its
    daemon thread until its own time limit, its result unread, and the caller goes on at once."""
    if options.should_stop is None:
        h.run()
        return True
    worker = h.startSolve()
    asked = None
    while worker.is_alive():
        worker.join(0.1)
        if asked is None and options.should_stop():
            h.cancelSolve()
            asked = time.perf_counter()
        if asked is not None and worker.is_alive() and time.perf_counter() - asked > ABANDON_AFTER:
            return False
    return True


def available() -> tuple[bool, str]:
    try:
        import highspy  # noqa: F401
    except ImportError as error:
        return False, f"highspy is not installed ({error})"
    return True, "highspy imports"


def solve(model: LinearModel, options: SolveOptions) -> SolveResult:
    import highspy

    global _THREADS_IN_USE
    h = _new_highs()
    h.setOptionValue("output_flag", bool(options.verbose))
    with _LOCK:
        if _THREADS_IN_USE is not None and _THREADS_IN_USE != options.threads:
            highspy.Highs.resetGlobalScheduler(True)
        _THREADS_IN_USE = options.threads
    h.setOptionValue("threads", int(options.threads))
    h.setOptionValue("time_limit", float(options.time_limit))
    h.setOptionValue("mip_rel_gap", float(options.mip_gap))
    h.setOptionValue("mip_abs_gap", 1e-6)
    starts, cols, vals = model.csr()
    integrality = np.array([1 if i else 0 for i in model.integer], dtype=np.int32)
    big = highspy.kHighsInf

    def clip(seq):
        return np.array([big if v == INF else (-big if v == -INF else v) for v in seq], dtype=np.float64)

    status = h.passModel(model.num_vars, model.num_rows, len(vals), int(highspy.MatrixFormat.kRowwise),
                         int(highspy.ObjSense.kMinimize), float(model.objective_offset), model.cost_vector(),
                         clip(model.lower), clip(model.upper), clip(model.row_lower), clip(model.row_upper),
                         starts, cols, vals, integrality)
    if status == highspy.HighsStatus.kError:
        return SolveResult(SolveStatus.ERROR, NAME, message="HiGHS rejected the model")
    if model.hint:
        idx = np.array(sorted(model.hint), dtype=np.int32)
        h.setSolution(len(idx), idx, np.array([model.hint[i] for i in idx], dtype=np.float64))

    began = time.perf_counter()
    if options.progress is not None or options.should_stop is not None:
        h.setOptionValue("mip_improving_solution_save", False)

        def on_event(event: object) -> None:
            data = event.data_out  # type: ignore[attr-defined]
            if options.progress is not None:
                options.progress(Progress(data.running_time, data.mip_primal_bound, data.mip_dual_bound))
            if options.should_stop is not None and options.should_stop():
                event.interrupt()  # type: ignore[attr-defined]

        h.cbMipImprovingSolution.subscribe(on_event)
        h.cbMipInterrupt.subscribe(on_event)
        if options.should_stop is not None:   # also during the root LP, which can be long

            def on_lp(event: object) -> None:
                if options.should_stop():
                    event.interrupt()  # type: ignore[attr-defined]

            h.cbSimplexInterrupt.subscribe(on_lp)
            h.cbIpmInterrupt.subscribe(on_lp)
        h.setOptionValue("HandleUserInterrupt", True)
    if not _run_or_abandon(h, options):
        return SolveResult(SolveStatus.NO_SOLUTION, NAME, runtime=time.perf_counter() - began,
                           message=f"cancelled: HiGHS did not stop within {ABANDON_AFTER:g} s of the request, its "
                                   "run was abandoned (it ends at its own time limit)")
    runtime = time.perf_counter() - began
    model_status = h.getModelStatus()
    info = h.getInfo()
    has_incumbent = info.primal_solution_status == 2
    ms = highspy.HighsModelStatus
    if model_status == ms.kOptimal:
        status_out = SolveStatus.OPTIMAL
    elif model_status == ms.kInfeasible:
        status_out = SolveStatus.INFEASIBLE
    elif model_status in (ms.kTimeLimit, ms.kInterrupt, ms.kIterationLimit, ms.kSolutionLimit,
                          ms.kObjectiveBound, ms.kObjectiveTarget):
        status_out = SolveStatus.FEASIBLE if has_incumbent else SolveStatus.NO_SOLUTION
    else:
        status_out = SolveStatus.FEASIBLE if has_incumbent else SolveStatus.UNKNOWN
    values = np.array(h.getSolution().col_value, dtype=float) if has_incumbent else None
    objective = info.objective_function_value if has_incumbent else INF
    bound = info.mip_dual_bound if math.isfinite(info.mip_dual_bound) else -INF
    if status_out == SolveStatus.OPTIMAL:
        bound = max(bound, objective - abs(objective) * options.mip_gap) if math.isfinite(bound) else objective
    return SolveResult(status_out, NAME, objective, bound, runtime, values, h.modelStatusToString(model_status))
