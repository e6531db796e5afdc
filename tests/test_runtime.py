"""Plans executed by PyTorch's pipeline runtime on real gloo CPU ranks: the gradients of every run
equal a single process's, every planned task runs and is timed, and the command line reports it.
Timing targets are the business of bench/runtime.py, not of assertions here."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from opplan import baselines
from opplan.errors import OpplanError
from opplan.io.chrome_trace import run_trace
from opplan.planner.api import PlannerOptions, solve
from opplan.runtime import RunConfig, run_plans
from opplan.runtime.config import GRAD_TOLERANCE
from opplan.runtime.predict import calibrated_problem, mean_times, predict_from_calibration
from opplan.scenario import Scenario
from opplan.schedule import save_plan
from opplan.simulate import make_plan

ROOT = Path(__file__).resolve().parents[1]
needs_torch = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec("torch") is None,
    reason="the torch extra is not installed (pip install -e '.[torch]'; scripts/test.sh does)")
TINY = RunConfig(hidden=32, rows=4, iterations=1, calibration_iterations=1)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "opplan.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def opplan_plan(placement, devices=4, microbatches=4):
    plan = solve(Scenario(devices=devices, microbatches=microbatches, b=1.5, w=0.5),
                 PlannerOptions(placement=placement, time_limit=10, threads=1))
    assert plan.valid and plan.provenance.placement == placement
    return plan


@needs_torch
def test_four_ranks_run_opplans_v_and_contiguous_plans_with_reference_gradients():
    plans = [opplan_plan("v"), opplan_plan("contiguous")]
    assert [p.problem.num_stages for p in plans] == [8, 4]
    results = run_plans(plans, TINY)
    for plan, result in zip(plans, results):
        assert result.ranks == 4 and result.stages == plan.problem.num_stages
        assert result.max_grad_diff <= GRAD_TOLERANCE and result.loss_diff <= GRAD_TOLERANCE
        # every compute task of the plan ran once in the timed iteration, on its stage's rank
        names = [d.name for d in plan.problem.devices]
        planned = {t.task: [names.index(t.resource)] for t in plan.tasks if not t.is_transfer}
        ran = {}
        for task, rank, start, end in result.spans:
            assert 0 <= start <= end
            ran.setdefault(task, []).append(rank)
        expanded = {}
        for task, ranks in ran.items():   # a full backward (BW) stands for the planned B and W
            for name in ([task.replace("BW", "B"), task.replace("BW", "W")] if "BW" in task else [task]):
                expanded[name] = ranks
        assert expanded == planned
        assert result.measured_ms > 0 and result.predicted_ms > 0 and result.action_overhead_ms >= 0
        assert set(result.calibration_ms) >= {f"{s}F" for s in range(plan.problem.num_stages)}
        trace = run_trace(result, [d.name for d in plan.problem.devices])
        assert sum(e["ph"] == "X" for e in trace["traceEvents"]) == len(result.spans)


@needs_torch
def test_cli_run_prints_json_with_the_promised_fields(tmp_path):
    plan_file, trace_file = tmp_path / "zb.json", tmp_path / "measured.json"
    save_plan(baselines.run_on(Scenario(devices=2, microbatches=4), "zb-h1"), plan_file)
    result = cli("run", plan_file, "--ranks", 2, "--iterations", 2, "--hidden", 32, "--rows", 4, "--json",
                 "--trace", trace_file)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ranks"] == 2 and data["max_grad_diff"] <= GRAD_TOLERANCE
    assert data["predicted_ms"] > 0 and data["measured_ms"] > 0 and len(data["iterations_ms"]) == 2
    events = json.loads(trace_file.read_text())["traceEvents"]
    assert sum(e["ph"] == "X" for e in events) == 2 * 4 * 3      # 2 stages × 4 micro-batches × F, I, W


def test_cli_run_refuses_what_the_runtime_cannot_hold(tmp_path):
    plan_file = tmp_path / "dp.json"
    save_plan(baselines.run_on(Scenario(devices=2, microbatches=4), "dualpipe"), plan_file)
    result = cli("run", plan_file)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "two devices" in result.stderr and "Traceback" not in result.stderr
    save_plan(baselines.run_on(Scenario(devices=2, microbatches=4), "1f1b"), plan_file)
    result = cli("run", plan_file, "--ranks", 3)
    assert result.returncode == 2 and result.stderr.startswith("opplan: error: --ranks 3 differs")
    result = cli("run", plan_file, "--hidden", 0)
    assert result.returncode == 2 and "--hidden must be a positive integer" in result.stderr


def test_run_config_checks_itself():
    with pytest.raises(OpplanError, match="rows"):
        RunConfig(rows=0)
    with pytest.raises(OpplanError, match="dtype"):
        RunConfig(dtype="float16")
    with pytest.raises(OpplanError, match="no plans"):
        run_plans([], TINY)


def test_prediction_retimes_the_plans_own_order():
    """The calibrated problem keeps the order and placement; only the task times and links change."""
    plan = baselines.run_on(Scenario(devices=2, microbatches=4), "1f1b")
    times = mean_times([(0, "F", 2.0), (0, "F", 4.0), (0, "B", 6.0), (1, "F", 1.0), (1, "B", 2.0)])
    assert times == {"0F": 3.0, "0B": 6.0, "1F": 1.0, "1B": 2.0}
    assert mean_times([(0, "F", 1.0), (0, "F", 1.0), (0, "F", 7.0)]) == {"0F": 3.0}   # the sum pays for the tail
    problem = calibrated_problem(plan.problem, times, link_ms=0.5)
    assert [s.forward for s in problem.stages] == [3.0, 1.0]
    assert [s.input_grad + s.weight_grad for s in problem.stages] == [6.0, 2.0]
    assert [e.transfer_ms for e in problem.edges] == [0.5]
    with_overhead = calibrated_problem(plan.problem, times, link_ms=0.5, action_overhead_ms=0.25)
    assert [s.forward for s in with_overhead.stages] == [3.25, 1.25]       # one action: one overhead
    assert [s.input_grad + s.weight_grad for s in with_overhead.stages] == [6.25, 2.25]
    ranks = [{"calibration": [(0, "F", 3.0), (0, "B", 6.0)], "gaps": [0.0]},
             {"calibration": [(1, "F", 1.0), (1, "B", 2.0)], "gaps": [0.5]}]
    times, overhead, predicted = predict_from_calibration(plan, ranks, link_ms=0.5)
    assert times == {"0F": 3.0, "0B": 6.0, "1F": 1.0, "1B": 2.0} and overhead == 0.25
    assert predicted == make_plan(calibrated_problem(plan.problem, times, 0.5, 0.25), plan.order).makespan
    with pytest.raises(OpplanError, match="no backward of stage 1"):
        calibrated_problem(plan.problem, {"0F": 1, "0B": 1, "1F": 1}, 0.0)


@needs_torch
def test_every_exportable_baseline_runs_on_two_ranks_with_reference_gradients():
    """DualPipeV's overlapped pairs, ZB-V's and interleaved 1F1B's two stages per rank included."""
    names = [name for name in baselines.NAMES if name not in ("dualpipe", "zb-h1")]   # zb-h1: the CLI test
    plans = [baselines.run_on(Scenario(devices=2, microbatches=4), name) for name in names]
    results = run_plans(plans, TINY)
    assert [r.schedule for r in results] == names
    for result in results:
        assert result.max_grad_diff <= GRAD_TOLERANCE, result.schedule


def test_without_torch_the_run_says_how_to_get_it(monkeypatch):
    import opplan.runtime.launch as launch

    monkeypatch.setattr(launch, "torch_available", lambda: False)
    with pytest.raises(OpplanError, match=r"pip install 'opplan\[torch\]'"):
        run_plans([baselines.run_on(Scenario(devices=2, microbatches=2), "1f1b")], TINY)


@needs_torch
def test_a_rank_that_fails_is_one_line_naming_it(tmp_path):
    """A CSV PyTorch's own validator rejects (stage 1 never runs its backward), run as it stands."""
    from opplan.runtime.jobs import PlanJob, RankJob
    from opplan.runtime.launch import _free_port, _start

    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("0F0,0B0\n1F0\n")
    job = RankJob((PlanJob(str(csv_file), (0, 1), (1, 1), 1, "{}"),), str(tmp_path), _free_port(), 2, 8, 2, 0,
                  "float64", 1, 1, 60.0)
    with pytest.raises(OpplanError, match=r"^rank \d failed: AssertionError: Invalid backward") as error:
        _start(job, 2)
    assert "\n" not in str(error.value)
