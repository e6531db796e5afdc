"""Fuzzing the front door: mutated sample models, plan files and order files go through the
loader and the CLI (``info``, ``baseline``, ``validate``, ``simulate``). Whatever the mutation,
the outcome is a result (exit 0 or 1) or one bounded line (exit 2); no exception escapes."""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from opplan.errors import OpplanError
from opplan.graph import parse_model, parse_model_text

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
MODELS = ["uniform_pipeline_8", "inception_dag", "uniform_moe_8"]
WORK = Path(tempfile.mkdtemp(prefix="opplan-fuzz-"))
EXAMPLES = int(os.environ.get("OPPLAN_FUZZ_EXAMPLES", "40"))     # more for a long hunt
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# values a hostile user puts anywhere
HOSTILE = st.one_of(
    st.sampled_from([None, True, 0, -1, 4.7, 0.9, 1e308, -1e308, 10**400, 2**63, "", "1:30", "yes", "a\nb",
                     "\x1b[2J", "\u202e", "x" * 10_000, [], {}, [[[[[[1]]]]]], {"a": {"b": {"c": 1}}},
                     "![x](http://127.0.0.1:9/)", "(" * 300 + "0F0" + ")" * 300, float("nan")]),
    st.integers(), st.floats(allow_nan=False), st.text(max_size=40),
    st.lists(st.integers(), max_size=4), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location in a JSON document (bounded: the first few items of each list)."""
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths(value, prefix + (key,))
    elif isinstance(data, list):
        for k, value in enumerate(data[:3]):
            out += paths(value, prefix + (k,))
    return out


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with a few locations replaced, deleted, or given an extra key."""
    data = json.loads(json.dumps(document))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(data)))
        if not where:
            continue
        parent = data
        try:
            for key in where[:-1]:
                parent = parent[key]
            action = draw(st.sampled_from(["replace", "replace", "delete", "extra"]))
            last = where[-1]
            if action == "replace":
                parent[last] = copy.deepcopy(draw(HOSTILE))     # the constants must not change
            elif action == "delete":
                del parent[last]
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = copy.deepcopy(draw(HOSTILE))
        except (KeyError, IndexError, TypeError):
            continue      # an earlier mutation changed the shape: skip this one
    return data


def dump(data: Any) -> str:
    """JSON as a hostile writer might produce it (NaN, 400-digit integers and all)."""
    return json.dumps(data, allow_nan=True)


def run_cli(*args: Any) -> tuple[int, str, str]:
    from opplan.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as stop:
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def assert_clean(code: int, err: str) -> None:
    event(f"exit {code}")       # --hypothesis-show-statistics: how often each outcome was reached
    assert code in (0, 1, 2), (code, err)
    lines = err.strip().splitlines()
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("opplan: error: "), err[:2000]
        assert len(lines[0]) < 500 and not any(ord(c) < 32 for c in lines[0]), lines[0][:600]


def write(name: str, text: str) -> Path:
    path = WORK / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


@pytest.mark.parametrize("name", MODELS)
@FUZZ
@given(data=st.data())
def test_mutated_models_through_info_and_baseline(name, data):
    document = data.draw(mutated(sample(name)))
    path = write(f"{name}-fuzz.json", dump(document))
    assert_clean(*run_cli("info", path)[::2])
    assert_clean(*run_cli("baseline", "1f1b", path, "--devices", 4, "-m", 8)[::2])


@FUZZ
@given(data=st.data())
def test_the_loader_never_accepts_what_the_schema_refuses(data):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "opplan/schemas/model.schema.json").read_text())
    document = data.draw(mutated(sample(data.draw(st.sampled_from(MODELS)))))
    if any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(document)):
        return      # not JSON: the schema has nothing to say about it
    try:
        parse_model(document, "fuzz.json")
        accepted = True
    except OpplanError as error:
        assert "\n" not in str(error)
        accepted = False
    if accepted:
        errors = [e.message[:200] for e in jsonschema.Draft202012Validator(schema).iter_errors(document)]
        assert not errors, errors


def _leaves(data: Any):
    if isinstance(data, dict):
        for value in data.values():
            yield from _leaves(value)
    elif isinstance(data, list):
        for value in data:
            yield from _leaves(value)
    else:
        yield data


@FUZZ
@given(data=st.data())
def test_damaged_model_text_is_one_line(data):
    text = (SAMPLES / f"{data.draw(st.sampled_from(MODELS))}.json").read_text()
    cut = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.text(max_size=20))
    damaged = data.draw(st.sampled_from([text[:cut], text[:cut] + junk + text[cut:], text[cut:],
                                         text.replace('"', "", data.draw(st.integers(0, 5)))]))
    try:
        parse_model_text(damaged, "damaged.json")
    except OpplanError as error:
        assert "\n" not in str(error) and len(str(error)) < 500


@pytest.fixture(scope="module")
def plan_document() -> dict:
    path = WORK / "plan.json"
    code, _, err = run_cli("baseline", "zb-h1", "--stages", 4, "-m", 8, "--out", path)
    assert code == 0, err
    return json.loads(path.read_text())


@FUZZ
@given(data=st.data())
def test_mutated_plan_files_through_validate(plan_document, data):
    path = write("plan-fuzz.json", dump(data.draw(mutated(plan_document))))
    assert_clean(*run_cli("validate", path)[::2])


ORDER = "\n".join(f"dev{d}: " + " ".join(f"{d}F{m}" for m in range(4)) + " "
                  + " ".join(f"{d}BW{m}" for m in range(4)) for d in range(4))


@FUZZ
@given(data=st.data())
def test_mutated_order_files_through_simulate(data):
    tokens = ORDER.replace("\n", " \n ").split(" ")
    for _ in range(data.draw(st.integers(0, 4))):
        k = data.draw(st.integers(0, len(tokens) - 1))
        if data.draw(st.booleans()):        # swap two entries: an order that may deadlock or break a rule
            j = data.draw(st.integers(0, len(tokens) - 1))
            tokens[k], tokens[j] = tokens[j], tokens[k]
            continue
        tokens[k] = data.draw(st.one_of(st.text(max_size=12), st.sampled_from(
            ["(0F0;1F0)", "((0F0))", "0F99", "9F0", "0>1F0", "dev9:", "\n", "0BW0", "(" * 200 + ")" * 200,
             "\x1b[2J", "#", ":", "0F-1", "0F" + "9" * 400])))
    path = write("order-fuzz.txt", " ".join(tokens))
    assert_clean(*run_cli("simulate", "--stages", 4, "-m", 4, "--order", path)[::2])
