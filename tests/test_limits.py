"""Hostile input meets ceilings: every bad file or option ends fast, in one bounded line (exit 2
at the CLI), before anything large is allocated. Times are printed (run with -s to see them)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opplan import limits
from opplan.errors import OpplanError
from opplan.graph import load_model, parse_model, parse_model_text
from opplan.schedule import load_plan

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
MESSAGE_CHARS = 400      # no message may grow with the input; this is far above any we write


def sample(name: str = "uniform_pipeline_8") -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def one_line_error(call, *args) -> str:
    """The OpplanError ``call`` raises: one line, bounded, no raw control characters."""
    with pytest.raises(OpplanError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message and len(message) < MESSAGE_CHARS, message[:1000]
    assert not any(ord(c) < 32 or c == "\x7f" for c in message), repr(message)
    return message


def cli(capsys, *args) -> tuple[int, list[str]]:
    from opplan.cli import main

    try:
        code = main([str(a) for a in args])
    except SystemExit as stop:      # argparse's own checks
        code = stop.code
    return code, capsys.readouterr().err.strip().splitlines()


def plan_file(tmp_path, capsys) -> Path:
    path = tmp_path / "plan.json"
    assert cli(capsys, "baseline", "1f1b", "--stages", 4, "-m", 8, "--out", path)[0] == 0
    return path


# --- 1. YAML aliases, and messages that quote user data ------------------------------------------------
LAUGHS = "\n".join([
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    *(f"{x}: &{x} [{', '.join(['*' + p] * 9)}]" for p, x in zip("abcdef", "bcdefg")),
])


LAUGHS_MODEL = """{laughs}
format: {format}
name: {name}
description: {description}
operators:
  - {{id: a, group: {group}, time: {{forward: {cost}, input_grad: 1, weight_grad: 1}}}}
  - {{id: b, time: {{forward: 1, input_grad: 1, weight_grad: 1}}}}
