"""Keep and share (issue 12.10): the scenario saved to one file and loaded back, the main
settings in the URL, and a saved plan loaded back and compared."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from opplan import baselines
from opplan.errors import OpplanError
from opplan.scenario import Scenario
from opplan.ui import caps, models, share
from opplan.ui import config as cfg

ROOT = Path(__file__).resolve().parents[1]
HOME, TIMEOUT = "views/0_Home.py", 90


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def store(at: AppTest) -> dict:
    return at.session_state["opplan_store"]


def fresh() -> dict:
    return dict(cfg.DEFAULTS)


def test_scenario_file_round_trip_keeps_model_cluster_caps_and_options():
    values = fresh()
    models.choose_model(values, "llama2_7b")
    values.update(devices=6, cap_mode=caps.PER_DEVICE, caps_per_device_gb=[70.0] * 6, speeds=[1, 1, 1, 1, 0.5, 0.5],
                  solver="highs", time_limit=30.0, granularity="layer")
    text = share.scenario_json(values)
    again = fresh()
    share.load_scenario(again, text)
    assert again["model_text"] == values["model_text"] and again["model_label"] == "llama2_7b"
    for key in ("devices", "cap_mode", "caps_per_device_gb", "speeds", "solver", "time_limit", "granularity"):
        assert again[key] == values[key], key
    assert caps.resolve_config(again)[0] == caps.resolve_config(values)[0]


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="opplan-plan/1"), "not an opplan scenario"),
    (lambda d: d["settings"].update(devices=0), "setting devices must be a positive whole number"),
    (lambda d: d["settings"].update(colour="red"), "unknown setting 'colour'"),
    (lambda d: d["settings"].update(cap_mode="lots"), "setting cap_mode must be one of"),
    (lambda d: d.update(model={"format": "opplan-model/1", "name": "x", "operators": []}), "no operators"),
])
def test_a_bad_scenario_file_is_one_line_and_changes_nothing(change, message):
    data = json.loads(share.scenario_json(fresh()))
    change(data)
    values = fresh()
    with pytest.raises(OpplanError, match=message) as error:
        share.load_scenario(values, json.dumps(data), "s.json")
    assert "\n" not in str(error.value) and values == fresh()
    with pytest.raises(OpplanError, match="not valid JSON"):
        share.load_scenario(values, "{", "s.json")


def test_link_round_trip_and_bad_parameters_are_named():
    values = fresh()
    models.choose_model(values, "multimodal_vlm")
    values.update(devices=2, cap_mode=caps.ONE_VALUE, cap_value_gb=60.0)
    params = share.query_params(values)
    assert params == {"model": "multimodal_vlm", "devices": "2", "microbatches": "8", "cap": "60"}
    again = fresh()
    assert share.apply_query_params(again, params) == []
    assert caps.resolve_config(again)[0] == caps.resolve_config(values)[0]
    ignored = share.apply_query_params(fresh(), {"model": "gpt9", "devices": "-1", "cap": "lots"})
    assert len(ignored) == 3 and "gpt9" in ignored[0] and "devices" in ignored[1] and "cap" in ignored[2]
    uploaded = dict(values, model_label="uploaded: mine.json")
    assert "model" not in share.query_params(uploaded), "an upload does not fit in a link"


def test_a_saved_plan_loads_back_revalidated_and_says_when_it_does_not_match():
    plan = baselines.run_on(Scenario(4, 8), "zb-h1")
    loaded = share.load_plan_text(json.dumps(plan.to_dict()), "zb.json")
    assert loaded.valid and loaded.makespan == plan.makespan
    assert share.plan_mismatch(loaded, {"devices": 4, "microbatches": 8}) is None
    assert "made for 4 devices and 8 micro-batches" in share.plan_mismatch(loaded, {"devices": 8, "microbatches": 20})
    with pytest.raises(OpplanError, match="not an opplan plan"):
        share.load_plan_text('{"format": "x"}', "x.json")


def test_a_link_opens_the_same_view_and_the_url_follows_the_settings():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update({"model": "llama2_7b", "devices": "2", "cap": "none"})
    at.run()
    no_exceptions(at)
    assert at.selectbox(key="w:model_label").value == "llama2_7b"
    assert at.number_input(key="w:devices").value == 2 and at.selectbox(key="w:cap_mode").value == "no cap"
    at.number_input(key="w:devices").set_value(4).run()
    assert at.query_params["devices"] == "4" and at.query_params["model"] == "llama2_7b"


def test_sidebar_loads_a_scenario_and_compare_loads_a_saved_plan():
    values = fresh()
    models.choose_model(values, "inception_dag")
    values["devices"] = 3
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).switch_page(HOME).run()
    at.file_uploader(key="scenario_upload").set_value(
        ("s.json", share.scenario_json(values).encode(), "application/json")).run()
    no_exceptions(at)
    assert store(at)["model_label"] == "inception_dag" and at.number_input(key="w:devices").value == 3
    at.file_uploader(key="scenario_upload").set_value(("bad.json", b'{"format": 1}', "application/json")).run()
    assert any("not an opplan scenario" in e.value for e in at.sidebar.error) and store(at)["devices"] == 3

    at.switch_page("views/4_Compare.py").run()
    plan = baselines.run_on(Scenario(8, 20), "1f1b")
    at.file_uploader(key="plan_upload").set_value(
        ("mine.json", json.dumps(plan.to_dict()).encode(), "application/json")).run()
    no_exceptions(at)
    assert "saved: mine.json" in at.multiselect(key="w:compare_schedules").value
    assert any("made for 8 devices and 20 micro-batches" in c.value for c in at.caption)
