"""CP-SAT engine: optimal on tiny problems, memory caps respected, never worse than the warm start, cancellable."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from opplan import baselines
from opplan.graph import load_model
from opplan.planner.cpsat import solve_cpsat
from opplan.problem import COMM_STREAM, DeviceSpec, Problem, Stage, StageEdge, uniform_problem
from opplan.scenario import Scenario
from opplan.schedule import Order
from opplan.simulate import make_plan
from opplan.units import MemoryCap

pytest.importorskip("ortools")
ROOT = Path(__file__).resolve().parents[1]


def unit_chain(microbatches: int, cap: float = float("inf")) -> Problem:
    """Two devices, each one schedule stage of a compute unit then an all-to-all unit."""
    stages = []
    for d in range(2):
        stages.append(Stage(f"st{2 * d}", d, 1.0, 1.0, 1.0, 1.0, layout_stage=d))
        stages.append(Stage(f"st{2 * d + 1}", d, 1.0, 1.0, 0.0, 0.0, stream=COMM_STREAM, layout_stage=d))
    edges = tuple(StageEdge(i, i + 1) for i in range(3))
    return Problem(tuple(stages), edges, (DeviceSpec("dev0", cap), DeviceSpec("dev1", cap)), microbatches, 1.0, 1.0)


def test_unit_level_chain_of_one_microbatch_reaches_its_critical_path():
    # by hand: F through the four units (4), B back through them (4), then the first unit's W (1) = 9
    problem = unit_chain(1)
    warm = make_plan(problem, Order({"dev0": ("0F0", "0B0", "0W0"), "dev1": ("2F0", "2B0", "2W0")}))
    result = solve_cpsat(problem, warm, 5.0)
    assert result.plan.valid and result.plan.metrics.makespan == 9
    assert result.status == "optimal" and result.bound == 9 and result.exact


def test_two_stages_two_microbatches_optimum_is_seven():
    # by hand: device 1 cannot start before t=1 and carries 6 units of work; the order
    # F0 B0 F1 B1 W0 W1 on device 1 with F0 F1 B0 W0 B1 W1 on device 0 meets 7
    problem = uniform_problem(2, 2)
    warm = baselines.run("1f1b", problem)
    result = solve_cpsat(problem, warm, 5.0)
    assert result.plan.valid and result.plan.metrics.makespan == 7 and result.status == "optimal"


def test_memory_cap_is_respected_even_from_an_over_cap_warm_start():
    problem = uniform_problem(4, 8, memory_units=2)
    warm = baselines.run("1f1b", problem)          # 1F1B holds 4 activations on the first device
    assert not warm.valid
    result = solve_cpsat(problem, warm, 5.0)
    assert result.improved and result.plan.valid
    assert max(result.plan.metrics.peak_activations) <= 2


def test_never_worse_than_the_warm_start():
    problem = uniform_problem(4, 12, memory_units=4)
    warm = baselines.run("1f1b", problem)
    for limit in (0.05, 2.0):
        result = solve_cpsat(problem, warm, limit)
        assert result.plan.valid and result.plan.metrics.makespan <= warm.metrics.makespan


def test_should_stop_cancels_keeping_the_best_plan():
    model = load_model(ROOT / "sample_models" / "uniform_moe_8.json")
    scenario = Scenario.from_options(model, devices=8, microbatches=16, granularity="operator",
                                     memory_cap=MemoryCap((9,), "activations"))
    warm = baselines.run_on(scenario, "dualpipe")    # 1536 tasks: far from solved in a second
    problem = warm.problem
    flag = threading.Event()
    stopped = [float("inf")]

    def stop() -> None:
        stopped[0] = time.perf_counter()
        flag.set()

    threading.Timer(1.0, stop).start()
    result = solve_cpsat(problem, warm, 60.0, should_stop=flag.is_set)
    # honoured long before the 60 s limit (the 2 s latency target is measured by bench/cancel.py:
    # a timed assertion would fail on a loaded machine)
    assert time.perf_counter() - stopped[0] < 15.0
    assert result.status == "cancelled"
    assert result.plan.valid and result.plan.metrics.makespan <= warm.metrics.makespan


def test_lower_level_sends_unit_level_problems_to_cp_sat():
    from opplan.planner.api import PlannerOptions
    from opplan.planner.lower import improve

    problem = unit_chain(3, cap=2.0)
    order = Order({"dev0": tuple(f"0{p}{m}" for m in range(3) for p in "FBW"),
                   "dev1": tuple(f"2{p}{m}" for m in range(3) for p in "FBW")})
    warm = make_plan(problem, order)
    plan = improve(problem, warm, PlannerOptions(time_limit=5.0), 5.0, "given")
    assert plan.valid and plan.metrics.makespan <= warm.metrics.makespan
    assert plan.provenance.solver == "cp-sat" and "unit (operator) level" in plan.provenance.solver_reason
