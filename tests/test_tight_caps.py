"""Below the hand-designed patterns' memory: fitted baselines, CP-SAT as an engine, early stops."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from opplan import baselines
from opplan.layout import CONTIGUOUS, MIRRORED
from opplan.planner.api import PlannerOptions, _fitted_to_caps, solve
from opplan.planner.heuristic import sequential_order
from opplan.planner.local_search import improve_order
from opplan.planner.lower import _cpsat_reason
from opplan.planner.repair import fit_to_caps
from opplan.scenario import Scenario
from opplan.simulate import make_plan
from opplan.units import MemoryCap


def uniform(cap: float, devices: int = 8, micro: int = 20) -> Scenario:
    return Scenario.from_options(stages=devices, microbatches=micro, memory_cap=MemoryCap((cap,)))


def test_an_order_that_fits_is_left_as_it_is():
    problem = uniform(9).problem_for(MIRRORED)
    plan = baselines.run("dualpipe", problem)
    assert plan.valid
    assert fit_to_caps(problem, plan.order) == plan.order


def test_dualpipe_one_unit_below_its_peak_keeps_its_bubble():
    # DualPipe peaks at 9 units here; fitted to 8 it keeps its shape and its bubble (6 per device)
    loose = baselines.run("dualpipe", uniform(9).problem_for(MIRRORED))
    plan = baselines.run("dualpipe", uniform(8).problem_for(MIRRORED))
    assert plan.over_cap
    fitted = _fitted_to_caps(plan, reserve=False)
    assert fitted is not None and fitted.valid
    assert max(fitted.metrics.peak_activations) <= 8
    assert fitted.metrics.bubble == loose.metrics.bubble


@pytest.mark.parametrize("cap", [7, 5, 3])
def test_fitted_one_f_one_b_respects_every_cap(cap):
    plan = baselines.run("1f1b", uniform(cap).problem_for(CONTIGUOUS))
    order = fit_to_caps(plan.problem, plan.order)
    assert order is not None
    fitted = make_plan(plan.problem, order)
    assert fitted.valid, fitted.violations[:2]
    assert max(fitted.metrics.peak_activations) <= cap
    # the order is the same tasks, only moved
    assert sorted(n for s in order.sequences.values() for n in s) == \
        sorted(n for s in plan.order.sequences.values() for n in s)


def test_engine_choice_says_why():
    problem = uniform(7).problem_for(MIRRORED)
    assert _cpsat_reason(problem, 1000, "cpsat", 0.0) == "CP-SAT, as requested"
    assert _cpsat_reason(problem, 1000, "highs", 0.9) is None
    assert "above the lower bound" in _cpsat_reason(problem, 1000, "auto", 0.5)
    assert _cpsat_reason(problem, 1000, "auto", 0.02) is None


@pytest.mark.solver
def test_cpsat_climbs_down_from_one_microbatch_at_a_time():
    # P=4, M=8, mirrored, cap 3 (below DualPipe's peak): no pattern fits, the warm start is
    # one micro-batch at a time; CP-SAT as the engine must do far better and stay within the cap
    scenario = uniform(3, devices=4, micro=8)
    plan = solve(scenario, PlannerOptions(placement="mirrored", time_limit=20, solver="cpsat"))
    assert plan.valid and plan.provenance.solver == "cp-sat"
    assert max(plan.metrics.peak_activations) <= 3
    problem = scenario.problem_for(MIRRORED)
    sequential = make_plan(problem, sequential_order(problem)).metrics.makespan
    assert plan.metrics.makespan < sequential / 2


def test_local_search_stops_at_the_bound_and_on_request():
    plan = baselines.run("1f1b", uniform(8).problem_for(CONTIGUOUS))
    began = time.perf_counter()
    order, value = improve_order(plan.problem, plan.order, 30.0, floor=plan.metrics.makespan)
    assert value == plan.metrics.makespan and order == plan.order
    _, _ = improve_order(plan.problem, plan.order, 30.0, should_stop=lambda: True)
    assert time.perf_counter() - began < 5.0   # both return at once, not after 30 s


def test_cpsat_asked_for_the_memory_objective_says_the_mip_ran_instead():
    plan = solve(uniform(4, devices=2, micro=4), PlannerOptions(solver="cpsat", objective="memory", time_limit=5))
    assert plan.valid and "memory objective ran on the MIP" in plan.provenance.solver_reason


def test_a_weight_gradient_pulled_forward_while_held_runs_once():
    """At operator level a unit's weight gradient can be held back (its forward waits for memory)
    and then pulled forward to make room; it must not run a second time when the held entries go."""
    from collections import Counter

    from opplan.graph import load_model
    from opplan.planner.heuristic import list_schedule
    from opplan.scenario import Scenario

    model = load_model(Path(__file__).resolve().parents[1] / "sample_models" / "uniform_moe_8.json")
    problem = baselines.run_on(Scenario.from_options(model, devices=8, microbatches=20, granularity="operator"),
                               "dualpipe").problem
    order = list_schedule(problem, "forward-first")
    fitted = fit_to_caps(problem.with_memory(6 * problem.activation_unit_bytes), order)
    assert fitted is not None
    assert not [task for seq in fitted.sequences.values() for task, n in Counter(seq).items() if n > 1]
