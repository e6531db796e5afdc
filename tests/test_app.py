"""The dashboard's page logic through Streamlit's AppTest: every page runs without an exception,
shows its key outputs, keeps state across pages, and turns user mistakes into one-line errors.

AppTest never renders a chart (tests/test_browser.py does that in a real browser); here we read the
Plotly spec each chart would draw.
"""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from opplan.errors import OpplanError
from opplan.graph import parse_model_text
from opplan.layout import CONTIGUOUS
from opplan.ui.config import DEFAULTS
from opplan.ui.jobs import Job
from opplan.ui.models import model_from_tables, model_tables
from opplan.ui.plans import baseline_plan
from opplan.ui.tables import figure_png
from opplan.ui.text import plain

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 90
HOME = "views/0_Home.py"   # app.py is the navigation; Home is its default page
TINY_YAML = b"""
format: opplan-model/1
name: tiny
operators:
  - {id: a, time: {forward: 1, input_grad: 1, weight_grad: 1}, activation_bytes: 1.0e+8, param_bytes: 1.0e+9}
  - {id: b, time: {forward: 2, input_grad: 2, weight_grad: 1}, activation_bytes: 1.0e+8, param_bytes: 1.0e+9}
  - {id: c, time: {forward: 1, input_grad: 1, weight_grad: 1}, activation_bytes: 1.0e+8, param_bytes: 1.0e+9}
  - {id: d, time: {forward: 1, input_grad: 1, weight_grad: 1}, activation_bytes: 1.0e+8, param_bytes: 1.0e+9}
edges: [{src: a, dst: b, bytes: 1.0e+7}, {src: b, dst: c, bytes: 1.0e+7}, {src: c, dst: d, bytes: 1.0e+7}]
"""
CYCLIC_JSON = json.dumps({"format": "opplan-model/1", "name": "loop", "operators": [
    {"id": "x", "time": {"forward": 1, "input_grad": 1, "weight_grad": 1}},
    {"id": "y", "time": {"forward": 1, "input_grad": 1, "weight_grad": 1}}],
    "edges": [{"src": "x", "dst": "y"}, {"src": "y", "dst": "x"}]}).encode()


def page(name: str) -> AppTest:
    """An app session that opens on page ``name`` (pages are reached from the main script, so
    ``switch_page`` works as in the browser)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    return at if name == HOME else at.switch_page(name)


def no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def store(at: AppTest) -> dict:
    return at.session_state["opplan_store"]


def wait_for_job(at: AppTest, slot: str, limit: float = 120.0) -> Job:
    """Rerun the page until the background job in ``slot`` ends (AppTest does not run fragments)."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        job = at.session_state[slot]
        if job.done:
            at.run()
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {slot} still running after {limit} s")


