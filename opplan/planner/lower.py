"""Lower level: schedule one placed problem with the MIP, warm-started, and trust nothing.

For the makespan, the planner asks the time-indexed model "is there a schedule of length T?" for
T = lower bound, +1 grid step, ... below the warm start's makespan. The first feasible T gives the
plan, and every T proven infeasible raises the bound (exact only when the grid rounded no
duration). The solver's start times become an order (each device's tasks by start), which the
simulator re-times ASAP and the validator checks. ASAP only moves starts earlier, and memory
depends on each device's sequence alone, so the plan is at least as good as the solver's (with
communication streams a device has two sequences, and a re-timed plan that breaks a cap is
dropped, keeping the best valid one).
"""
from __future__ import annotations

import dataclasses
import math
import time

from opplan.outputs import PlanStatus, Provenance
from opplan.planner.bounds import build_arcs, heads_tails, lower_bound
from opplan.planner.formulation import build_step_model, choose_grid, order_from_grid_starts
from opplan.planner.linear import Progress, SolveOptions, SolveStatus
from opplan.planner.solvers import solve_model
from opplan.problem import Problem
from opplan.schedule import Plan
from opplan.simulate import make_plan

MIP_BINARY_LIMIT = 200_000   # above this many estimated binaries the time-indexed MIP gives way to CP-SAT
FAR_GAP = 0.10               # a warm start this far above the bound (relative gap) goes to CP-SAT too
MIP_SHARE = 0.4              # auto: the MIP's share of the time before CP-SAT takes over from its best plan
# operator level: CP-SAT by neighbourhoods (lns.py) rather than on the whole problem; uniform_moe_8,
# mirrored, cap 9, `opplan solve` at 30/60/120 s: 160/158/157 (157 is optimal, bench/uniform_moe_bound.py)
# where whole-problem CP-SAT gave 160/-/159
UNIT_LEVEL_LNS = True


