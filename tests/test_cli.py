"""The `opplan` command as users run it: real files, real subprocesses, one-line errors, exit codes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from opplan.errors import OpplanError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "opplan.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=300)


def assert_one_line_error(result, needle):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert needle in lines[0], lines[0]


def test_info_on_every_sample_model():
    for path in sorted(SAMPLES.glob("*.json")):
        result = run("info", path, "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["num_operators"] == len(data["operators"]) > 0
        assert all(r["forward_ms"] >= 0 for r in data["operators"])


def test_info_text_lists_operators():
    result = run("info", SAMPLES / "llama2_7b.json")
    assert result.returncode == 0
    assert "L0.attn" in result.stdout and "total" in result.stdout


@pytest.mark.parametrize("content, needle", [
    ("", "empty"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "top level must be an object"),
    ('{"operators": []}', "no operators"),
    ('{"operators": [{"id": "a", "time": {"forward": -1, "input_grad": 1, "weight_grad": 1}}]}',
     "operator 'a' field time.forward must be non-negative"),
    ('{"operators": [{"id": "a", "time": {"forward": 1, "input_grad": 1, "weight_grad": 1}},'
     ' {"id": "b", "time": {"forward": 1, "input_grad": 1, "weight_grad": 1}}],'
     ' "edges": [{"src": "a", "dst": "b"}, {"src": "b", "dst": "a"}]}', "cycle: "),
])
def test_bad_model_files_give_one_line(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert_one_line_error(run("info", path), needle)


def test_missing_file_and_missing_arguments():
    assert_one_line_error(run("info", "/nonexistent/model.json"), "no such file")
    assert_one_line_error(run("info"), "give a MODEL file or --stages P")
    assert_one_line_error(run("baseline", "1f1b", "--stages", "4"), "--microbatches M is required")
    assert_one_line_error(run("simulate", "--stages", "x"), "invalid int value")


def test_simulate_order_file_then_validate(tmp_path):
    order = tmp_path / "gpipe.txt"
    order.write_text("\n".join(f"dev{s}: " + " ".join([f"{s}F{m}" for m in range(4)] + [f"{s}BW{m}" for m in range(4)])
                               for s in range(3)))
    plan_path = tmp_path / "plan.json"
    result = run("simulate", "--stages", 3, "--microbatches", 4, "--order", order, "--out", plan_path, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["makespan"] == 4 * 3 + 2 * 3 and data["valid"]
    ok = run("validate", plan_path)
    assert ok.returncode == 0 and "valid" in ok.stdout
    # corrupt the saved plan: move one task earlier than its input allows
    doc = json.loads(plan_path.read_text())
    for row in doc["tasks"]:
        if row[0] == "2F3":
            row[2] -= 2
            row[3] -= 2
    plan_path.write_text(json.dumps(doc))
    bad = run("validate", plan_path, "--json")
    assert bad.returncode == 1
    rules = {v["rule"] for v in json.loads(bad.stdout)["violations"]}
    assert 3 in rules


def test_simulate_deadlocked_order_is_one_line(tmp_path):
    order = tmp_path / "bad.txt"
    order.write_text("dev0: 0B0 0W0 0F0\ndev1: 1F0 1B0 1W0\n")
    assert_one_line_error(run("simulate", "--stages", 2, "--microbatches", 1, "--order", order), "deadlocks")


def test_validate_rejects_non_plans(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}')
    assert_one_line_error(run("validate", path), "not an opplan plan")


def test_baseline_json_keys_and_reference_values():
    result = run("baseline", "dualpipe", "--stages", 8, "--microbatches", 20, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key in ("schedule", "devices", "microbatches", "makespan", "bubble", "bubble_ratio", "peak_activations",
                "peak_memory_bytes", "valid"):
        assert key in data
    assert data["bubble"] == [6.0] * 8 and data["peak_activations"] == [9.0] * 8 and data["valid"]
    assert data["microbatches"] == 20


def test_baseline_on_a_model_file_and_bad_names():
    result = run("baseline", "1f1b", SAMPLES / "multimodal_vlm.json", "--devices", 4, "--microbatches", 8, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["valid"]
    assert_one_line_error(run("baseline", "magic", "--stages", 4, "--microbatches", 8), "valid: gpipe, 1f1b")
    assert_one_line_error(run("baseline", "dualpipe", "--stages", 8, "--microbatches", 5), "M >= 2P")
    assert_one_line_error(run("baseline", "1f1b", "--stages", 4, "--microbatches", 8, "--memory-cap-activations", "x"),
                          "is not a number")


# --- errors: the CLI names its flag, the library names the field ---------------------------------
LLAMA = str(SAMPLES / "llama2_7b.json")


def run_inline(capsys, *args):
    """The CLI in-process (fast): (exit code, stderr lines)."""
    from opplan.cli import main

    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("args, expected", [
    (("baseline", "1f1b", "--stages", 4), "--microbatches M is required"),
    (("baseline", "1f1b", "-m", 8), "--stages P is required"),
    (("baseline", "1f1b", LLAMA, "-m", 8), "--devices P is required"),
    (("baseline", "1f1b", "--stages", 0, "-m", 8), "--stages must be a positive integer, got 0"),
    (("baseline", "1f1b", "--stages", -1, "-m", 8), "--stages must be a positive integer, got -1"),
    (("baseline", "1f1b", LLAMA, "--devices", 0, "-m", 8), "--devices must be a positive integer, got 0"),
    (("baseline", "1f1b", "--stages", 4, "--devices", 5, "-m", 8), "--devices: stages 4 and devices 5 disagree"),
    (("baseline", "1f1b", "--stages", 4, "-m", 0), "--microbatches must be a positive integer, got 0"),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--f", -1), "--f must be a non-negative finite number"),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--b", "nan"), "--b must be a non-negative finite number"),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--w", "inf"), "--w must be a non-negative finite number"),
    (("baseline", "dualpipe", "--stages", 4, "-m", 8, "--fb", 0), "--fb must be a positive number"),
    (("baseline", "dualpipe", "--stages", 4, "-m", 8, "--f", 0, "--b", 0, "--w", 0, "--fb", 1), "--fb needs F+B+W > 0"),
    (("baseline", "1f1b", LLAMA, "--devices", 4, "-m", 8, "--fb", 2), "--fb is the F&B time of a uniform pipeline"),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--memory-cap", "80GB"),
     "--memory-cap: a memory cap in bytes needs a model"),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--memory-cap", "8GB", "--memory-cap-activations", 3),
     "give either --memory-cap or --memory-cap-activations, not both"),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--memory-cap-activations", "x"), "--memory-cap-activations: "),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--memory-cap-activations", 0), "--memory-cap-activations: "),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--memory-cap-activations", "1,2"),
     "--memory-cap-activations: got 2 memory caps for 4 devices"),
    (("baseline", "1f1b", LLAMA, "--devices", 4, "-m", 8, "--memory-cap", "lots"),
     "--memory-cap: 'lots' is not a byte size"),
    (("baseline", "1f1b", LLAMA, "--devices", 4, "-m", 8, "--accelerator", "Z9"), "--accelerator: unknown accelerator"),
    (("baseline", "dualpipe", "--stages", 3, "-m", 8), "--stages: dualpipe needs an even number of devices"),
    (("baseline", "dualpipe", "--devices", 3, "-m", 8), "--devices: dualpipe needs an even number of devices"),
    (("baseline", "dualpipe", "--stages", 8, "-m", 17),
     "--microbatches: dualpipe needs an even number of micro-batches"),
    (("baseline", "dualpipev", "--stages", 4, "-m", 5), "--microbatches: dualpipev needs"),
    (("baseline", "dualpipe", "--stages", 8, "-m", 20, "--granularity", "operator"),
     "--granularity applies to a model graph"),
    (("baseline", "interleaved-1f1b", "--stages", 4, "-m", 9), "--microbatches: interleaved 1F1B runs M=9"),
    (("info", "--stages", -1), "--stages must be a positive integer, got -1"),
    (("simulate", "--stages", 3, "--order", "x.txt"), "--microbatches M is required"),
    (("simulate", "--stages", 0, "-m", 4, "--order", "x.txt"), "--stages must be a positive integer, got 0"),
    (("simulate", LLAMA, "-m", 4, "--order", "x.txt"), "--devices P is required"),
])
def test_every_error_names_its_flag(capsys, args, expected):
    code, lines = run_inline(capsys, *args)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("opplan: error: ") and expected in lines[0], lines[0]


def test_error_line_maps_fields_to_the_flag_the_user_gave():
    from argparse import Namespace

    from opplan.cli import error_line

    args = Namespace(stages=None, devices=4, memory_cap=None, memory_cap_activations="3")
    assert error_line(OpplanError("devices must be a positive integer, got 0", field="devices"), args) \
        == "--devices must be a positive integer, got 0"
    assert error_line(OpplanError("dualpipe needs an even number of devices", field="stages"), args) \
        == "--devices: dualpipe needs an even number of devices"
    assert error_line(OpplanError("got 2 memory caps for 4 devices", field="memory_cap"), args) \
        == "--memory-cap-activations: got 2 memory caps for 4 devices"
    assert error_line(OpplanError("no flag for this", field="speeds"), args) == "no flag for this"
    assert error_line(OpplanError("no field"), args) == "no field"


def _uniform_problem(**kw):
    from opplan.problem import uniform_problem
    return lambda: uniform_problem(**{"stages": 2, "microbatches": 4, **kw})


def _check(name, P, M):
    from opplan import baselines
    return lambda: baselines.get(name).check(P, M)


def _options(**kw):
    from opplan.scenario import Scenario
    return lambda: Scenario.from_options(**{"stages": 4, "microbatches": 8, **kw})


@pytest.mark.parametrize("call, field", [
    (_uniform_problem(stages=0), "stages"),
    (_uniform_problem(forward=-1), "f"),
    (_uniform_problem(input_grad=float("nan")), "b"),
    (_uniform_problem(weight_grad=float("inf")), "w"),
    (_uniform_problem(fb_overlap=0), "fb"),
    (_uniform_problem(forward=0, input_grad=0, weight_grad=0, fb_overlap=1), "fb"),
    (_uniform_problem(microbatches=0), "microbatches"),
    (_check("1f1b", 0, 4), "devices"),
    (_check("gpipe", 4, 0), "microbatches"),
    (_check("dualpipe", 3, 12), "devices"),
    (_check("dualpipe", 4, 6), "microbatches"),
    (_check("dualpipev", 4, 7), "microbatches"),
    (_check("interleaved-1f1b", 4, 9), "microbatches"),
    (lambda: __import__("opplan.graph").graph.uniform_chain(0), "stages"),
    (lambda: __import__("opplan.cluster").cluster.uniform_cluster(0), "devices"),
    (_options(microbatches=None), "microbatches"),
    (_options(stages=0), "stages"),
])
def test_library_errors_name_the_field_not_a_flag(call, field):
    with pytest.raises(OpplanError) as error:
        call()
    assert error.value.field == field
    assert field in str(error.value).replace("micro-batches", "microbatches")
    assert "--" not in str(error.value)


def test_no_core_message_names_a_flag():
    import re

    flag = re.compile(r"OpplanError\(\s*f?[\"'][^\"']*--[a-z]")
    offenders = [f"{path.relative_to(ROOT)}" for path in (ROOT / "opplan").rglob("*.py")
                 if path.name != "cli.py" and flag.search(path.read_text(encoding="utf-8"))]
    assert offenders == []


# --- Scenario.from_options: the rules every front end shares -------------------------------------
def _cap(values, unit="activations"):
    from opplan.units import MemoryCap
    return MemoryCap(values, unit)


@pytest.mark.parametrize("kwargs, field, needle", [
    (dict(stages=4), "microbatches", "microbatches M is required"),
    (dict(microbatches=8), "stages", "stages P is required"),
    (dict(model="llama", microbatches=8), "devices", "devices P is required"),
    (dict(stages=4, devices=5, microbatches=8), "devices", "disagree"),
    (dict(devices=0, microbatches=8), "devices", "positive integer"),
    (dict(stages=4, microbatches=True), "microbatches", "positive integer"),
    (dict(stages=4, microbatches=8, f=-1), "f", "non-negative"),
    (dict(stages=4, microbatches=8, fb=0), "fb", "positive"),
    (dict(model="llama", devices=4, microbatches=8, fb=2), "fb", "uniform pipeline"),
    (dict(stages=4, microbatches=8, overlap_factor=0.5), "overlap_factor", "applies to a model"),
    (dict(model="llama", devices=4, microbatches=8, overlap_factor=3), "overlap_factor", "(0, 2]"),
    (dict(stages=4, microbatches=8, speeds=(1, 1, 1, 1)), "speeds", "apply to a model"),
    (dict(model="llama", devices=4, microbatches=8, speeds=(1, 1)), "speeds", "2 device speeds for 4 devices"),
    (dict(model="llama", devices=2, microbatches=8, speeds=(1, 0)), "speeds", "positive"),
    (dict(stages=4, microbatches=8, memory_cap=_cap(1e9, "bytes")), "memory_cap", "needs a model"),
    (dict(stages=4, microbatches=8, memory_cap=_cap((1, 2))), "memory_cap", "got 2 memory caps for 4 devices"),
    (dict(stages=4, microbatches=8, memory_cap=4), "memory_cap", "must be a MemoryCap"),
    (dict(model="llama", devices=4, microbatches=8, accelerator="Z9"), "accelerator", "unknown accelerator"),
])
def test_from_options_rules(kwargs, field, needle):
    from opplan.graph import load_model
    from opplan.scenario import Scenario

    if kwargs.get("model") == "llama":
        kwargs = dict(kwargs, model=load_model(LLAMA))
    with pytest.raises(OpplanError) as error:
        Scenario.from_options(**kwargs)
    assert error.value.field == field and needle in str(error.value), (error.value.field, str(error.value))


def test_from_options_builds_what_the_cli_ran_before():
    from opplan.graph import load_model
    from opplan.scenario import Scenario
    from opplan.units import activation_unit_bytes

    uniform = Scenario.from_options(stages=4, microbatches=8, fb=2.5, memory_cap=_cap(3))
    assert uniform == Scenario(4, 8, fb=2.5, memory_caps=(3.0,) * 4)
    assert Scenario.from_options(devices=4, stages=4, microbatches=8) == Scenario(4, 8)
    model = load_model(LLAMA)
    unit = activation_unit_bytes(model, 4)
    in_units = Scenario.from_options(model, devices=4, microbatches=8, memory_cap=_cap((4, 3, 2, 1)))
    assert in_units.memory_caps == pytest.approx((4 * unit, 3 * unit, 2 * unit, unit))
    in_bytes = Scenario.from_options(model, stages=4, microbatches=8, memory_cap=_cap(80e9, "bytes"),
                                     accelerator="A100", speeds=(1, 1, 2, 2), overlap_factor=0.8)
    assert in_bytes == Scenario(4, 8, model=model, memory_caps=(80e9,) * 4, accelerator="A100",
                                speeds=(1.0, 1.0, 2.0, 2.0), overlap_factor=0.8)
