"""The planner: backends, the Gurobi size limit, known optima, warm starts, caps, cancellation."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opplan import baselines
from opplan.errors import OpplanError
from opplan.graph import Edge, ModelGraph, Operator, PassCosts
from opplan.layout import CONTIGUOUS, MIRRORED
from opplan.planner import backend_gurobi, backend_highs
from opplan.planner.api import PlannerOptions, solve
from opplan.planner.bounds import problem_lower_bound
from opplan.planner.linear import LinearModel, SolveOptions, SolveStatus
from opplan.planner.solvers import solve_model
from opplan.scenario import Scenario
from opplan.schedule import Order
from opplan.simulate import make_plan
from opplan.tasks import build_task_graph

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = [name for name, mod in (("highs", backend_highs), ("gurobi", backend_gurobi)) if mod.available()[0]]


# --- backends ---------------------------------------------------------------------------------
def tiny_scheduling_model():
    """Two unit jobs on one machine, integer starts in [0, 3]: min of the sum of ends is 1 + 2 = 3."""
    m = LinearModel()
    s1, s2 = m.add_var(0, 3, True), m.add_var(0, 3, True)
    y = m.add_binary()                       # y = 1: job 1 first
    m.add_le([s1, s2, y], [1, -1, 4], 3)     # s1 + 1 <= s2 + 4(1 - y)
    m.add_le([s2, s1, y], [1, -1, -4], -1)   # s2 + 1 <= s1 + 4y
    m.minimise({s1: 1, s2: 1}, offset=2)
    return m


@pytest.mark.parametrize("solver", BACKENDS)
def test_backends_agree_on_a_small_optimum(solver):
    run = solve_model(tiny_scheduling_model(), solver, SolveOptions(time_limit=10))
    assert run.result.status == SolveStatus.OPTIMAL
    assert run.result.objective == pytest.approx(3.0)
    assert run.result.gap == pytest.approx(0.0)
    assert tiny_scheduling_model().check(run.result.values) == []


@pytest.mark.parametrize("solver", BACKENDS)
def test_backends_report_infeasible(solver):
    m = LinearModel()
    x = m.add_binary()
    m.add_ge([x], [1], 2)
    assert solve_model(m, solver, SolveOptions(time_limit=5)).result.status == SolveStatus.INFEASIBLE


def _big_model(n=2100):
    m = LinearModel()
    xs = [m.add_binary() for _ in range(n)]
    m.add_le(xs, [1] * n, 3)
    m.minimise({x: -1.0 - i * 1e-4 for i, x in enumerate(xs)})
    return m


@pytest.mark.skipif("gurobi" not in BACKENDS, reason="gurobipy is not installed or has no licence")
def test_gurobi_size_limit_falls_back_to_highs_for_real():
    if backend_gurobi.licence_size_limit() is None:
        pytest.skip("this Gurobi licence is unrestricted")
    raw = backend_gurobi.solve(_big_model(), SolveOptions(time_limit=5))
    assert raw.status == SolveStatus.SIZE_LIMIT       # the real licence refusal, errno 10010
    forced = solve_model(_big_model(), "gurobi", SolveOptions(time_limit=5))
    assert forced.result.solver == "highs" and "fell back to HiGHS" in forced.reason
    auto = solve_model(_big_model(), "auto", SolveOptions(time_limit=5))
    assert auto.result.solver == "highs" and "exceeds Gurobi's free licence" in auto.reason
    assert auto.result.objective == pytest.approx(-3 - (2099 + 2098 + 2097) * 1e-4)
    small = solve_model(tiny_scheduling_model(), "auto", SolveOptions(time_limit=5))
    assert small.result.solver == "gurobi" and "fits" in small.reason


def test_unknown_solver_is_a_clear_error():
    with pytest.raises(OpplanError, match="unknown solver 'cplex'"):
        solve_model(tiny_scheduling_model(), "cplex", SolveOptions())


# --- known optima ---------------------------------------------------------------------------------
def brute_force_optimum(problem):
    """Minimum makespan over every per-device order (ASAP timing of each): exact for tiny cases."""
    tg = build_task_graph(problem)
    n = len(tg)
    best = float("inf")
    seen = set()

    def extend(prefix, done):
        nonlocal best
        if len(prefix) == n:
            per_dev = {d.name: tuple(k for k in prefix if tg.resource[tg.index[k]] == d.name) for d in problem.devices}
            key = tuple(sorted(per_dev.items()))
            if key in seen:
                return
            seen.add(key)
            p = make_plan(problem, Order(per_dev))
            if p.valid:
                best = min(best, p.metrics.makespan)
            return
        for i in range(n):
            if i not in done and all(d in done for d in tg.deps[i]):
                extend(prefix + [tg.keys[i]], done | {i})

    extend([], frozenset())
    return best


@pytest.mark.parametrize("f, b, w, cap", [(1, 1, 1, 1), (1, 1, 1, 2), (1, 2, 1, 2), (2, 1, 0, 1), (1, 1, 1, 3)])
def test_planner_matches_brute_force_on_tiny_pipelines(f, b, w, cap):
    scenario = Scenario(2, 2, f=f, b=b, w=w, memory_caps=(cap,))
    expected = brute_force_optimum(scenario.problem_for(CONTIGUOUS))
    got = solve(scenario, PlannerOptions(placement="contiguous", time_limit=20, list_scheduling=False))
    assert got.valid
    assert got.metrics.makespan == pytest.approx(expected)
    assert got.provenance.status == "optimal" and got.provenance.gap == pytest.approx(0)


def test_zero_bubble_floor_is_reached_and_proven():
    # P=4, M=8, cap 4: every device waits (P-1)F for its first input, so 24 + 3 is optimal (ZB-H1's)
    scenario = Scenario(4, 8, memory_caps=(4,))
    p = solve(scenario, PlannerOptions(placement="contiguous", time_limit=30, list_scheduling=False))
    assert p.metrics.makespan == 27 and p.provenance.status == "optimal"
    assert problem_lower_bound(scenario.problem_for(CONTIGUOUS)) == 27


def test_zb_h1_is_optimal_at_cap_8():
    # issue target 3: P=8, M=20, cap 8 -> ZB-H1's 67 (bubble 7) is optimal, and the planner proves it
    p = solve(Scenario(8, 20, memory_caps=(8,)), PlannerOptions(placement="contiguous", time_limit=60))
    assert p.metrics.makespan == 67 and max(p.metrics.bubble) == 7
    assert p.provenance.status == "optimal" and p.provenance.lower_bound == 67
    mip_only = solve(Scenario(8, 20, memory_caps=(8,)),
                    PlannerOptions(placement="contiguous", time_limit=60, list_scheduling=False))
    assert mip_only.metrics.makespan == 67 and mip_only.provenance.status == "optimal"


def test_mip_beats_its_warm_start_and_proves_it():
    # cap 7: no baseline fits; list scheduling gives 71, the MIP must find 70 and prove it
    p = solve(Scenario(8, 20, memory_caps=(7,)), PlannerOptions(placement="contiguous", time_limit=60, solver="highs"))
    assert p.metrics.makespan == 70 and p.provenance.improved_on_warm_start
    assert p.provenance.status == "optimal" and p.provenance.lower_bound == 70
    assert p.provenance.solver == "highs"
    assert max(p.metrics.peak_activations) <= 7


def test_half_of_dualpipes_bubble_at_its_own_memory():
    scenario = Scenario(8, 20, memory_caps=(9,))
    dualpipe = baselines.run_on(scenario, "dualpipe")
    p = solve(scenario, PlannerOptions(placement="mirrored", time_limit=60))
    assert max(dualpipe.metrics.bubble) == 6
    assert max(p.metrics.bubble) == 3 and p.provenance.status == "optimal"
    assert max(p.metrics.peak_activations) <= 9


def test_one_f_one_b_caps_optimum():
    scenario = Scenario(8, 20, memory_caps=(8, 7, 6, 5, 4, 3, 2, 1))
    p = solve(scenario, PlannerOptions(placement="contiguous", time_limit=60))
    assert max(p.metrics.bubble) == 14 and p.provenance.status == "optimal"
    assert p.metrics.peak_activations == [8, 7, 6, 5, 4, 3, 2, 1] or all(
        a <= c for a, c in zip(p.metrics.peak_activations, [8, 7, 6, 5, 4, 3, 2, 1]))


# --- caps, objectives, cancellation, progress -----------------------------------------------------
def test_infeasible_caps_name_the_smallest_cap():
    with pytest.raises(OpplanError, match=r"dev0 has cap 0.5 activation units but one micro-batch alone needs 1"):
        solve(Scenario(4, 8, memory_caps=(0.5,)), PlannerOptions(placement="contiguous", time_limit=5))


def test_cancel_returns_the_warm_start_valid():
    calls = []
    p = solve(Scenario(8, 20, memory_caps=(8,)),
             PlannerOptions(placement="contiguous", time_limit=30, should_stop=lambda: True,
                            progress=calls.append))
    assert p.valid and p.metrics.makespan <= 69
    assert p.provenance.status != "optimal" or p.metrics.makespan == 67


def test_progress_reports_incumbent_and_bound():
    seen = []
    solve(Scenario(8, 20, memory_caps=(8,)), PlannerOptions(placement="contiguous", time_limit=60, progress=seen.append))
    assert seen and seen[-1].incumbent == 67 and seen[-1].bound == 67
    assert all(p.bound <= p.incumbent for p in seen)


def test_memory_objective_lowers_the_peak_within_the_makespan():
    scenario = Scenario(4, 8)
    fast = solve(scenario, PlannerOptions(placement="contiguous", time_limit=20))
    # with 6 more time units allowed, one activation less is needed on every device
    lean = solve(scenario, PlannerOptions(placement="contiguous", objective="memory", time_limit=30,
                                         makespan_limit=fast.metrics.makespan + 6))
    assert lean.valid
    assert lean.metrics.makespan <= fast.metrics.makespan + 6
    assert max(lean.metrics.peak_activations) < max(fast.metrics.peak_activations)


# --- property: random DAGs ---------------------------------------------------------------------
@st.composite
def small_dags(draw):
    n = draw(st.integers(2, 5))
    ops = tuple(Operator(f"o{i}", PassCosts(draw(st.sampled_from([0.5, 1.0, 2.0])), draw(st.sampled_from([1.0, 2.0])),
                                           draw(st.sampled_from([0.0, 1.0]))),
                         activation_bytes=draw(st.sampled_from([1.0, 2.0])))
                for i in range(n))
    edges = tuple(Edge(f"o{i}", f"o{j}") for i in range(n) for j in range(i + 1, n) if j == i + 1 or draw(st.booleans()))
    return ModelGraph("random", ops, edges)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_dags(), st.integers(2, 3))
def test_random_dags_plans_validate_and_never_lose_to_the_warm_start(model, micro):
    scenario = Scenario(2, micro, model=model, accelerator="H100")
    p = solve(scenario, PlannerOptions(placement="contiguous", time_limit=10))
    assert p.valid
    best_baseline = min(baselines.run_on(scenario, b).metrics.makespan for b in ("1f1b", "gpipe", "zb-h1"))
    assert p.metrics.makespan <= best_baseline + 1e-9
    assert p.metrics.makespan >= p.provenance.lower_bound - 1e-9


# --- CLI ---------------------------------------------------------------------------------------------
def cli(*args):
    return subprocess.run([sys.executable, "-m", "opplan.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_cli_solve_json_keys(tmp_path):
    out = tmp_path / "plan.json"
    r = cli("solve", "--stages", 4, "--microbatches", 8, "--memory-cap-activations", 4, "--placement", "contiguous",
            "--time-limit", 20, "--json", "--out", out)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    for key in ("solver", "status", "lower_bound", "gap", "solve_seconds", "makespan", "bubble", "valid"):
        assert key in data
    assert data["makespan"] == 27 and data["status"] == "optimal" and data["valid"]
    assert cli("validate", out).returncode == 0


def test_cli_compare_rows_and_per_device_caps():
    r = cli("compare", "--stages", 4, "--microbatches", 8, "--memory-cap-activations", "4,3,2,1",
            "--schedules", "1f1b,zb-h1,dualpipe,opplan", "--time-limit", 20, "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["schedule"]: row for row in json.loads(r.stdout)["rows"]}
    assert rows["1f1b"]["valid"] and not rows["zb-h1"]["valid"]          # ZB-H1 needs P on every device
    assert rows["opplan"]["valid"] and rows["opplan"]["makespan"] <= rows["1f1b"]["makespan"]
    bad = cli("solve", "--stages", 4, "--microbatches", 8, "--memory-cap-activations", "1,2", "--time-limit", 5)
    assert bad.returncode == 2 and "got 2 memory caps for 4 devices" in bad.stderr


def test_order_local_search_keeps_plans_valid_and_never_worse():
    from opplan.graph import load_model
    from opplan.planner.local_search import improve_order

    scenario = Scenario(4, 8, model=load_model(ROOT / "sample_models" / "llama2_7b.json"))
    dualpipe = baselines.run_on(scenario, "dualpipe")
    scenario = scenario.with_caps(max(dualpipe.metrics.peak_memory_bytes))
    problem = scenario.problem_for(MIRRORED)
    start = baselines.run_on(scenario, "dualpipe")
    order, value = improve_order(problem, start.order, seconds=3)
    improved = make_plan(problem, order)
    assert improved.valid
    assert improved.metrics.makespan == pytest.approx(value)
    assert value <= start.metrics.makespan + 1e-9


def test_bubble_objective_picks_the_lowest_bubble_ratio_placement():
    scenario = Scenario(4, 8, memory_caps=(5,))
    p = solve(scenario, PlannerOptions(objective="bubble", time_limit=20))
    assert p.valid and p.provenance.objective == "bubble"
    for name in ("1f1b", "zb-h1", "dualpipe"):
        other = baselines.run_on(scenario, name)
        if other.valid:
            assert p.metrics.bubble_ratio <= other.metrics.bubble_ratio + 1e-9


def test_searched_cut_beats_the_balanced_cut_on_an_unbalanced_dag():
    from opplan.graph import load_model

    scenario = Scenario(4, 8, model=load_model(ROOT / "sample_models" / "inception_dag.json"))
    dualpipe = baselines.run_on(scenario, "dualpipe")
    scenario = scenario.with_caps(max(dualpipe.metrics.peak_memory_bytes))
    searched = solve(scenario, PlannerOptions(placement="searched-mirrored", time_limit=20))
    assert searched.valid
    assert searched.metrics.makespan < dualpipe.metrics.makespan - 1e-9
    assert max(searched.metrics.peak_memory_bytes) <= max(dualpipe.metrics.peak_memory_bytes) * (1 + 1e-9)
    with pytest.raises(OpplanError, match="no cut to search"):
        solve(Scenario(4, 8), PlannerOptions(placement="searched", time_limit=5))
