"""Cluster: devices, micro-batches, memory caps, heterogeneous speeds, links, accelerator presets."""
from __future__ import annotations


import pandas as pd
import streamlit as st

from opplan import dashboard as db
from opplan.cluster import ACCELERATORS
from opplan.errors import OpplanError

st.set_page_config(page_title="opplan · cluster", page_icon="🧩", layout="wide")
st.title("Cluster")
values = db.store()
uniform = values.get("model_text") is None
unit = "activation units" if uniform else "GB"
value_key, list_key = db.cap_keys(uniform)

c = st.columns(3)
devices = int(db.widget(c[0].number_input, "devices", "Devices (pipeline size P)", min_value=1, max_value=64, step=1))
db.widget(c[1].number_input, "microbatches", "Micro-batches per iteration (M)", min_value=1, max_value=512, step=1)
accelerators = ["model default"] + list(ACCELERATORS)
acc = db.widget(c[2].selectbox, "accelerator", "Accelerator preset", options=accelerators, disabled=uniform,
                help="Turns FLOP costs into time and sets memory and link bandwidth. "
                     "The uniform pipeline has no hardware (times are in units of F).")

st.subheader("Memory")
m = st.columns([2, 1])
mode = db.widget(m[0].radio, "cap_mode", "Memory cap per device", options=list(db.CAP_MODES), horizontal=True,
                 help="Parameters plus live activations must stay under the cap, for every schedule. "
                      + ("Uniform pipeline: in activation units (one micro-batch of one stage)." if uniform
                         else "Model: in GB (parameters, gradients and optimizer state included)."))
if mode in ("one value for every device", "per device"):
    db.widget(m[1].number_input, value_key, f"Cap ({unit})", min_value=0.01, step=1.0 if uniform else 5.0)

st.subheader("Devices")
speeds = values.get("speeds") or []
caps = values.get(list_key) or []
if len(speeds) != devices:
    speeds = (list(speeds) + [1.0] * devices)[:devices]
if len(caps) != devices:
    caps = (list(caps) + [float(values[value_key])] * devices)[:devices]
editor_key = f"devices_table:{devices}:{unit}"
if editor_key not in st.session_state or values.get("_devices_base_key") != editor_key:
    # a fresh editor starts from the stored values; a live one keeps its own edits on top of its base
    values["_devices_base"] = pd.DataFrame({"device": [f"dev{d}" for d in range(devices)],
                                            "speed (× nominal)": speeds, f"memory cap ({unit})": caps})
    values["_devices_base_key"] = editor_key
table = values["_devices_base"]
st.caption("Speeds make the cluster heterogeneous (model graphs only: a device at 0.5 runs every operator at half "
           "speed). Per-device caps apply when the mode above is **per device**.")
edited = st.data_editor(
    table, key=editor_key, hide_index=True, width="stretch", disabled=["device"],
    column_config={"speed (× nominal)": st.column_config.NumberColumn(min_value=0.05, max_value=20.0, step=0.05,
                                                                      disabled=uniform),
                   f"memory cap ({unit})": st.column_config.NumberColumn(min_value=0.01, disabled=mode != "per device")})
new_speeds = [float(x) if x == x else 1.0 for x in edited["speed (× nominal)"]]
new_caps = [float(x) if x == x else float(values[value_key]) for x in edited[f"memory cap ({unit})"]]
values["speeds"], values[list_key] = new_speeds, new_caps

st.subheader("Links")
lk = st.columns(2)
preset = ACCELERATORS.get(acc) if acc != "model default" else None
db.widget(lk[0].number_input, "bandwidth", "Link bandwidth (GB/s, 0 = the accelerator's)", min_value=0.0, step=50.0,
          disabled=uniform, help=("Default: " + (f"{preset.link_gbytes_per_s:g} GB/s ({preset.name})" if preset
                                                 else "the model's accelerator preset")))
db.widget(lk[1].number_input, "latency", "Link latency (ms)", min_value=0.0, step=0.01, format="%.3f", disabled=uniform)

with st.expander("Accelerator presets"):
    st.table(pd.DataFrame([{"preset": a.name, "peak TFLOP/s (dense BF16)": a.peak_tflops,
                            "memory (GB)": a.memory_bytes / 1e9, "link (GB/s)": a.link_gbytes_per_s, "source": a.source}
                           for a in ACCELERATORS.values()]).set_index("preset"))

# --- what these settings mean for the schedules --------------------------------------------------
st.subheader("This scenario")
try:
    config, notes = db.resolve_config()
    db.scenario_from_config(config)
except OpplanError as error:
    st.error(str(error))
    st.stop()
st.markdown(db.scenario_summary(config))
for note in notes:
    st.caption(note)
rows = []
for name in db.baseline_names():
    plan, reason = db.baseline_plan(config, name)
    if plan is None:
        rows.append({"schedule": db.schedule_title(name), f"peak memory ({unit})": None, "fits the cap": None,
                     "note": reason})
        continue
    peak = db.peak_of(plan, config) / (1 if uniform else db.GB)
    rows.append({"schedule": db.schedule_title(name), f"peak memory ({unit})": peak,
                 "fits the cap": plan.valid,
                 "note": "" if plan.valid else ("over the cap" if any(v.rule == 6 for v in plan.violations)
                                                else str(plan.violations[0]))})
st.caption("How much memory each expert schedule needs on this cluster — a cap below a schedule's peak rules it out.")
st.table(pd.DataFrame(rows).set_index("schedule").style.format(
    {f"peak memory ({unit})": "{:.4g}", "fits the cap": lambda ok: "" if ok is None else "yes" if ok else "no"},
    na_rep="–"))