edges: [{{src: {src}, dst: b}}]
"""
PLAIN = {"format": "opplan-model/1", "name": "x", "description": "d", "group": "g", "cost": "1", "src": "a"}


@pytest.mark.parametrize("field", list(PLAIN))
def test_billion_laughs_in_any_field_fails_fast_and_small(field):
    values = dict(PLAIN, **{field: "*g"})
    text = LAUGHS_MODEL.format(laughs=LAUGHS, **values)
    assert parse_model_text(LAUGHS_MODEL.format(laughs="", **PLAIN), "plain.yaml").name == "x"
    began = time.perf_counter()
    message = one_line_error(parse_model_text, text, "laughs.yaml")
    assert "aliases" in message and time.perf_counter() - began < 3


@pytest.mark.parametrize("field", ["name", "format", "description", "group", "kind", "src"])
def test_huge_text_in_any_field_is_quoted_short(field):
    big = "x" * 5_000_000
    data = sample()
    if field in ("name", "format", "description"):
        data[field] = big
    elif field == "src":
        data["edges"][0]["src"] = big
    else:
        data["operators"][0][field] = big
    one_line_error(parse_model, data, "big.json")


def test_shown_is_bounded_for_any_value():
    nested: list = ["lol"] * 10
    for _ in range(8):
        nested = [nested] * 10      # 10^9 leaves if expanded
    for value in (nested, "y" * 10**6, 10**4000, {"k" * 10**5: 1}, b"\x00" * 10**6):
        assert len(limits.shown(value)) <= 3 * limits.SHOWN_CHARS + 3


# --- 2. file size ------------------------------------------------------------------------------------
def test_a_50_mb_file_is_refused_before_it_is_read(tmp_path):
    garbage = tmp_path / "garbage.yaml"
    garbage.write_bytes(b"- [a, {b: c}]\n" * (50 * 1000 * 1000 // 14))
    began = time.perf_counter()
    for load in (load_model, load_plan):
        message = one_line_error(load, garbage)
        assert "20 MB limit" in message
    elapsed = time.perf_counter() - began
    print(f"\n50 MB garbage file rejected in {elapsed * 1000:.1f} ms (model and plan loaders)")
    assert elapsed < 1.0


def test_a_file_without_end_is_cut_at_the_limit():
    began = time.perf_counter()
    assert "20 MB limit" in one_line_error(load_model, "/dev/zero")
    assert time.perf_counter() - began < 5


def test_text_over_the_limit_is_refused_unparsed():
    assert "20 MB limit" in one_line_error(parse_model_text, "#" * (limits.MAX_FILE_BYTES + 1), "big.yaml")


# --- 3. nesting ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  '{"operators": ' + "[" * 100_000 + "]" * 100_000 + "}",
                                  "- " * 5_000 + "x", "a: " + "[" * 5_000 + "]" * 5_000])
def test_deep_nesting_is_one_line(tmp_path, text):
    assert "levels deep" in one_line_error(parse_model_text, text, "deep")
    path = tmp_path / "deep-plan.json"
    path.write_text('{"format": "opplan-plan/1", "problem": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "levels deep" in one_line_error(load_plan, path)


# --- 4-5. numbers --------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", ["9" * 400, "9" * 5000, "-" + "9" * 400, "1e308", "1e400", "NaN", "Infinity"],
                         ids=["400 digits", "5000 digits", "-400 digits", "1e308", "1e400", "NaN", "Infinity"])
def test_numbers_beyond_the_limit_are_one_line(number):
    text = json.dumps(sample()).replace('"forward": 1', f'"forward": {number}', 1)
    assert text != json.dumps(sample())
    one_line_error(parse_model_text, text, "m.json")
    yaml_text = f"operators:\n  - id: a\n    time: {{forward: {number}, input_grad: 1, weight_grad: 1}}\n"
    one_line_error(parse_model_text, yaml_text, "m.yaml")


def test_quantities_stay_finite_through_the_cost_model():
    data = sample()
    for op in data["operators"]:
        op["time"] = {"forward": 1e18, "input_grad": 1e18, "weight_grad": 1e18}
        op["activation_bytes"] = op["param_bytes"] = 1e18
    model = parse_model(data)
    from opplan import baselines
    from opplan.scenario import Scenario

    plan = baselines.run_on(Scenario.from_options(model, devices=4, microbatches=8), "1f1b")
    assert plan.makespan < float("inf") and all(m < float("inf") for m in plan.metrics.peak_memory_bytes)


# --- 6. control characters ---------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["a\nb", "a\x1b[2Jb", "a\u202eb", "a\x00b", "a\rb", "a\u2028b"])
@pytest.mark.parametrize("where", ["id", "name", "group", "description", "src"])
def test_control_characters_are_refused_and_never_printed_raw(bad, where):
    data = sample()
    if where in ("name", "description"):
        data[where] = bad
    elif where == "src":
        data["edges"][0]["src"] = bad
    else:
        data["operators"][0][where] = bad
    message = one_line_error(parse_model, data)
    assert "control character" in message


# --- 7. one schema, enforced by the loader ----------------------------------------------------------------
@pytest.mark.parametrize("change, needle", [
    (lambda d: d.update(extra=1), "unknown top-level field 'extra'"),
    (lambda d: d.update(name=""), "name must be a non-empty string"),
    (lambda d: d.update(description=5), "description must be a string"),
    (lambda d: d.update(accelerator="TPU9"), "accelerator must be one of"),
    (lambda d: d["operators"][0].update(layer=-1), "layer must be between"),
    (lambda d: d["operators"][0].update(layer=2.5), "layer must be an integer"),
    (lambda d: d["edges"].__setitem__(0, ["s0", "s1"]), "edge #0 must be an object"),
])
def test_the_loader_enforces_the_schema(change, needle):
    data = sample()
    change(data)
    assert needle in one_line_error(parse_model, data)
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "opplan/schemas/model.schema.json").read_text())
    assert not jsonschema.Draft202012Validator(schema).is_valid(data), "the schema refuses it too"


@pytest.mark.parametrize("value", ["1:30", "yes", "no", "on", "2026-11-25", "0b101", "1_000"])
def test_yaml_reads_the_1_2_core_schema(value):
    text = f"operators:\n  - id: a\n    time: {{forward: {value}, input_grad: 1, weight_grad: 1}}\n"
    assert "must be a number, got str" in one_line_error(parse_model_text, text, "m.yaml")


def test_yaml_1_2_numbers_and_anchors_still_load():
    text = ("operators:\n  - id: a\n    time: &t {forward: 1.5e2, input_grad: 0x10, weight_grad: 7}\n"
            "  - {id: b, time: *t}\nedges: [{src: a, dst: b, bytes: 1e6}]\n")
    model = parse_model_text(text, "m.yaml")
    assert model.operator("b").costs.forward == 150 and model.operator("b").costs.input_grad == 16


# --- plan files ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, needle", [
    (lambda p: p["problem"].update(microbatches=4.7), "microbatches must be an integer"),
    (lambda p: p["problem"]["stages"][0].update(device=0.9), "device must be an integer"),
    (lambda p: p.update(metrics=[1]), "metrics must be an object"),
    (lambda p: p.update(provenance="x"), "provenance must be an object"),
    (lambda p: p["tasks"].__setitem__(0, {"a": 1}), "task row #0 must be"),
    (lambda p: p["tasks"][0].__setitem__(2, float("1e400")), "numbers must be finite"),
    (lambda p: p["tasks"][0].__setitem__(2, -1), "task row #0: the start"),
    (lambda p: p.update(extra=1), "unknown top-level field 'extra'"),
    (lambda p: p["problem"].update(microbatches=10**9), "above the limit of"),
    (lambda p: p["problem"]["stages"][0].update(name="s\x1b[2J"), "control character"),
    (lambda p: p["order"]["sequences"].update(dev0="0F0"), "must be a list of entries"),
    (lambda p: p["metrics"].update(num_tasks=10**400), "digits is too large"),
    (lambda p: p["metrics"].update(num_tasks=1.5), "num_tasks"),
])
def test_bad_plan_files_are_one_line(tmp_path, capsys, change, needle):
    data = json.loads(plan_file(tmp_path, capsys).read_text())
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    began = time.perf_counter()
    assert needle in one_line_error(load_plan, path)
    assert time.perf_counter() - began < 2
    code, lines = cli(capsys, "validate", path)
    assert code == 2 and len(lines) == 1 and needle in lines[0]


# --- 2. sizes: task counts are checked before anything is built ---------------------------------------------
@pytest.mark.parametrize("args", [
    ("baseline", "1f1b", "--stages", 4, "-m", 10**9),
    ("baseline", "1f1b", "--stages", 10**9, "-m", 4),
    ("solve", "--stages", 8, "-m", 10**8, "--time-limit", 5),
    ("info", "--stages", 10**9),
    ("baseline", "1f1b", str(SAMPLES / "llama2_7b.json"), "--devices", 4, "-m", 10**9),
])
def test_sizes_have_a_ceiling_named_in_the_error(capsys, args):
    began = time.perf_counter()
    code, lines = cli(capsys, *args)
    assert code == 2 and len(lines) == 1 and ("limit" in lines[0] or "at most" in lines[0]), lines
    assert time.perf_counter() - began < 2


def test_the_task_ceiling_follows_free_memory(monkeypatch):
    assert limits.max_tasks() <= limits.MAX_TASKS
    monkeypatch.setattr(limits, "available_memory", lambda: 100 * 10**6)
    assert limits.max_tasks() == 50_000
    monkeypatch.setattr(limits, "available_memory", lambda: None)
    assert limits.max_tasks() == limits.MAX_TASKS


# --- CLI options --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, needle", [
    (("solve", "--stages", 4, "-m", 8, "--threads", 100000), "--threads: must be an integer from 1 to"),
    (("solve", "--stages", 4, "-m", 8, "--threads", 0), "--threads"),
    (("solve", "--stages", 4, "-m", 8, "--makespan-limit", "nan"), "--makespan-limit: must be a finite number"),
    (("solve", "--stages", 4, "-m", 8, "--makespan-limit", "inf"), "--makespan-limit: must be a finite number"),
    (("solve", "--stages", 4, "-m", 8, "--time-limit", "inf"), "--time-limit"),
    (("solve", "--stages", 4, "-m", 8, "--gap", "nan"), "--gap"),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--out", "/nonexistent/x.json"), "does not exist"),
    (("baseline", "1f1b", "--stages", 4, "-m", 8, "--out", "/tmp"), "is a directory"),
    (("simulate", "--stages", 4, "-m", 8, "--devices", 0, "--order", "x.txt"), "--devices must be a positive"),
])
def test_cli_options_are_validated(capsys, args, needle):
    code, lines = cli(capsys, *args)
    assert code == 2 and len(lines) == 1 and needle in lines[0], lines


def test_order_files_are_read_like_models(tmp_path, capsys):
    bad = tmp_path / "order.txt"
    bad.write_bytes(b"dev0: 0F0 \xff\xfe\n")
    code, lines = cli(capsys, "simulate", "--stages", 4, "-m", 8, "--order", bad)
    assert code == 2 and len(lines) == 1 and "not UTF-8" in lines[0]
    bad.write_text("dev0: " + "(" * 5000 + "0F0" + ")" * 5000 + "\n")
    code, lines = cli(capsys, "simulate", "--stages", 4, "-m", 8, "--order", bad)
    assert code == 2 and len(lines) == 1 and len(lines[0]) < MESSAGE_CHARS
    bad.write_text("dev0: (((0F0)))\n")
    code, lines = cli(capsys, "simulate", "--stages", 4, "-m", 8, "--order", bad)
    assert len(lines) == 1 and len(lines[0]) < MESSAGE_CHARS, lines
    bad.write_text("dev\x1b[2J0: 0F0\n")
    code, lines = cli(capsys, "simulate", "--stages", 4, "-m", 8, "--order", bad)
    assert code == 2 and "control character" in lines[0]


def test_a_closed_pipe_is_one_line_not_a_traceback():
    shell = (f"{sys.executable} -m opplan.cli info --stages 4096 | head -1 >/dev/null; "
             "echo rc=${PIPESTATUS[0]} >&2")
    out = subprocess.run(["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if not line.startswith("rc=")]
    assert lines == ["opplan: error: output closed before it was all written (broken pipe)"], out.stderr
    assert "rc=2" in out.stderr


def test_threads_range_is_the_cores():
    assert limits.check_threads(limits.cores()) == limits.cores()
    with pytest.raises(OpplanError):
        limits.check_threads(limits.cores() + 1)
