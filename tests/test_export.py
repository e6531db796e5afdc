"""Plans out of the tool: PyTorch's schedule CSV (and back in through ``simulate --order``), and
Chrome traces. Real files and the real ``opplan`` command; PyTorch's own loader where installed."""
import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from opplan import baselines
from opplan.errors import OpplanError
from opplan.graph import load_model
from opplan.io.chrome_trace import plan_trace, trace_json
from opplan.io.pytorch_csv import lists_from_csv_text
from opplan.io.torch_export import NotExportable, export_blocker, plan_to_torch_csv, torch_action_lists
from opplan.io.torch_order import schedule_from_lists
from opplan.layout import CONTIGUOUS, V_SHAPE, interleaved
from opplan.problem import StageEdge
from opplan.scenario import Scenario
from opplan.schedule import TimedTask, order_from_lists, save_plan
from opplan.simulate import make_plan

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
REFERENCE_CSV = Path(os.environ.get("OPPLAN_SHARED", Path(__file__).resolve().parents[2] / "shared")) \
    / "reference" / "dualpipev_4rank_10mb.csv"
EXPORTABLE = [name for name in baselines.NAMES if name != "dualpipe"]
# our baselines and the class of torch.distributed.pipelining that runs the same family
TORCH_COUNTERPARTS = {"gpipe": "ScheduleGPipe", "1f1b": "Schedule1F1B", "interleaved-1f1b": "ScheduleInterleaved1F1B",
                      "zb-v": "ScheduleZBVZeroBubble", "dualpipev": "ScheduleDualPipeV"}


