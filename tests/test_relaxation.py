"""Single-device relaxation bounds: never above an optimum CP-SAT proves, stronger than the analytic bound."""
from __future__ import annotations

import pytest
from problems import unit_chain

from opplan import baselines
from opplan.layout import Layout, LayoutKind
from opplan.planner.bounds import problem_lower_bound
from opplan.planner.cpsat import solve_cpsat
from opplan.planner.relaxation import RelaxedBound, device_bound, device_fits_mip, fold_device, relaxation_bound
from opplan.problem import Problem, uniform_problem
from opplan.tasks import build_task_graph

pytest.importorskip("ortools")
pytest.importorskip("highspy")


def mirrored(cap: float) -> Problem:
    return Layout(LayoutKind.MIRRORED, 2, 2).uniform_problem(4, 8, memory_units=cap)


def optimum(problem: Problem, schedule: str) -> float:
    result = solve_cpsat(problem, baselines.run(schedule, problem), 20.0)
    assert result.status == "optimal"
    return result.plan.metrics.makespan


@pytest.mark.parametrize("problem, schedule", [(mirrored(2), "dualpipe"), (uniform_problem(4, 8, memory_units=2), "1f1b"),
                                               (unit_chain(3, 4, 2.0), "1f1b")],
                         ids=["mirrored-cap2", "1f1b-cap2", "unit-chain"])
def test_every_device_relaxation_fits_the_proven_optimum(problem, schedule):
    # the optimum plan is a plan of each relaxation: the MIP must find length `best` feasible
    best = optimum(problem, schedule)
    for d in range(problem.num_devices):
        assert device_fits_mip(problem, d, best, 20.0)[0] == "feasible"


def test_mirrored_bound_beats_the_analytic_one_and_stays_below_the_optimum():
    # P=4, M=8, cap 2 activation units: CP-SAT proves 32; the analytic bound is 25; device 1 alone
    # (a middle device, waiting longest for its first backward) rules out 29
    problem = mirrored(2)
    assert problem_lower_bound(problem) == 25
    assert device_fits_mip(problem, 1, 29, 20.0)[0] == "infeasible"
    found = relaxation_bound(problem, 30.0)
    assert found.status == "closed" and 29 < found.value <= optimum(problem, "dualpipe")


def test_cpsat_minimisation_of_one_device_stays_below_the_optimum():
    problem = mirrored(2)
    found = device_bound(problem, 1, 10.0, horizon=40)
    assert isinstance(found, RelaxedBound) and 25 <= found.value <= 32


def test_folding_turns_the_other_devices_into_delays():
    # two devices, one unit each way: device 0's F of the compute unit waits for nothing; its B waits
    # for the comm unit's F and B (1 + 1 on device 0's own comm stream: kept) and device 1's round trip
    problem = unit_chain(2, 1)
    tg = build_task_graph(problem)
    folded = fold_device(tg, 0, 1)
    index = {tg.keys[i]: i for i in folded.kept}
    lags = {(tg.keys[i], tg.keys[j]): lag for i, j, lag in folded.lags}
    # device 1: F of its compute (1) and comm (1) units, then B of its comm (1) and compute (1): 4
    assert lags[("1F0", "1B0")] == 4
    assert folded.release[index["0F0"]] == 0 and folded.tail[index["0W0"]] == 0
    assert folded.floor <= 9   # the whole chain's critical path is 9 (test_cpsat)


def test_rounded_durations_prove_nothing():
    problem = uniform_problem(2, 2, forward=1 / 3)
    assert device_fits_mip(problem, 0, 1.0, 5.0)[0] == "unknown"
    assert relaxation_bound(problem, 5.0).status == "skipped"


def test_a_valid_plan_meets_every_devices_folded_constraints():
    # the folding is exact: a plan's kept tasks respect their release times, lags and tails
    # (DualPipe's overlapped pairs run member after member first, as any plan can at no cost)
    from pathlib import Path

    from opplan.graph import load_model
    from opplan.planner.cpsat import _flattened
    from opplan.scenario import Scenario
    from opplan.units import MemoryCap

    model = load_model(Path(__file__).resolve().parents[1] / "sample_models" / "uniform_moe_8.json")
    scenario = Scenario.from_options(model, devices=4, microbatches=8, granularity="operator",
                                     memory_cap=MemoryCap((5,), "activations"))
    plan = _flattened(baselines.run_on(scenario, "dualpipe"))
    assert plan is not None and plan.valid
    tg = build_task_graph(plan.problem)
    times = {t.task: t.start for t in plan.tasks}
    start = [times[key] for key in tg.keys]
    for d in range(plan.problem.num_devices):
        folded = fold_device(tg, d, 1)
        assert all(start[i] >= folded.release[i] for i in folded.kept)
        assert all(start[i] + folded.duration[i] + folded.tail[i] <= plan.metrics.makespan for i in folded.kept)
        assert all(start[j] >= start[i] + folded.duration[i] + lag for i, j, lag in folded.lags)
