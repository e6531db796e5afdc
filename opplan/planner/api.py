"""The planner's entry point: ``solve(scenario, options) -> Plan``.

Upper level: candidate layouts (contiguous, DualPipe's mirrored one, the V shape), each with
its operators merged into stages by the cost-balanced partition or a searched cut. For each
candidate, warm starts come from every baseline on that layout that fits the caps and from memory-aware list
scheduling. Lower level: the MIP schedules the placed stages, starting from the best warm start,
so the answer is never worse than it. Every returned plan is re-simulated and validated.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from opplan import baselines
from opplan.actions import parse_entry
from opplan.baselines.operator_level import unit_order
from opplan.errors import OpplanError
from opplan.layout import CONTIGUOUS, MIRRORED, V_SHAPE, Layout
from opplan.outputs import PlanStatus, Provenance
from opplan.planner.bounds import problem_lower_bound
from opplan.planner.cut_search import searched_cut
from opplan.planner.linear import Progress
from opplan.problem import Problem
from opplan.scenario import Scenario
from opplan.schedule import Plan
from opplan.simulate import make_plan

# each placement the upper level may try: a layout, with its stages cut evenly or searched
CANDIDATE_LAYOUTS: dict[str, tuple[Layout, bool]] = {
    "contiguous": (CONTIGUOUS, False),
    "mirrored": (MIRRORED, False),
    "v": (V_SHAPE, False),
    "searched": (CONTIGUOUS, True),
    "searched-mirrored": (MIRRORED, True),
}
PLACEMENTS = ("auto", *CANDIDATE_LAYOUTS)
COARSE_SHARE = 0.85    # operator level: the share of the time spent planning whole stages first
WARM_SHARE = 0.5       # past this share of the time limit no further warm start is built
OBJECTIVES = ("makespan", "bubble", "memory")


@dataclass
class PlannerOptions:
    solver: str = "auto"
    objective: str = "makespan"
    time_limit: float = 60.0
    mip_gap: float = 0.0
    threads: int = 2
    placement: str = "auto"
    makespan_limit: float | None = None          # objective "memory": the iteration time to stay within
    progress: Callable[[Progress], None] | None = None
    should_stop: Callable[[], bool] | None = None
    log: Callable[[str], None] | None = None     # one line per step, for the CLI and the dashboard
    list_scheduling: bool = True                 # False: warm-start from baselines only (to measure the MIP)

    def stopped(self) -> bool:
        """True once the caller asked the run to stop (Ctrl-C, the dashboard's Cancel)."""
        return self.should_stop is not None and self.should_stop()

    def __post_init__(self) -> None:
        if self.placement not in PLACEMENTS:
            raise OpplanError(f"unknown placement {self.placement!r} (choose from {', '.join(PLACEMENTS)})")
        if self.objective not in OBJECTIVES:
            raise OpplanError(f"unknown objective {self.objective!r} (choose from {', '.join(OBJECTIVES)})")
        if not (self.time_limit > 0):
            raise OpplanError(f"time limit must be positive, got {self.time_limit!r}")
        if not 0 <= self.mip_gap < 1:
            raise OpplanError(f"gap must be in [0, 1), got {self.mip_gap!r}")


@dataclass
class Candidate:
    placement: str
    problem: Problem
    warm_starts: list[Plan] = field(default_factory=list)

    @property
    def best(self) -> Plan | None:
        valid = [p for p in self.warm_starts if p.valid]
        return min(valid, key=lambda p: p.metrics.makespan) if valid else None


def _say(options: PlannerOptions, message: str) -> None:
    if options.log is not None:
        options.log(message)


def candidates(scenario: Scenario, placement: str, search_seconds: float = 10.0,
               until: float = math.inf, should_stop: Callable[[], bool] | None = None,
               kinds: tuple[bool, ...] = (False, True), errors: list[str] | None = None) -> list[Candidate]:
    """The upper level: placed problems to schedule, with the baselines that run on each. Past
    ``until`` (a ``time.perf_counter`` time) no further placement is built once one exists.
    ``kinds`` picks even cuts (False), searched cuts (True) or both; when ``errors`` is given, the
    reasons placements do not apply are collected there instead of raised when none does."""
    out: list[Candidate] = []
    collect = errors is not None
    errors = errors if errors is not None else []
    for name, (layout, searched) in CANDIDATE_LAYOUTS.items():
        if placement not in ("auto", name) or searched not in kinds:
            continue
        if out and (time.perf_counter() > until or (should_stop is not None and should_stop())):
            errors.append(f"{name}: not tried, the warm-start phase ran out of time or was stopped")
            continue
        if searched and scenario.is_uniform:
            errors.append(f"{name}: a uniform pipeline's stages are identical, there is no cut to search")
            continue
        try:
            if searched:
                problem = searched_cut(scenario.model, scenario.cluster(), scenario.microbatches, layout,
                                       scenario.overlap_factor, budget_seconds=search_seconds / 2,
                                       granularity=scenario.granularity, should_stop=should_stop)
            else:
                problem = scenario.problem_for(layout)
        except OpplanError as error:
            errors.append(f"{name}: {error}")
            continue
        out.append(_with_baselines(Candidate(name, problem), baselines.running_on(layout), until))
    if not out and not collect:
        raise OpplanError("no placement applies to this scenario: " + "; ".join(errors))
    return out


def _with_baselines(cand: Candidate, schedules: tuple[str, ...], until: float = math.inf) -> Candidate:
    """Every baseline whose order runs on the candidate's placed problem becomes a warm start.
    When none fits the caps, each is fitted to them (its shape kept, its memory cut). Past
    ``until`` no further baseline is run or fitted once one fits."""
    over_cap = []
    for schedule in schedules:
        if cand.best is not None and time.perf_counter() > until:
            break
        try:
            plan = baselines.run(schedule, cand.problem)
        except OpplanError:
            continue  # a precondition this scenario misses (e.g. DualPipe's M >= 2P)
        cand.warm_starts.append(plan)
        freed = _without_fences(plan)
        if freed is not None:
            cand.warm_starts.append(freed)
        if plan.over_cap:
            over_cap.append(plan)
    if cand.best is None:
        for plan in over_cap:
            for reserve in (False, True):
                if cand.best is not None and time.perf_counter() > until:
                    return cand
                fitted = _fitted_to_caps(plan, reserve)
                if fitted is not None:
                    cand.warm_starts.append(fitted)
    return cand


def _without_fences(plan: Plan) -> Plan | None:
    """A baseline's order with its waits across streams lifted: the planner is free to overlap a
    chunk's all-to-all with the next chunk's compute. None when it has no fences or the freed plan
    breaks a cap (starting earlier can raise a peak)."""
    if not plan.order.fences:
        return None
    freed = make_plan(plan.problem, plan.order.without_fences(),
                      Provenance(producer="heuristic", schedule=f"{plan.schedule_name}, overlapped everywhere"))
    return freed if freed.valid else None


def _add_seeds(cands: list[Candidate], seeds: tuple[Plan, ...]) -> None:
    """Each seed's order, re-timed on the candidate of the same placement, where it is valid there."""
    from opplan.simulate import DeadlockError

    for seed in seeds:
        for cand in cands:
            if cand.placement != seed.provenance.placement:
                continue
            try:
                plan = make_plan(cand.problem, seed.order, Provenance(producer="heuristic",
                                                                     schedule="the plan for a tighter cap"))
            except (DeadlockError, OpplanError):
                continue   # the seed's order does not fit this candidate's problem (another cut)
            if plan.valid:
                cand.warm_starts.append(plan)


def _fitted_to_caps(plan: Plan, reserve: bool) -> Plan | None:
    """``plan``'s order fitted to the caps (see ``planner.repair``), if that gives a valid plan."""
    from opplan.planner.repair import fit_to_caps
    from opplan.simulate import DeadlockError

    order = fit_to_caps(plan.problem, plan.order, reserve)
    if order is None:
        return None
    try:
        fitted = make_plan(plan.problem, order, Provenance(producer="heuristic",
                                                           schedule=f"{plan.schedule_name}, fitted to the caps"
                                                                    + (" (room reserved)" if reserve else "")))
    except DeadlockError:
        return None
    return fitted if fitted.valid else None


def _heuristic_plans(problem: Problem, list_scheduling: bool = True, until: float = math.inf,
                     should_stop: Callable[[], bool] | None = None) -> list[Plan]:
    """List-scheduling plans, plus one micro-batch at a time (feasible whenever any plan is).
    Past ``until``, or once a stop is asked for, no further rule is tried."""
    from opplan.planner.heuristic import RULES, list_schedule, sequential_order

    def out_of_time() -> bool:
        return time.perf_counter() > until or (should_stop is not None and should_stop())

    plans = []
    for rule in RULES if list_scheduling else ():
        if out_of_time():
            break
        order = list_schedule(problem, rule, should_stop=out_of_time)
        if order is not None:
            plans.append(make_plan(problem, order, Provenance(producer="heuristic", schedule=f"list:{rule}")))
    plans.append(make_plan(problem, sequential_order(problem), Provenance(producer="heuristic", schedule="sequential")))
    return plans


def _score(plan: Plan, scenario: Scenario, objective: str) -> float:
    """Comparable across placements: uniform scenarios define stage times per chunk, so a
    placement with more chunks does more work; compare their bubble ratios instead."""
    if objective == "memory":
        return max(plan.metrics.peak_memory_bytes)
    if objective == "bubble" or scenario.is_uniform:
        return plan.metrics.bubble_ratio
    return plan.metrics.makespan


def solve(scenario: Scenario, options: PlannerOptions | None = None, seeds: tuple[Plan, ...] = ()) -> Plan:
    """The best plan found within the time limit, validated, with solver, status, bound and gap.
    ``seeds`` are plans found before (e.g. at a tighter memory cap): each one's order is re-timed
    on the candidate of its placement and, where valid, becomes a warm start, so the answer is never
    worse than a seed that still fits."""
    from opplan.planner.lower import improve

    options = options or PlannerOptions()
    began = time.perf_counter()
    best_so_far = [math.inf]
    user_progress = options.progress
    if user_progress is not None:
        def progress(p: Progress) -> None:
            """Report on the whole run: its clock, the best makespan over all placements so far."""
            incumbent = min(best_so_far[0], p.incumbent)
            user_progress(Progress(time.perf_counter() - began, incumbent, min(p.bound, incumbent)))

        options = dataclasses.replace(options, progress=progress)
    # warm starts may take a share of the time; past it, what exists is what the solver starts from
    warm_until = began + WARM_SHARE * options.time_limit
    if scenario.granularity == "stage":
        cands = candidates(scenario, options.placement, search_seconds=min(10.0, options.time_limit / 4),
                           until=warm_until, should_stop=options.should_stop)
    else:
        cands = _unit_level_candidates(scenario, options, began)
    _add_seeds(cands, seeds)
    for cand in cands:
        stopped = options.stopped()
        if not (stopped and cand.best is not None):   # once stopped, a fallback only where nothing fits
            cand.warm_starts.extend(_heuristic_plans(cand.problem, options.list_scheduling, warm_until,
                                                     options.should_stop))
        best = cand.best
        _say(options, f"placement {cand.placement}: best warm start "
                      + (f"{best.schedule_name} makespan {best.metrics.makespan:g}" if best else "none fits the caps"))
    if all(c.best is None for c in cands):
        raise OpplanError(_infeasible_message(cands))
    # spend the time on the most promising placements first; a placement whose bound cannot beat
    # the best warm start of another is not worth the solver's time
    cands.sort(key=lambda c: _score(c.best, scenario, options.objective) if c.best else math.inf)
    results: list[Plan] = []
    to_solve: list[Candidate] = []
    best_warm = min(c.best.metrics.makespan for c in cands if c.best is not None)
    for cand in cands:
        if cand.best is None:
            continue
        stopped = options.stopped()
        if options.objective != "memory" and cand.best.metrics.makespan > best_warm and not stopped \
                and time.perf_counter() - began < WARM_SHARE * options.time_limit:
            bound = problem_lower_bound(cand.problem)
            if bound >= best_warm - 1e-9:
                results.append(_as_result(cand.best, cand, PlanStatus.PRUNED,
                                          f"its lower bound {bound:g} cannot beat another placement's plan"))
                _say(options, f"placement {cand.placement}: skipped, bound {bound:g} cannot beat {best_warm:g}")
                continue
        to_solve.append(cand)
    for k, cand in enumerate(to_solve):
        if options.stopped():
            results.append(_as_result(cand.best, cand, PlanStatus.CANCELLED, "cancelled before the solver ran"))
            continue
        remaining = options.time_limit - (time.perf_counter() - began)
        # the most promising placement (they are sorted) gets half of what is left, the others share
        # the rest: with many placements an equal split left each too little to improve on its warm start
        share = remaining / 2 if k == 0 and len(to_solve) > 2 else remaining / (len(to_solve) - k)
        if share < 0.5:
            results.append(_as_result(cand.best, cand, PlanStatus.NOT_SOLVED, "no time left for the MIP"))
            continue
        results.append(improve(cand.problem, cand.best, options, share, cand.placement))
        best_so_far[0] = min(best_so_far[0], results[-1].metrics.makespan)
        _say(options, f"placement {cand.placement}: {results[-1].provenance.status.value} makespan "
                      f"{results[-1].metrics.makespan:g}, bound {results[-1].provenance.lower_bound:g}")
    best = min(results, key=lambda p: (_score(p, scenario, options.objective), p.metrics.makespan))
    best.provenance.solve_seconds = time.perf_counter() - began
    best.provenance.placements_tried = [c.placement for c in cands]
    best.provenance.microbatches = scenario.microbatches
    best.provenance.scenario = scenario.name
    best.provenance.objective = options.objective
    if not best.valid:  # make_plan validated it; reaching here would be a bug worth shouting about
        raise RuntimeError(f"planner produced an invalid plan: {best.violations[:3]}")
    return best


def _unit_level_candidates(scenario: Scenario, options: PlannerOptions, began: float) -> list[Candidate]:
    """Operator (or layer) level. First the placements with even cuts and their baselines (cheap).
    Then whole stages: unless no whole-stage plan could beat the best of those, the stage level
    gets ``COARSE_SHARE`` of the time, before anything else, and its plan run unit by unit is one
    more candidate. So an operator-level answer is never worse than a stage-level one found with
    that share of the time. Last, if the warm-start phase has time left (whole stages were not
    needed), the searched cuts; otherwise the stage level's own cut stands for them."""
    limit = options.time_limit
    warm_until = began + WARM_SHARE * limit
    errors: list[str] = []
    # every even placement is built: their baselines are what operator level starts from
    cands = candidates(scenario, options.placement, kinds=(False,), should_stop=options.should_stop, errors=errors)
    best_unit = min((c.best.metrics.makespan for c in cands if c.best is not None), default=math.inf)
    floor = whole_stage_floor(scenario)
    if floor >= best_unit - 1e-9:
        _say(options, f"stage level: skipped, no whole-stage plan can beat {best_unit:g} (a device's average "
                      f"work with its all-to-all is {floor:g})")
    elif not options.stopped():
        left = limit - (time.perf_counter() - began)
        cands.append(_from_stage_level(scenario, options, max(0.5, COARSE_SHARE * left)))
    if not options.stopped() and time.perf_counter() < warm_until:
        left = limit - (time.perf_counter() - began)
        cands += candidates(scenario, options.placement, search_seconds=min(10.0, left / 4),
                            until=warm_until, should_stop=options.should_stop, kinds=(True,),
                            errors=errors)
    if not cands:
        raise OpplanError("no placement applies to this scenario: " + "; ".join(errors))
    return cands


def whole_stage_floor(scenario: Scenario) -> float:
    """A makespan no stage-level plan of a model beats, whatever its cut and placement: there every
    operator, all-to-all included, occupies its device, so some device carries at least the average
    work (each operator at its fastest device's time, overlapped pairs at their factor)."""
    model, cluster = scenario.model, scenario.cluster()
    if model is None:
        return 0.0
    work = sum(min(sum(cluster.operator_times(op, d)) for d in range(cluster.size)) for op in model.operators)
    return work * scenario.microbatches / cluster.size * min(1.0, scenario.overlap_factor)


def _from_stage_level(scenario: Scenario, options: PlannerOptions, seconds: float) -> Candidate:
    """Bi-level refinement for operator-level scenarios: plan whole stages first (a small
    problem the lower level solves well), then run that plan's per-device program unit by unit on
    the same cut. Units can only start earlier than the stage they belong to, so this warm start
    carries the stage-level plan's quality to operator level."""
    coarse = solve(dataclasses.replace(scenario, granularity="stage"),
                   dataclasses.replace(options, time_limit=seconds))
    layout, _ = CANDIDATE_LAYOUTS[coarse.provenance.placement]
    model_stages = coarse.problem.num_stages // (2 if layout == MIRRORED else 1)
    groups = [list(stage.operators) for stage in coarse.problem.stages[:model_stages]]
    fine = scenario.problem_for(layout, groups)
    programs = [[parse_entry(e) for e in coarse.order.sequences.get(device.name, ())]
                for device in coarse.problem.devices]
    expanded = make_plan(fine, unit_order(fine, programs),
                         Provenance(producer="heuristic", schedule="stage-level plan, unit by unit"))
    expanded = _without_fences(expanded) or expanded
    _say(options, f"stage level: {coarse.provenance.placement} makespan {coarse.metrics.makespan:g}, "
                  f"unit by unit {expanded.metrics.makespan:g}")
    cand = Candidate(f"{coarse.provenance.placement} (stage-level cut)", fine, [expanded])
    # the stage level's time is spent: further baselines only while none fits (the expansion usually does)
    return _with_baselines(cand, baselines.running_on(layout), until=time.perf_counter())


def _as_result(warm: Plan, cand: Candidate, status: PlanStatus, reason: str) -> Plan:
    """A candidate's warm start returned as it is (pruned, cancelled, or out of time): the same
    simulated and validated plan, with the planner's provenance (no second simulation)."""
    if _gap(warm.metrics.makespan, warm.metrics.lower_bound) <= 1e-6:
        status = PlanStatus.OPTIMAL   # it meets the bound: nothing the solver could have improved
    return dataclasses.replace(warm, provenance=Provenance(
        producer="opplan", schedule="opplan", placement=cand.placement, status=status, solver="none",
        solver_reason=reason, warm_start=warm.schedule_name, lower_bound=warm.metrics.lower_bound,
        gap=_gap(warm.metrics.makespan, warm.metrics.lower_bound)))


def _gap(value: float, bound: float) -> float:
    return max(0.0, (value - bound) / value) if value > 0 else 0.0


def _infeasible_message(cands: list[Candidate]) -> str:
    """Which device is short and the smallest caps that admit a plan (one micro-batch at a time)."""
    from opplan.planner.heuristic import sequential_order
    from opplan.units import counts_in_activation_units, format_bytes

    parts = []
    for cand in cands:
        p = cand.problem
        need = make_plan(p.with_memory(math.inf), sequential_order(p)).metrics.peak_memory_bytes
        caps = [d.memory_bytes for d in p.devices]
        worst = max(range(p.num_devices), key=lambda d: need[d] - caps[d])
        unit, in_units = p.activation_unit_bytes, counts_in_activation_units(p)

        def fmt(x: float) -> str:
            if in_units:
                return f"{x / unit:g} activation unit{'' if x == unit else 's'}"
            return format_bytes(x)

        smallest = (f"{fmt(need[0])} on every device" if len(set(need)) == 1
                    else ", ".join(fmt(x) for x in need))
        parts.append(f"{cand.placement}: {p.devices[worst].name} has cap {fmt(caps[worst])} but one micro-batch "
                     f"alone needs {fmt(need[worst])} (plans exist from {smallest})")
    return "no plan fits the memory caps; " + "; ".join(parts)