def decode(value):
    """Plotly JSON keeps numeric arrays as base64 typed arrays ({"dtype", "bdata"})."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).tolist()
    return value


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def gantt_bars(spec: dict) -> list[dict]:
    """Bar traces of a Gantt spec that draw tasks (not the legend stubs or idle stretches)."""
    return [t for t in spec["data"] if t.get("type") == "bar" and t.get("base") is not None
            and not str(t.get("name", "")).startswith("idle")]


# --- Home ---------------------------------------------------------------------------------------
def test_home_demo_plans_and_compares_with_1f1b_and_dualpipe():
    at = page(HOME).run()
    no_exceptions(at)
    assert at.info, "the page invites the user to press Plan"
    at.number_input(key="w:time_limit").set_value(5.0)
    at.button(key="home_plan").click().run()
    job = wait_for_job(at, "home_job")
    no_exceptions(at)
    assert job.error is None, job.crash or job.error
    assert any("idle time" in s.value for s in at.success), [s.value for s in at.success]
    labels = [m.label for m in at.metric]
    for needle in ("Iteration", "Bubble ratio", "vs 1F1B", "vs DualPipe", "Peak (act. units)"):
        assert any(needle in label for label in labels), labels
    assert all(any(ch.isdigit() for ch in m.value) for m in at.metric)
    table = at.table[0].value
    assert {"opplan", "1F1B", "DualPipe"} <= set(table.index)
    opplan, dualpipe = job.result, baseline_plan(job.config, "dualpipe")[0]
    assert opplan.valid
    assert sum(opplan.metrics.bubble) <= sum(dualpipe.metrics.bubble) + 1e-9
    spec = chart_specs(at)[0]
    axes = {t.get("yaxis", "y") for t in gantt_bars(spec)}
    assert len(axes) == 3, "one Gantt panel per schedule"
    assert spec["layout"]["xaxis3"]["title"]["text"] == "time (F = 1)"
    assert spec["layout"]["xaxis"].get("matches") or spec["layout"]["xaxis2"].get("matches") == "x3"
    downloads = [d.proto.label for d in at.get("download_button")]
    assert "Gantt chart (HTML)" in downloads and "Metrics (CSV)" in downloads, "exports on Home too (12.11)"


def test_home_without_a_cap_plans_and_names_the_model_it_solved():
    """Issue 12.3 (no cap → no traceback; table and Gantt drawn) and 12.5 (the "settings changed"
    caption names the model on screen, not the one just selected)."""
    at = page(HOME).run()
    at.selectbox(key="w:cap_mode").select("no cap").run()
    at.number_input(key="w:time_limit").set_value(3.0).run()
    at.button(key="home_plan").click().run()
    wait_for_job(at, "home_job")
    no_exceptions(at)
    table = at.table[0].value
    assert {"opplan", "1F1B", "DualPipe"} <= set(table.index)
    assert len(gantt_bars(chart_specs(at)[0])) > 0
    at.selectbox(key="w:model_label").select("llama2_7b").run()
    no_exceptions(at)
    caption = next(c.value for c in at.caption if c.value.startswith("Settings changed"))
    assert "Showing: uniform pipeline" in caption and "llama" not in caption


def test_picking_a_sample_on_home_applies_its_scenario():
    """Issue 12.8: Inception suggests 2 devices and 8 micro-batches on Ascend 910B; the widgets follow."""
    at = page(HOME).run()
    at.selectbox(key="w:model_label").select("inception_dag").run()
    no_exceptions(at)
    assert at.number_input(key="w:devices").value == 2 and at.number_input(key="w:microbatches").value == 8
    assert any(plain("inception_dag suggests 2 devices, 8 micro-batches") in c.value for c in at.caption)
    at.switch_page("views/2_Cluster.py").run()
    assert at.number_input(key="w:devices").value == 2


# --- Model --------------------------------------------------------------------------------------
def test_model_page_sample_upload_and_bad_upload_keeps_previous_model():
    at = page("views/1_Model.py").run()
    no_exceptions(at)
    assert len(at.get("graphviz_chart")) == 1, "the uniform chain is drawn"
    at.selectbox(key="w:model_label").select("llama2_7b").run()
    no_exceptions(at)
    assert "llama2-7b-like" in " ".join(m.value for m in at.markdown)
    assert len(at.get("graphviz_chart")) == 1 and at.dataframe, "the graph and its tables"
    at.radio(key="w:dag_colour").set_value("1f1b").run()
    no_exceptions(at)
    assert "fillcolor=\"#8FB4DA\"" in at.get("graphviz_chart")[0].proto.spec, "coloured by 1F1B's devices"

    at.file_uploader(key="model_upload").set_value(("tiny.yaml", TINY_YAML, "application/x-yaml")).run()
    at.run()
    no_exceptions(at)
    assert store(at)["model_label"] == "uploaded: tiny.yaml"
    assert parse_model_text(store(at)["model_text"]).name == "tiny"
    before = store(at)["model_text"]

    at.file_uploader(key="model_upload").set_value(("loop.json", CYCLIC_JSON, "application/json")).run()
    no_exceptions(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "cycle" in errors[0] and "\n" not in errors[0], errors
    assert "still in use" in errors[0]
    assert store(at)["model_text"] == before, "the previous model stays"

    at.file_uploader(key="model_upload").set_value(("junk.json", b"{not json", "application/json")).run()
    assert "junk.json" in at.error[0].value and store(at)["model_text"] == before


def test_model_tables_round_trip_and_name_the_problem():
    model = parse_model_text(TINY_YAML.decode(), "tiny")
    ops, edges = model_tables(model)
    assert model_from_tables(model, ops, edges).to_dict() == model.to_dict()
    ops.loc[1, "forward"] = -3
    with pytest.raises(OpplanError, match=r"operator 'b' field time\.forward must be non-negative"):
        model_from_tables(model, ops, edges)
    ops, edges = model_tables(model)
    edges.loc[0, "dst"] = "nowhere"
    with pytest.raises(OpplanError, match="unknown dst operator 'nowhere'"):
        model_from_tables(model, ops, edges)
    edges.loc[0, "dst"] = None      # issue 12.9: a missing required cell is named, not "unknown dst operator"
    with pytest.raises(OpplanError, match="edge table row 1: dst is empty"):
        model_from_tables(model, ops, edges)


def test_edit_as_a_model_graph_keeps_one_activation_unit_meaningful():
    """Issue 12.6: one activation unit becomes 1 GB (not 1 byte), the caps carry over, and the
    editor writes bytes as plain numbers (compact format showed 1e9 as "1B")."""
    at = page("views/1_Model.py").run()
    at.button(key="edit_uniform").click().run()
    no_exceptions(at)
    model = parse_model_text(store(at)["model_text"])
    assert store(at)["model_label"] == "edited: uniform-8"
    assert {op.activation_bytes for op in model.operators} == {1e9}
    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["activation_bytes"]["type_config"]["format"] == "%.4g"
    at.switch_page(HOME).run()
    no_exceptions(at)
    caption = " ".join(c.value for c in at.caption)
    assert "Memory cap: DualPipe's peak, 9.00 GB per device." in caption, caption


def test_model_builder_builds_a_dense_transformer_and_names_a_bad_hyperparameter():
    """Issue 12.9: a dense transformer from a few numbers, the same graph the builders package makes;
    a bad hyperparameter is one line and the model stays."""
    from opplan.builders import build_model

    at = page("views/1_Model.py").run()
    at.number_input(key="w:build:dense_transformer:layers").set_value(4).run()
    at.button(key="build_model").click().run()
    no_exceptions(at)
    assert store(at)["model_label"] == "built: dense-4l-4096h"
    assert parse_model_text(store(at)["model_text"]).to_dict() == build_model("dense_transformer", layers=4).to_dict()
    assert at.selectbox(key="w:model_label").value == "built: dense-4l-4096h"
    before = store(at)["model_text"]
    at.number_input(key="w:build:dense_transformer:heads").set_value(7).run()
    at.button(key="build_model").click().run()
    no_exceptions(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "multiple of heads" in errors[0] and store(at)["model_text"] == before
    at.selectbox(key="w:build_family").select("MoE transformer").run()
    at.number_input(key="w:build:moe_transformer:layers").set_value(2).run()
    at.number_input(key="w:build:moe_transformer:experts").set_value(32).run()
    at.number_input(key="w:build:moe_transformer:expert_parallel").set_value(8).run()
    at.button(key="build_model").click().run()
    no_exceptions(at)
    model = parse_model_text(store(at)["model_text"])
    assert any(op.kind == "communication" for op in model.operators), "dispatch and combine all-to-all"


# --- Cluster ------------------------------------------------------------------------------------
def test_cluster_page_caps_and_state_survive_page_switch():
    at = page("views/2_Cluster.py").run()
    no_exceptions(at)
    frames = at.dataframe
    assert frames, "the baselines' memory needs are listed"
    at.number_input(key="w:devices").set_value(6).run()
    at.radio(key="w:cap_mode").set_value("one value for every device").run()
    at.number_input(key="w:cap_value").set_value(3.0).run()
    no_exceptions(at)
    summary = " ".join(m.value for m in at.markdown)
    assert "6 devices" in summary and "memory cap 3 activation units" in summary
    fits = at.table[-1].value  # per expert schedule: peak memory, fits the cap, note
    assert fits.loc["1F1B", "note"] == "over the cap" and fits.loc["1F1B", "peak memory (activation units)"] == 6
    at.switch_page("views/4_Compare.py").run()
    no_exceptions(at)
    assert "6 devices" in " ".join(m.value for m in at.markdown), "state survives switching pages"
    assert any("Over the memory cap" in w.value for w in at.warning), "1F1B needs 6 units, the cap is 3"


def test_home_to_cluster_keeps_the_default_cluster():
    """Issue 12.1: a new session that opens Cluster after Home still has 8 devices and 20 micro-batches."""
    at = page(HOME).run()
    at.switch_page("views/2_Cluster.py").run()
    no_exceptions(at)
    assert at.number_input(key="w:devices").value == 8
    assert at.number_input(key="w:microbatches").value == 20
    assert not any("even number" in e.value for e in at.error)


def test_cluster_devices_survive_a_visit_to_home():
    """Issue 12.1: Cluster (set 4 devices) → Home → Cluster shows 4 devices on every page."""
    at = page("views/2_Cluster.py").run()
    at.number_input(key="w:devices").set_value(4).run()
    at.switch_page(HOME).run()
    no_exceptions(at)
    assert at.number_input(key="w:devices").value == 4
    at.switch_page("views/2_Cluster.py").run()
    assert at.number_input(key="w:devices").value == 4 and store(at)["devices"] == 4


def test_an_uploaded_model_survives_home_and_comes_back_on_model():
    """Issue 12.2: Model → upload → Home plans the upload, and Model still shows it."""
    at = page("views/1_Model.py").run()
    at.file_uploader(key="model_upload").set_value(("tiny.yaml", TINY_YAML, "application/x-yaml")).run()
    at.run()
    at.switch_page(HOME).run()
    no_exceptions(at)
    assert at.selectbox(key="w:model_label").value == "uploaded: tiny.yaml"
    assert parse_model_text(store(at)["model_text"]).name == "tiny"
    at.switch_page("views/1_Model.py").run()
    no_exceptions(at)
    assert at.selectbox(key="w:model_label").value == "uploaded: tiny.yaml"
    assert "tiny" in " ".join(m.value for m in at.markdown)


# --- Plan ---------------------------------------------------------------------------------------
def test_plan_page_runs_the_planner_and_reports_solver_status_and_gap():
    at = page("views/3_Plan.py").run()
    no_exceptions(at)
    assert at.info
    at.number_input(key="w:time_limit").set_value(3.0)
    at.selectbox(key="w:solver").select("highs")
    at.button(key="plan_run").click().run()
    job = wait_for_job(at, "plan_job")
    no_exceptions(at)
    assert job.error is None, job.crash or job.error
    text = " ".join(m.value for m in at.markdown)
    assert "Solver:" in text and "gap" in text
    assert job.result.provenance.solver in ("highs", "none"), job.result.provenance
    assert [m.label.split(" (")[0] for m in at.metric][:2] == ["Iteration time", "Bubble ratio"]
    assert len(at.main.get("download_button")) == 6     # plan, Gantt HTML/PNG, metrics, PyTorch CSV, Chrome trace
    assert any(gantt_bars(spec) for spec in chart_specs(at))
    at.switch_page("views/4_Compare.py").run()
    no_exceptions(at)
    assert "opplan" in at.multiselect(key="w:compare_schedules").value, "the new plan joins the comparison"


def test_plan_page_shows_an_infeasible_cap_as_one_line():
    at = page("views/3_Plan.py")
    at.session_state["opplan_store"] = dict(DEFAULTS, cap_mode="one value for every device", cap_value=0.5,
                                            time_limit=2.0)
    at.run()
    at.button(key="plan_run").click().run()
    job = wait_for_job(at, "plan_job")
    no_exceptions(at)
    assert job.crash is None, job.crash
    assert at.error and "\n" not in at.error[0].value and "cap" in at.error[0].value


# --- Compare ------------------------------------------------------------------------------------
def test_compare_page_shows_gantt_memory_bubbles_and_pareto():
    at = page("views/4_Compare.py").run()
    no_exceptions(at)
    specs = chart_specs(at)
    assert len(specs) == 4  # Gantt, bubbles, memory, Pareto
    gantt, _, memory, pareto = specs
    assert {t.get("yaxis", "y") for t in gantt_bars(gantt)} == {"y", "y2", "y3"}
    assert any(t["name"] == "memory cap" for t in memory["data"])
    assert {t["name"] for t in pareto["data"]} >= {"1F1B", "DualPipe", "ZB-H1"}
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 3
    assert len(at.main.get("download_button")) == 6
    buttons = {b.proto.label: b.proto for b in at.main.get("download_button")}
    assert {"PyTorch schedule (CSV)", "Chrome trace (JSON)"} <= set(buttons)
    at.selectbox(key="compare_export:which").select("dualpipe").run()     # a layout PyTorch's runtime cannot hold
    torch_csv = next(b.proto for b in at.main.get("download_button") if b.proto.label == "PyTorch schedule (CSV)")
    assert torch_csv.disabled and "two devices" in torch_csv.help


def test_compare_page_explains_a_schedule_that_does_not_apply():
    at = page("views/4_Compare.py")
    at.session_state["opplan_store"] = dict(DEFAULTS, devices=3)
    at.run()
    no_exceptions(at)
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("DualPipe:") and "even" in w for w in warnings), warnings


def test_compare_page_on_a_model_graph_uses_ms_and_gb():
    at = page("views/4_Compare.py")
    at.session_state["opplan_store"] = dict(DEFAULTS)
    at.run()
    db_store = store(at)
    text = (ROOT / "sample_models" / "multimodal_vlm.json").read_text()
    db_store["model_text"] = json.dumps(parse_model_text(text).to_dict())
    db_store["model_label"] = db_store["_loaded_label"] = "multimodal_vlm"
    at.run()
    no_exceptions(at)
    gantt, _, memory, _ = chart_specs(at)
    assert gantt["layout"]["xaxis3"]["title"]["text"] == "time (ms)"
    assert memory["layout"]["yaxis"]["title"]["text"] == "GB"


def test_png_export_through_kaleido():
    from opplan import baselines
    from opplan.scenario import Scenario
    from opplan.viz import gantt_figure

    plan = baselines.run("1f1b", Scenario(4, 8).problem_for(CONTIGUOUS))
    png = figure_png(gantt_figure([plan]), width=800)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_uniform_moe_reads_in_activation_units_on_cluster_and_compare_and_keeps_each_typed_cap():
    """One memory scale per model: the uniform MoE sample (abstract units) shows its cap input, device
    table, fit table, compare table, memory chart and Pareto axis in activation units; DeepSeek in
    GB; each keeps the cap typed for it when the user switches between them."""
    at = page(HOME).run()
    at.selectbox(key="w:model_label").select("uniform_moe_8").run()
    at.switch_page("views/2_Cluster.py").run()
    at.radio(key="w:cap_mode").set_value("one value for every device").run()
    no_exceptions(at)
    assert at.number_input(key="w:cap_value").label == "Cap (activation units)"
    at.number_input(key="w:cap_value").set_value(8.5).run()
    assert "memory cap 8.5 activation units" in " ".join(m.value for m in at.markdown)
    devices = at.dataframe[0].value if at.dataframe else None
    assert devices is not None and list(devices["memory cap (activation units)"]) == [8.5] * 8
    fits = at.table[-1].value
    assert fits.loc["DualPipe", "peak memory (activation units)"] == 9 and fits.loc["1F1B", "fits the cap"]

    at.switch_page("views/4_Compare.py").run()
    no_exceptions(at)
    assert "peak memory (activation units)" in at.dataframe[0].value.columns
    _, _, memory, pareto = chart_specs(at)
    assert memory["layout"]["yaxis"]["title"]["text"] == "activation units"
    assert {tuple(t["y"]) for t in memory["data"] if t["name"] == "memory cap"} == {(8.5, 8.5)}
    assert pareto["layout"]["xaxis"]["title"]["text"] == "peak memory per device (activation units)"
    assert any("Caps from 8 activation units to 20 activation units" in c.value for c in at.caption)

    at.switch_page("views/0_Home.py").run()
    at.selectbox(key="w:model_label").select("deepseek_v3_moe").run()
    at.switch_page("views/2_Cluster.py").run()
    no_exceptions(at)
    assert at.number_input(key="w:cap_value_gb").label == "Cap (GB)" and at.number_input(key="w:cap_value_gb").value == 80
    at.switch_page("views/0_Home.py").run()
    at.selectbox(key="w:model_label").select("uniform_moe_8").run()
    assert at.number_input(key="w:cap_value").value == 8.5, "the cap typed in units is still there"
