"""Model: pick a sample, upload JSON/YAML, or edit operators and edges in tables; see the DAG."""
from __future__ import annotations

import json

import streamlit as st

from opplan import dashboard as db
from opplan.errors import OpplanError
from opplan.graph import uniform_chain
from opplan.viz import dag_figure

st.set_page_config(page_title="opplan · model", page_icon="🧩", layout="wide")
st.title("Model")
values = db.store()

# --- source: sample or uniform pipeline ------------------------------------------------------------
choices = [db.UNIFORM] + [s for s in db.sample_models() if s != "uniform_pipeline_8"]
if values.get("model_label") not in choices:
    choices.append(values["model_label"])
left, right = st.columns([1, 1])
label = db.widget(left.selectbox, "model_label", "Current model", options=choices,
                  help="A sample, the uniform pipeline of the published formulas, or your upload / edit.")
if label != values.get("_loaded_label"):
    try:
        db.select_model(label)
    except OpplanError as error:
        st.error(str(error))

# --- upload ------------------------------------------------------------------------------------------
upload = right.file_uploader("Upload a model (JSON or YAML, format opplan-model/1)", type=["json", "yaml", "yml"],
                             key="model_upload")
if upload is not None and upload.file_id != values.get("_upload_id"):
    values["_upload_id"] = upload.file_id
    values["_upload_error"] = None
    try:
        text = upload.getvalue().decode("utf-8")
        model = db.load_model_text(text, upload.name)
        db.set_model(json.dumps(model.to_dict()), f"uploaded: {upload.name}")
        st.rerun()  # the selectbox above must list the new model
    except UnicodeDecodeError:
        values["_upload_error"] = f"{upload.name}: not a text file (not UTF-8)"
    except OpplanError as error:
        message = str(error)
        values["_upload_error"] = message if message.startswith(upload.name) else f"{upload.name}: {message}"
if upload is not None and values.get("_upload_error"):
    right.error(f"{values['_upload_error']} — the previous model ({values.get('model_label')}) is still in use.")

model = db.current_model()

# --- uniform pipeline -------------------------------------------------------------------------------
if model is None:
    st.markdown("The **uniform pipeline**: one identical stage per device, with the per-stage times below "
                "(any unit; F = 1 reads as “in forward passes”) and one activation unit per micro-batch per "
                "stage. It reproduces the published bubble and memory formulas.")
    c = st.columns(4)
    db.widget(c[0].number_input, "f", "F (forward)", min_value=0.0, step=0.5)
    db.widget(c[1].number_input, "b", "B (input gradient)", min_value=0.0, step=0.5)
    db.widget(c[2].number_input, "w", "W (weight gradient)", min_value=0.0, step=0.5)
    db.widget(c[3].number_input, "fb", "F&B overlapped (0 = F+B+W)", min_value=0.0, step=0.5,
              help="Time of one forward overlapped with one full backward (DualPipe's F&B).")
    chain = uniform_chain(int(values["devices"]), values["f"], values["b"], values["w"])
    st.plotly_chart(dag_figure(chain), key="model_dag")
    if st.button("Edit as a model graph", help="Copies this chain into editable operator and edge tables."):
        db.set_model(json.dumps(chain.to_dict()), f"edited: {chain.name}")
        st.rerun()
    st.stop()

# --- a model graph -------------------------------------------------------------------------------
ops_df, edges_df = db.model_tables(model)
total_params = model.total_param_bytes
comm = sum(op.kind == "communication" for op in model.operators)
st.markdown(f"**{model.name}** — {len(model.operators)} operators ({comm} communication), {len(model.edges)} edges, "
            f"{total_params / 1e9:.3g} GB of parameters and optimizer state"
            + (f", costed for {model.accelerator}" if model.accelerator else "") + ".")
if model.description:
    st.caption(model.description)

st.plotly_chart(dag_figure(model), key="model_dag")

st.subheader("Edit operators and edges")
st.caption("Costs per micro-batch: `time` in ms, `flops` for compute, `bytes` for communication. "
           "Add rows at the bottom of a table; select rows and press Delete to remove them. "
           "Apply checks the whole model and names the first problem it finds.")
version = db.model_version()  # a new model starts fresh editors; the same model keeps its edits
ops_edit = st.data_editor(
    ops_df, key=f"ops:{version}", num_rows="dynamic", width="stretch", height=min(420, 38 + 35 * len(ops_df)),
    column_config={
        "kind": st.column_config.SelectboxColumn("kind", options=["compute", "communication"], required=True),
        "cost unit": st.column_config.SelectboxColumn("cost unit", options=["time", "flops", "bytes"], required=True),
        "forward": st.column_config.NumberColumn("forward", format="compact"),
        "input_grad": st.column_config.NumberColumn("input_grad", format="compact"),
        "weight_grad": st.column_config.NumberColumn("weight_grad", format="compact"),
        "activation_bytes": st.column_config.NumberColumn("activation_bytes", format="compact"),
        "param_bytes": st.column_config.NumberColumn("param_bytes", format="compact"),
    })
edges_edit = st.data_editor(edges_df, key=f"edges:{version}", num_rows="dynamic", width="stretch",
                            height=min(320, 38 + 35 * max(1, len(edges_df))),
                            column_config={"bytes": st.column_config.NumberColumn("bytes", format="compact")})
a, b = st.columns([1, 4])
if a.button("Apply edits", type="primary"):
    try:
        edited = db.model_from_tables(model, ops_edit, edges_edit)
        name = values.get("model_label", model.name)
        db.set_model(json.dumps(edited.to_dict()), name if name.startswith("edited: ") else f"edited: {model.name}")
        st.rerun()
    except OpplanError as error:
        b.error(f"{error} — the model was not changed; your edits are still in the tables.")

st.download_button("Download this model (JSON)", data=json.dumps(model.to_dict(), indent=1),
                   file_name=f"{model.name}.json", mime="application/json", on_click="ignore")
