"""The dashboard shows user text as text and holds a bounded cache; list scheduling is linear in
the micro-batches and stops when asked."""
from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from opplan.planner.heuristic import RULES, list_schedule
from opplan.problem import uniform_problem
from opplan.ui import models
from opplan.ui.text import plain

ROOT = Path(__file__).resolve().parents[1]
HOSTILE_NAME = "![x](http://127.0.0.1:9/pixel.png) :red[red] $x^2$ <b>bold</b> **strong**"


def hostile_model(name: str = HOSTILE_NAME, description: str = "[click](javascript:alert(1)) # heading") -> bytes:
    return json.dumps({"format": "opplan-model/1", "name": name, "description": description, "operators": [
        {"id": k, "time": {"forward": 1, "input_grad": 1, "weight_grad": 1}, "activation_bytes": 1e8}
        for k in ("a", "b*c_[d](e)")], "edges": [{"src": "a", "dst": "b*c_[d](e)"}]}).encode()


# --- 7. markdown --------------------------------------------------------------------------------------
MARKUP = set("\\`*_{}[]()<>#+!|~$:")


@pytest.mark.parametrize("text", [HOSTILE_NAME, "- a list", "1. numbered", "# heading", "a\nb", "`code`",
                                  "\\![x](y)", "llama2_7b-like.v2", "= setext"])
def test_plain_text_escapes_every_markup_character_and_reads_back(text):
    escaped = plain(text)
    assert "\n" not in escaped
    # CommonMark: a backslash before ASCII punctuation shows that character literally
    assert re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", escaped) == text.replace("\n", " ")
    unescaped = re.sub(r"\\[!-/:-@\[-`{-~]", "", escaped)
    assert not set(unescaped) & MARKUP, unescaped
    assert not re.match(r"\s*([-=]|\d+\.)", unescaped), "no list, heading or rule at the start"


def test_plain_text_is_cut_long():
    assert len(plain("x" * 10**6)) < 2100


def test_model_page_renders_names_and_errors_as_text():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).switch_page("views/1_Model.py").run()
    at.file_uploader(key="model_upload").set_value(("![a](http://x/).json", hostile_model(),
                                                    "application/json")).run()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    user_texts = [t for t in texts if "pixel" in t or "javascript" in t]
    assert len(user_texts) == 2, texts          # the model's name (summary) and its description
    assert plain(HOSTILE_NAME) in user_texts[0] and HOSTILE_NAME not in user_texts[0]
    assert user_texts[1] == plain("[click](javascript:alert(1)) # heading")
    bad = hostile_model(description="x" * 3000)
    at.file_uploader(key="model_upload").set_value(("![b](http://y/).json", bad, "application/json")).run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "2000" in errors[0] and "![b]" not in errors[0], errors


# --- 8. the parse cache -----------------------------------------------------------------------------------
def test_parse_cache_is_bounded_in_bytes_and_safe_across_threads(monkeypatch):
    monkeypatch.setattr(models, "CACHE_BYTES", 200_000)
    monkeypatch.setattr(models, "_PARSED", type(models._PARSED)())
    base = json.loads(hostile_model(name="m", description="d"))
    texts = []
    for k in range(12):
        data = dict(base, name=f"m{k}", operators=[dict(base["operators"][0], id=f"op{j}") for j in range(400)],
                    edges=[])
        texts.append(json.dumps(data))
    assert len(texts[0]) > 40_000
    errors: list[BaseException] = []

    def load(offset: int) -> None:
        try:
            for k in range(len(texts)):
                text = texts[(k + offset) % len(texts)]
                assert models.load_model_text(text, "m").name == json.loads(text)["name"]
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=load, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    count, size = models.cache_size()
    assert 0 < count <= models.CACHE_ENTRIES and size <= 200_000


def test_upload_over_the_size_limit_is_refused_before_parsing():
    from opplan.limits import MAX_FILE_BYTES

    values: dict = {}
    began = time.perf_counter()
    assert not models.upload_model(values, "big.json", "id", b" " * (MAX_FILE_BYTES + 1))
    assert "20 MB limit" in values["_upload_error"] and time.perf_counter() - began < 0.5


# --- 3. list scheduling ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cap", [None, 3])
def test_list_scheduling_is_linear_in_microbatches(cap):
    times = {}
    for m in (250, 1000):
        problem = uniform_problem(4, m, memory_units=cap)
        runs = []
        for _ in range(3):       # the fastest of three: a busy machine adds noise, never speed
            began = time.perf_counter()
            order = list_schedule(problem, "backward-first")
            runs.append(time.perf_counter() - began)
        times[m] = min(runs)
        assert order is not None and sum(len(s) for s in order.sequences.values()) == 3 * 4 * m
    print(f"\nlist scheduling P=4 cap={cap}: m=250 {times[250]:.2f} s, m=1000 {times[1000]:.2f} s")
    # linear: 4x the tasks, about 4x the time (quadratic was 16x: 0.65 s -> 9.4 s before); a ratio, not
    # a time, so a loaded machine slows both sides alike
    assert times[1000] < 10 * max(times[250], 0.05), times


def test_list_scheduling_stops_when_asked():
    problem = uniform_problem(8, 2000)
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    assert list_schedule(problem, "critical-path", should_stop=stop) is None
    assert len(calls) == 4, "asked every 256 steps, stopped at the first yes (step 768 of 48,000)"


@pytest.mark.parametrize("rule", list(RULES))
def test_list_scheduling_orders_are_valid_under_caps(rule):
    from opplan.outputs import Provenance
    from opplan.simulate import make_plan

    for cap in (None, 2, 4):
        problem = uniform_problem(4, 12, memory_units=cap)
        order = list_schedule(problem, rule)
        assert order is not None
        assert make_plan(problem, order, Provenance()).valid
