"""Cancel from the page (issue 12.4, page side): pressing Cancel shows "cancelling…" until the
worker stops, and the stop comes within 2 s on a model graph with a long time limit; the progress
chart carries the incumbent on to the present."""
from __future__ import annotations

import json
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from opplan.viz import progress_figure

ROOT = Path(__file__).resolve().parents[1]


def cancel_after(started, seconds: float | None = None) -> None:
    """Press Cancel on DeepSeek (8 devices, 16 micro-batches, 120 s limit) once ``started(job)``
    holds, and check the page says "cancelling…", the stop comes within 2 s and the result says so."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).switch_page("views/3_Plan.py").run()
    store = at.session_state["opplan_store"]
    at.switch_page("views/1_Model.py").run()
    at.selectbox(key="w:model_label").select("deepseek_v3_moe").run()
    at.switch_page("views/3_Plan.py").run()
    at.number_input(key="w:time_limit").set_value(120.0).run()
    assert store["devices"] == 8
    at.button(key="plan_run").click().run()
    job = at.session_state["plan_job"]
    began = time.monotonic()
    while not started(job) and time.monotonic() - began < 60:
        time.sleep(0.1)
    assert not job.done, "the solve is still running when Cancel is pressed"
    at.run()
    pressed = time.monotonic()     # the click's callback sets the stop flag at the start of this run
    at.button(key="plan_job:cancel").click().run()
    if not job.done:
        texts = [p.proto.text for p in at.get("progress")]
        assert texts and texts[0].startswith("cancelling…"), texts
        assert at.button(key="plan_job:cancel").label == "Cancelling…" and at.button(key="plan_job:cancel").disabled
    while not job.done and time.monotonic() - pressed < 30:
        time.sleep(0.05)
    latency = job.finished - pressed if job.finished else float("inf")
    print(f"the solve stopped {latency:.2f} s after Cancel (target 2 s; bench/cancel.py times it per engine)")
    # honoured at once, not after the 120 s limit or the 27 s the issue measured; the 2 s target is
    # not asserted here, where other test processes share the 2 cores
    assert latency < 10.0, f"the solve stopped {latency:.1f} s after Cancel"
    at.run()
    assert not at.exception
    assert any("Cancelled" in c.value for c in at.caption), "the plan found before the stop is shown as such"


def test_cancel_while_the_solver_runs_shows_cancelling_and_stops_within_two_seconds():
    cancel_after(lambda job: any(line.startswith("placement v") for line in job.log))


def test_cancel_during_the_warm_starts_stops_within_two_seconds():
    began = time.monotonic()
    cancel_after(lambda job: time.monotonic() - began > 2.0)


def test_progress_chart_marks_every_report_and_runs_on_to_now():
    history = [(0.5, 100.0, 50.0), (1.0, 90.0, 60.0), (2.0, 80.0, 61.0)]
    spec = json.loads(progress_figure(history, now=5.0).to_json())
    assert len(spec["data"][0]["x"]) == 3 and "markers" in spec["data"][0]["mode"]
    tail = spec["data"][2]
    assert tail["x"] == [2.0, 5.0] and tail["y"] == [80.0, 80.0]


def slow_to_stop(job):
    """A worker's work that takes 3 s to stop once cancelled (module level: workers import it by name)."""
    job.cancel_event.wait()
    time.sleep(3.0)


def test_page_says_cancelling_until_the_worker_has_stopped():
    """The page side alone, with a worker that takes 3 s to stop after the request."""
    from opplan.ui import jobs

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90).switch_page("views/3_Plan.py").run()

    config = {"devices": 8}
    at.session_state["plan_job"] = jobs.start_job("solve", config, {"time_limit": 10.0}, slow_to_stop)
    at.run()
    assert at.get("progress")[0].proto.text.startswith("planner running")
    at.button(key="plan_job:cancel").click().run()
    assert not at.exception
    assert at.get("progress")[0].proto.text.startswith("cancelling… "), at.get("progress")[0].proto.text
    button = at.button(key="plan_job:cancel")
    assert button.label == "Cancelling…" and button.disabled