def run(*args):
    return subprocess.run([sys.executable, "-m", "opplan.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def one_line_error(result, needle):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert needle in lines[0], lines[0]


def baseline_plan(name, devices=4, microbatches=8, **costs):
    return baselines.run_on(Scenario(devices=devices, microbatches=microbatches, **costs), name)


# --- the CSV -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", EXPORTABLE)
@pytest.mark.parametrize("devices, microbatches", [(2, 4), (4, 8)])
def test_every_exportable_baseline_round_trips_through_the_csv(name, devices, microbatches):
    plan = baseline_plan(name, devices, microbatches, f=1.0, b=1.5, w=0.5)
    text = plan_to_torch_csv(plan)
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == devices
    assert all((cell and not cell.startswith("(")) or cell.endswith(")OVERLAP_F_B") for row in rows for cell in row)
    schedule = schedule_from_lists(lists_from_csv_text(text))
    assert schedule.placement == tuple(s.device for s in plan.problem.stages)
    assert schedule.microbatches == microbatches
    layout = schedule.layout()
    assert layout is not None and layout.matches(plan.problem)
    again = make_plan(plan.problem, order_from_lists(plan.problem, schedule.lists))
    assert again.valid
    assert again.makespan == pytest.approx(plan.makespan)
    assert sorted(again.tasks) == sorted(plan.tasks)


def test_torch_letters_follow_the_runtime():
    """PyTorch's B is the full backward and I the input gradient: ours are BW and B."""
    lists = torch_action_lists(baseline_plan("1f1b", 2, 2))
    assert lists[1] == ["1F0", "1B0", "1F1", "1B1"]
    zb = torch_action_lists(baseline_plan("zb-h1", 2, 4))
    assert {cell[1] for cell in zb[0]} == {"F", "I", "W"}


def test_dualpipe_is_refused_with_the_reason():
    plan = baseline_plan("dualpipe", 4, 8)
    reason = export_blocker(plan)
    assert reason and "two devices" in reason and "\n" not in reason
    with pytest.raises(NotExportable, match="two devices"):
        plan_to_torch_csv(plan)


def test_operator_level_plan_is_refused_with_the_reason():
    scenario = Scenario(devices=4, microbatches=8, model=load_model(SAMPLES / "uniform_moe_8.json"),
                        granularity="operator")
    plan = baselines.run_on(scenario, "1f1b")
    assert plan.problem.is_unit_level
    with pytest.raises(NotExportable, match="operator-level"):
        torch_action_lists(plan)


def test_a_skip_edge_between_stages_is_refused():
    plan = baseline_plan("1f1b", 4, 4)
    problem = replace(plan.problem, edges=(*plan.problem.edges, StageEdge(0, 2)))
    skipping = make_plan(problem, plan.order)
    assert skipping.valid        # a fine plan for opplan ...
    assert "stage 0 sends to stage 2" in export_blocker(skipping)   # ... that PyTorch's runtime cannot run


def test_a_plan_that_breaks_a_rule_is_not_exported():
    plan = baseline_plan("1f1b", 2, 2)
    first = plan.tasks[0]
    plan.tasks[0] = TimedTask(first.task, first.resource, first.start, first.end + 0.5, first.group)
    with pytest.raises(OpplanError, match="breaks a rule"):
        plan_to_torch_csv(plan)


# --- the command line --------------------------------------------------------------------------
def test_cli_export_then_simulate_the_csv(tmp_path):
    plan_file, csv_file = tmp_path / "zb.json", tmp_path / "zb.csv"
    save_plan(baseline_plan("zb-h1", 4, 8, b=2.0), plan_file)
    result = run("export", plan_file, "--format", "torch-csv", "--out", csv_file)
    assert result.returncode == 0, result.stderr
    assert csv_file.read_text().splitlines()[0].startswith("0F0,0F1,0F2,0F3,0I0")
    result = run("simulate", "--order", csv_file, "--b", 2, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["valid"] and summary["makespan"] == pytest.approx(baseline_plan("zb-h1", 4, 8, b=2.0).makespan)
    # stdout when no --out
    result = run("export", plan_file, "--format", "torch-csv")
    assert result.returncode == 0 and result.stdout == csv_file.read_text()


def test_cli_simulates_pytorchs_reference_dualpipev_csv():
    if not REFERENCE_CSV.exists():
        pytest.skip(f"reference data not found at {REFERENCE_CSV} (set OPPLAN_SHARED to the shared folder)")
    result = run("simulate", "--order", REFERENCE_CSV, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["valid"]
    ours = baselines.run_on(Scenario(devices=4, microbatches=10), "dualpipev")
    assert summary["makespan"] == pytest.approx(ours.makespan)


def test_cli_simulates_a_csv_on_a_model_file(tmp_path):
    plan_file, csv_file = tmp_path / "v.json", tmp_path / "v.csv"
    model = SAMPLES / "uniform_pipeline_8.json"
    assert run("baseline", "zb-v", model, "--devices", 4, "-m", 8, "--out", plan_file).returncode == 0
    assert run("export", plan_file, "--format", "torch-csv", "--out", csv_file).returncode == 0
    result = run("simulate", model, "--order", csv_file, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["makespan"] == pytest.approx(json.loads(plan_file.read_text())["metrics"]["makespan"])


def test_cli_export_errors_are_one_line(tmp_path):
    plan_file = tmp_path / "dp.json"
    save_plan(baseline_plan("dualpipe", 4, 8), plan_file)
    one_line_error(run("export", plan_file, "--format", "torch-csv"), "two devices")
    one_line_error(run("export", tmp_path / "missing.json", "--format", "torch-csv"), "no such file")
    bad = run("export", plan_file, "--format", "png")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    save_plan(baseline_plan("1f1b", 2, 2), plan_file)
    # --out is checked before any work (the CLI's shared rule): its directory must exist
    one_line_error(run("export", plan_file, "--format", "chrome-trace", "--out", tmp_path / "no" / "t.json"),
                   "does not exist")


def test_cli_simulate_csv_errors_are_one_line(tmp_path):
    twice = tmp_path / "twice.csv"
    twice.write_text("0F0,1F0,1B0,0B0\n1F0\n")
    one_line_error(run("simulate", "--order", twice), "stage 1 runs on ranks 0 and 1")
    garbage = tmp_path / "garbage.csv"
    garbage.write_text("0F0,hello\n")
    one_line_error(run("simulate", "--order", garbage), "'hello'")
    good = tmp_path / "good.csv"
    good.write_text(plan_to_torch_csv(baseline_plan("1f1b", 2, 4)))
    one_line_error(run("simulate", "--order", good, "-m", 6), "--microbatches 6 disagrees")
    one_line_error(run("simulate", "--order", good, "--stages", 3), "--stages 3 disagrees")


def test_layout_of_a_csv_is_read_from_its_stage_map():
    assert schedule_from_lists([["0F0", "3F0"], ["1F0", "2F0"]]).layout() == V_SHAPE
    assert schedule_from_lists([["0F0", "2F0"], ["1F0", "3F0"]]).layout() == interleaved(2)
    assert schedule_from_lists([["0F0"], ["1F0"]]).layout() == CONTIGUOUS
    assert schedule_from_lists([["0F0", "1F0"], ["2F0", "3F0"]]).layout() is None
    with pytest.raises(OpplanError, match="stage 1 has no actions"):
        schedule_from_lists([["0F0"], ["2F0"]])


# --- PyTorch's own loader and generators ---------------------------------------------------------
def _torch_runtime():
    pytest.importorskip("torch", reason="the torch extra is not installed (pip install -e '.[torch]')")
    from torch.distributed.pipelining import schedules
    return schedules


def _stub_stages(stages, ranks, rank=0):
    """What the runtime reads from its stages when loading a CSV, without starting any process."""
    return [SimpleNamespace(num_stages=stages, group_size=ranks, group_rank=rank, stage_index=s,
                            stage_index_to_group_rank=None, is_first=s == 0, is_last=s == stages - 1)
            for s in range(stages) if s % ranks == rank or stages == ranks]


@pytest.mark.parametrize("name", EXPORTABLE)
def test_csv_of_every_exportable_baseline_loads_in_the_runtime(name, tmp_path):
    """Those with a PyTorch counterpart (TORCH_COUNTERPARTS) and the zero-bubble ones it lacks."""
    schedules = _torch_runtime()
    plan = baseline_plan(name, 4, 8)
    path = tmp_path / f"{name}.csv"
    path.write_text(plan_to_torch_csv(plan))
    runtime = schedules._PipelineScheduleRuntime(_stub_stages(plan.problem.num_stages, 4), 8)
    runtime._load_csv(str(path))     # PyTorch's validator and its send/receive lowering
    assert runtime.stage_index_to_group_rank == {s: st.device for s, st in enumerate(plan.problem.stages)}
    assert set(runtime.pipeline_order_with_comms) == {0, 1, 2, 3}
    assert name not in TORCH_COUNTERPARTS or hasattr(schedules, TORCH_COUNTERPARTS[name])


@pytest.mark.parametrize("cls, v_shape", [("ScheduleInterleaved1F1B", False), ("ScheduleLoopedBFS", False),
                                          ("ScheduleInterleavedZeroBubble", False), ("ScheduleZBVZeroBubble", True),
                                          ("ScheduleDualPipeV", True)])
def test_pytorchs_generated_schedules_simulate(cls, v_shape, tmp_path):
    """PyTorch's own generator writes the CSV; opplan times it, and it passes our validator."""
    schedules = _torch_runtime()
    import torch

    ranks, microbatches = 2, 4
    rows = []
    for rank in range(ranks):
        held = (rank, 2 * ranks - 1 - rank) if v_shape else (rank, rank + ranks)
        stubs = [SimpleNamespace(num_stages=2 * ranks, group_size=ranks, group_rank=rank, stage_index=s,
                                 stage_index_to_group_rank=None, submod=torch.nn.Identity()) for s in held]
        generated = getattr(schedules, cls)(stubs, microbatches)
        rows.append([str(a) for a in generated.pipeline_order[rank] if a is not None])
    path = tmp_path / f"{cls}.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    result = run("simulate", "--order", path, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["valid"] and summary["makespan"] > 0


# --- Chrome traces ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: baseline_plan("dualpipe", 4, 8),
    lambda: baselines.run_on(Scenario(devices=4, microbatches=4, model=load_model(SAMPLES / "llama2_7b.json")), "zb-h1"),
    lambda: baselines.run_on(Scenario(devices=4, microbatches=4, model=load_model(SAMPLES / "uniform_moe_8.json"),
                                      granularity="operator"), "1f1b"),
], ids=["dualpipe", "model-with-links", "operator-level"])
def test_trace_holds_every_task_once_on_its_device_and_resource(make):
    plan = make()
    trace = json.loads(trace_json(plan_trace(plan)))
    events = trace["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    assert sorted(e["name"] for e in spans) == sorted(t.task for t in plan.tasks)
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert len(processes) == plan.problem.num_devices
    by_name = {t.task: t for t in plan.tasks}
    for event in spans:
        task = by_name[event["name"]]
        assert threads[(event["pid"], event["tid"])] == task.resource
        assert processes[event["pid"]].endswith(task.resource.split("->")[0].removesuffix(".comm"))
        assert event["ts"] == pytest.approx(task.start * 1000) and event["dur"] == pytest.approx((task.end - task.start) * 1000)
    resources = {t.resource for t in plan.tasks}
    assert set(threads.values()) == resources


def test_cli_chrome_trace(tmp_path):
    plan_file, trace_file = tmp_path / "p.json", tmp_path / "trace.json"
    plan = baseline_plan("zb-h1", 2, 4)
    save_plan(plan, plan_file)
    result = run("export", plan_file, "--format", "chrome-trace", "--out", trace_file)
    assert result.returncode == 0, result.stderr
    events = json.loads(trace_file.read_text())["traceEvents"]
    assert sum(e["ph"] == "X" for e in events) == len(plan.tasks)