def improve(problem: Problem, warm: Plan, options, time_limit: float, placement: str) -> Plan:
    """The best of ``warm`` and the MIP's plans on ``problem`` within ``time_limit`` seconds."""
    began = time.perf_counter()
    deadline = began + time_limit
    true_arcs = build_arcs(problem)
    head, tail = heads_tails(true_arcs)
    bound = max(lower_bound(true_arcs, head, tail), warm.metrics.lower_bound)
    best = warm
    if options.objective == "memory":
        return _minimise_memory(problem, warm, options, deadline, placement, bound, began)
    incumbent = warm.metrics.makespan
    if incumbent <= bound + 1e-9:
        _report(options, began, incumbent, bound)
        return _finish(best, warm, placement, "optimal", "none",
                       "the warm start meets the lower bound: optimal without a solver", bound, began)
    slack = sum(max(0.0, incumbent - h - q) for h, q in zip(head, tail))
    grid = choose_grid(problem, incumbent, slack)
    why_cpsat = _cpsat_reason(problem, slack / grid.scale, options.solver, (incumbent - bound) / incumbent)
    if why_cpsat is not None:
        return _improve_cpsat(problem, warm, options, deadline, placement, bound, began, why_cpsat)
    arcs = build_arcs(problem, scale=grid.scale)
    g_head, g_tail = heads_tails(arcs)
    state = {"solver": "none", "reason": "no horizon below the warm start was left to try"}
    # auto: the MIP proves what it can in its share; CP-SAT searches on from its best plan
    portfolio = options.solver == "auto" and _cpsat_available()
    mip_deadline = began + MIP_SHARE * time_limit if portfolio else deadline

    def attempt(T: int) -> str:
        """Ask for a plan of length T grid steps: 'found', 'infeasible' or 'stopped'."""
        nonlocal best
        left = mip_deadline - time.perf_counter()
        if left < 0.2 or options.stopped():
            return "stopped"
        step = build_step_model(problem, arcs, g_head, g_tail, T)
        if step.infeasible:   # the windows alone rule T out
            return "infeasible"
        if options.stopped():   # building a big model takes seconds
            return "stopped"
        _say(options, f"placement {placement}: is there a plan of length {T * grid.scale:g}? "
                      f"({step.model.num_vars} binaries, {step.model.num_rows} rows)")
        run = solve_model(step.model, options.solver, SolveOptions(time_limit=left, mip_gap=0.0,
                                                                   threads=options.threads,
                                                                   should_stop=options.should_stop))
        state["solver"], state["reason"] = run.result.solver, run.reason
        if run.result.status.has_solution and run.result.values is not None:
            broken = step.model.check(run.result.values)
            if broken:
                raise RuntimeError(f"{run.result.solver} returned a point breaking its own model: {broken[:2]}")
            found = make_plan(problem, order_from_grid_starts(problem, arcs, step.starts(run.result.values)),
                              Provenance(producer="mip"))
            if not found.valid:
                if problem.has_comm_streams and all(v.is_memory for v in found.violations):
                    # re-timed ASAP, a comm stream may allocate before the compute stream frees:
                    # memory then depends on more than each sequence; keep the best valid plan
                    state["reason"] = "the solver's plan broke a memory cap once re-timed; best valid plan kept"
                    return "stopped"
                raise RuntimeError(f"MIP plan failed validation: {found.violations[:3]}")
            if found.metrics.makespan < best.metrics.makespan - 1e-9:
                best = found
            return "found"
        return "infeasible" if run.result.status == SolveStatus.INFEASIBLE else "stopped"

    _report(options, began, incumbent, bound)
    status = PlanStatus.FEASIBLE
    if grid.exact:
        # ascending: every horizon proven infeasible raises the bound; the first feasible is optimal
        T = int(math.ceil(lower_bound(arcs, g_head, g_tail) - 1e-9))
        while T * grid.scale < incumbent - 1e-9:
            if options.mip_gap > 0 and (incumbent - bound) / incumbent <= options.mip_gap:
                state["reason"] = f"stopped at the requested gap {options.mip_gap:g}"
                break
            outcome = attempt(T)
            if outcome != "infeasible":
                break
            bound = max(bound, (T + 1) * grid.scale)
            _report(options, began, best.metrics.makespan, bound)
            T += 1
    else:
        # real-valued times: first local search on the order (cheap moves, exact simulation), then
        from opplan.planner.local_search import improve_order

        searched, value = improve_order(problem, best.order, 0.5 * max(0.0, deadline - time.perf_counter()),
                                        floor=bound, should_stop=options.should_stop)
        if value < best.metrics.makespan - 1e-9:
            found = make_plan(problem, searched, Provenance(producer="local-search"))
            if found.valid:
                best = found
                state["reason"] = "order local search improved the warm start"
                _say(options, f"placement {placement}: local search reached {value:g}")
        # rounded durations prove nothing: descend from the incumbent, one grid step below each
        # plan found, for an anytime improvement; the bound stays the analytic one
        while True:
            if options.mip_gap > 0 and (best.metrics.makespan - bound) / best.metrics.makespan <= options.mip_gap:
                break
            T = int(math.floor(best.metrics.makespan / grid.scale - 1e-9)) - 1
            if T * grid.scale < bound - 1e-9 or attempt(T) != "found":
                break
            _report(options, began, best.metrics.makespan, bound)
    _report(options, began, best.metrics.makespan, bound)
    stopped = options.stopped()
    if portfolio and not stopped and best.metrics.makespan > bound + 1e-9 * max(1.0, bound) \
            and deadline - time.perf_counter() > 1.0:
        reason = (f"CP-SAT from the MIP's best plan, because {state['solver']} did not close the gap in its "
                  f"{MIP_SHARE:.0%} of the time ({state['reason']})")
        return _improve_cpsat(problem, best, options, deadline, placement, bound, began, reason, warm)
    return _finish(best, warm, placement, status, state["solver"], state["reason"], bound, began)


def _cpsat_available() -> bool:
    from opplan.planner.cpsat import available

    return available()[0]


def _cpsat_reason(problem: Problem, binaries: float, solver: str, warm_gap: float) -> str | None:
    """Why CP-SAT schedules this problem rather than the time-indexed MIP (None: the MIP runs).

    Operator-level problems and long horizons make one binary per task and grid step: too many for
    HiGHS or Gurobi to move. A warm start far above the bound (a tight memory cap, where only one
    micro-batch at a time was found) leaves the MIP proving horizon after horizon from the bound up
    while CP-SAT searches the whole range at once: P=8, M=20, mirrored, cap 7: MIP stuck at
    bubble 280 for 60 s, CP-SAT bubble 4, proven, in 18 s."""
    from opplan.planner.cpsat import available

    if solver == "cpsat":
        if not _cpsat_available():
            from opplan.errors import OpplanError

            raise OpplanError(f"solver cpsat: {available()[1]}", field="solver")
        return "CP-SAT, as requested"
    if solver != "auto" or not _cpsat_available():
        return None
    if problem.is_unit_level:
        return "CP-SAT, because the problem is at unit (operator) level, too large for the time-indexed MIP"
    if binaries > MIP_BINARY_LIMIT:
        return f"CP-SAT, because the time-indexed MIP would need about {binaries:.0f} binaries (over {MIP_BINARY_LIMIT})"
    if warm_gap > FAR_GAP:
        return (f"CP-SAT, because the best warm start is {100 * warm_gap:.0f} % above the lower bound, "
                "too far for the MIP to climb down horizon by horizon")
    return None


