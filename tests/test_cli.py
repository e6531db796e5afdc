"""The `opplan` command as users run it: real files, real subprocesses, one-line errors, exit codes."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

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
