"""Model: pick a sample, upload JSON/YAML, or edit operators and edges in tables; see the DAG."""
from __future__ import annotations

import json

import streamlit as st

from opplan.errors import OpplanError
from opplan.granularity import GRANULARITIES
from opplan.graph import uniform_chain
from opplan.ui import caps, models
from opplan.ui import components as ui
from opplan.ui import plans as pl
from opplan.ui.state import store, widget
from opplan.ui.text import plain

GRANULARITY_LABELS = {"stage": "stage", "layer": "layer", "operator": "operator (comm on its own stream)"}
st.title("Model")
values = store()

# --- source: sample, uniform pipeline or upload -----------------------------------------------------
left, right = st.columns([1, 1])
ui.model_select(left.selectbox, "Current model",
                help="A sample, the uniform pipeline of the published formulas, or your upload / edit.")
upload = right.file_uploader("Upload a model (JSON or YAML, format opplan-model/1)", type=["json", "yaml", "yml"],
                             key="model_upload")
if upload is not None and models.upload_model(values, upload.name, upload.file_id, upload.getvalue()):
    st.rerun()  # the selectbox above must list the new model
if upload is not None and values.get("_upload_error"):
    right.error(f"{plain(values['_upload_error'])} — the previous model ({plain(values.get('model_label'))}) is still in use.")

with st.expander("Build a model from its hyperparameters", expanded=values.get("model_label", "").startswith("built:")):
    st.caption("A dense transformer, a mixture-of-experts transformer or a two-tower multimodal model, "
               "built by the same code as the sample files; edit the operators in the tables below afterwards.")
    if ui.model_builder():
        st.rerun()

model = models.current_model(values)
placement_plans = pl.placement_choices(values, caps.resolve_config(values)[0])

# --- uniform pipeline -------------------------------------------------------------------------------
if model is None:
    st.markdown("The **uniform pipeline**: one identical stage per device, with the per-stage times below "
                "(any unit; F = 1 reads as “in forward passes”) and one activation unit per micro-batch per "
                "stage. It reproduces the published bubble and memory formulas.")
    c = st.columns(4)
    widget(c[0].number_input, "f", "F (forward)", min_value=0.0, step=0.5)
    widget(c[1].number_input, "b", "B (input gradient)", min_value=0.0, step=0.5)
    widget(c[2].number_input, "w", "W (weight gradient)", min_value=0.0, step=0.5)
    widget(c[3].number_input, "fb", "F&B overlapped (0 = F+B+W)", min_value=0.0, step=0.5,
           help="Time of one forward overlapped with one full backward (DualPipe's F&B).")
    chain = uniform_chain(int(values["devices"]), values["f"], values["b"], values["w"])
    ui.model_graph(chain, placement_plans)
    if st.button("Edit as a model graph", key="edit_uniform", help="Copies this chain into editable operator and edge tables."):
        models.adopt_model(values, models.uniform_as_model(values))
        st.rerun()
    st.stop()

# --- a model graph -------------------------------------------------------------------------------
ops_df, edges_df = models.model_tables(model)
st.markdown(models.model_summary(model))
if model.description:
    st.caption(plain(model.description))
widget(st.radio, "granularity", "Plan at the granularity of", options=list(GRANULARITIES), horizontal=True,
       format_func=GRANULARITY_LABELS.get,
       help="Stage: each stage runs back to back and its all-to-all costs device time. Layer / operator: stages "
            "split into units, and each communication operator runs on the device's communication stream, where "
            "it can overlap another micro-batch's compute (every schedule, baselines included).")

ui.model_graph(model, placement_plans)

st.subheader("Edit operators and edges")
st.caption("Costs per micro-batch: `time` in ms, `flops` for compute, `bytes` for communication. "
           "Add rows at the bottom of a table; select rows and press Delete to remove them. "
           "Apply checks the whole model and names the first problem it finds.")
version = models.model_version(values)  # a new model starts fresh editors; the same model keeps its edits
# "%.4g", not "compact": compact writes 1e9 as "1B", which reads as one byte
number_format = {c: st.column_config.NumberColumn(c, format="%.4g")
           for c in ("forward", "input_grad", "weight_grad", "activation_bytes", "param_bytes")}
ops_edit = st.data_editor(
    ops_df, key=f"ops:{version}", num_rows="dynamic", width="stretch", height=min(420, 38 + 35 * len(ops_df)),
    column_config={
        "kind": st.column_config.SelectboxColumn("kind", options=["compute", "communication"], required=True),
        "cost unit": st.column_config.SelectboxColumn("cost unit", options=["time", "flops", "bytes"], required=True),
        **number_format,
    })
edges_edit = st.data_editor(edges_df, key=f"edges:{version}", num_rows="dynamic", width="stretch",
                            height=min(320, 38 + 35 * max(1, len(edges_df))),
                            column_config={"bytes": st.column_config.NumberColumn("bytes", format="%.4g")})
a, b = st.columns([1, 4])
if a.button("Apply edits", type="primary"):
    try:
        models.adopt_model(values, models.model_from_tables(model, ops_edit, edges_edit))
        st.rerun()
    except OpplanError as error:
        b.error(f"{plain(error)} — the model was not changed; your edits are still in the tables.")

st.download_button("Download this model (JSON)", data=json.dumps(model.to_dict(), indent=1),
                   file_name=f"{model.name}.json", mime="application/json", on_click="ignore")