def _improve_cpsat(problem: Problem, warm: Plan, options, deadline: float, placement: str, bound: float,
                   began: float, reason: str, first_warm: Plan | None = None) -> Plan:
    """CP-SAT on the whole horizon from ``warm``; its bound counts only when no duration was rounded.
    ``first_warm``: the warm start the whole run began from (when ``warm`` is an earlier engine's plan)."""
    from opplan.planner.cpsat import solve_cpsat
    from opplan.planner.lns import solve_lns

    def progress(_seconds: float, value: float, _bound: float) -> None:
        _report(options, began, min(value, warm.metrics.makespan), bound)

    left = max(0.5, deadline - time.perf_counter())
    if problem.is_unit_level and UNIT_LEVEL_LNS:
        reason += "; as a large-neighbourhood search (windows of micro-batches, devices, time) around it"
        _say(options, f"placement {placement}: {reason}")
        _report(options, began, warm.metrics.makespan, bound)
        run = solve_lns(problem, warm, left, workers=options.threads, should_stop=options.should_stop,
                        progress=progress)
    else:
        _say(options, f"placement {placement}: {reason}")
        _report(options, began, warm.metrics.makespan, bound)
        hint = problem.is_unit_level or warm.metrics.makespan - bound <= FAR_GAP * warm.metrics.makespan
        run = solve_cpsat(problem, warm, left, workers=options.threads, hint=hint, should_stop=options.should_stop,
                          progress=progress)
    if run.exact:
        bound = max(bound, run.bound)
    status = PlanStatus.CANCELLED if run.status == "cancelled" else PlanStatus.FEASIBLE
    detail = f"{reason}; solver status {run.status}" + ("" if run.exact else ", durations rounded (bound not proven)")
    _report(options, began, run.plan.metrics.makespan, bound)
    return _finish(run.plan, first_warm or warm, placement, status, "cp-sat", detail, bound, began)


def _minimise_memory(problem: Problem, warm: Plan, options, deadline: float, placement: str, bound: float,
                     began: float) -> Plan:
    """Lowest peak memory within a makespan limit (default: the warm start's makespan)."""
    limit = options.makespan_limit or warm.metrics.makespan
    if limit < bound - 1e-9:
        from opplan.errors import OpplanError

        raise OpplanError(f"makespan limit {limit:g} is below the lower bound {bound:g}: no plan can meet it")
    grid = choose_grid(problem, limit)
    arcs = build_arcs(problem, scale=grid.scale, memory=False)
    g_head, g_tail = heads_tails(arcs)
    horizon = int(math.floor(limit / grid.scale + 1e-9))
    step = build_step_model(problem, arcs, g_head, g_tail, horizon, minimise_memory=True)
    best, solver, reason, status = warm, "none", "the horizon's windows are empty", PlanStatus.FEASIBLE
    if not step.infeasible:
        run = solve_model(step.model, "auto" if options.solver == "cpsat" else options.solver,
                          SolveOptions(time_limit=max(0.5, deadline - time.perf_counter()), threads=options.threads,
                                       progress=options.progress, should_stop=options.should_stop))
        solver, reason = run.result.solver, run.reason
        if options.solver == "cpsat":
            reason = f"CP-SAT minimises the iteration time only, so the memory objective ran on the MIP: {reason}"
        if run.result.status == SolveStatus.OPTIMAL:   # the least memory within the limit, proven
            status = PlanStatus.OPTIMAL
        if run.result.status.has_solution and run.result.values is not None:
            found = make_plan(problem, order_from_grid_starts(problem, arcs, step.starts(run.result.values)),
                              Provenance(producer="mip"))
            if found.valid and max(found.metrics.peak_memory_bytes) < max(warm.metrics.peak_memory_bytes) \
                    and found.metrics.makespan <= limit + 1e-9:
                best = found
    return _finish(best, warm, placement, status, solver, reason, bound, began)


def _report(options, began: float, incumbent: float, bound: float) -> None:
    if options.progress is not None:
        options.progress(Progress(time.perf_counter() - began, incumbent, bound))


def _say(options, message: str) -> None:
    if options.log is not None:
        options.log(message)


def _finish(plan: Plan, warm: Plan, placement: str, status: PlanStatus, solver: str, reason: str, bound: float,
            began: float) -> Plan:
    makespan = plan.metrics.makespan
    bound = min(bound, makespan)
    gap = max(0.0, (makespan - bound) / makespan) if makespan > 0 else 0.0
    if gap <= 1e-6:   # relative: stage times are sums of floats
        status = PlanStatus.OPTIMAL
    # the plan was simulated and validated when it was made; only its provenance changes here
    return dataclasses.replace(plan, provenance=Provenance(
        producer="opplan", schedule="opplan", placement=placement, solver=solver, solver_reason=reason,
        status=status, lower_bound=bound, gap=gap, solve_seconds=time.perf_counter() - began,
        warm_start=warm.schedule_name, improved_on_warm_start=plan is not warm))
