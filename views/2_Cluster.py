"""Cluster: devices, micro-batches, memory caps, heterogeneous speeds, links, accelerator presets."""
from __future__ import annotations

import streamlit as st

from opplan.cluster import ACCELERATORS
from opplan.ui import caps, tables
from opplan.ui import components as ui
from opplan.ui.state import store, widget

st.title("Cluster")
values = store()
uniform = values.get("model_text") is None
cap = caps.cap_input(values)     # activation units or GB, as the model's memory reads everywhere
unit = caps.cap_unit(values)

c = st.columns(3)
devices = int(widget(c[0].number_input, "devices", "Devices (pipeline size P)", min_value=1, max_value=64, step=1))
widget(c[1].number_input, "microbatches", "Micro-batches per iteration (M)", min_value=1, max_value=512, step=1)
acc = widget(c[2].selectbox, "accelerator", "Accelerator preset", options=["model default", *list(ACCELERATORS)],
             disabled=uniform, help="Turns FLOP costs into time and sets memory and link bandwidth. "
                                    "The uniform pipeline has no hardware (times are in units of F).")

st.subheader("Memory")
m = st.columns([2, 1])
mode = widget(m[0].radio, "cap_mode", "Memory cap per device", options=list(caps.CAP_MODES), horizontal=True,
              help="Parameters plus live activations must stay under the cap, for every schedule. " + cap.help)
if mode in (caps.ONE_VALUE, caps.PER_DEVICE):
    widget(m[1].number_input, cap.key, cap.label, min_value=0.01, step=cap.step)

st.subheader("Devices")
active_caps = caps.resolve_config(values)[0]["caps"]   # what applies now, shown outside the per-device mode
editor_key = f"devices_table:{devices}:{unit}:{mode}:{active_caps if mode != caps.PER_DEVICE else ''}"
if editor_key not in st.session_state or values.get("_devices_base_key") != editor_key:
    # a fresh editor starts from the stored values; a live one keeps its own edits on top of its base
    values["_devices_base"] = caps.device_table(values, devices, active_caps)
    values["_devices_base_key"] = editor_key
st.caption("Speeds make the cluster heterogeneous (model graphs only: a device at 0.5 runs every operator at half "
           "speed). Per-device caps apply when the mode above is **per device**.")
edited = st.data_editor(
    values["_devices_base"], key=editor_key, hide_index=True, width="stretch", disabled=["device"],
    column_config={caps.SPEED: st.column_config.NumberColumn(min_value=0.05, max_value=20.0, step=0.05,
                                                             disabled=uniform),
                   f"memory cap ({unit})": st.column_config.NumberColumn(min_value=0.01,
                                                                        disabled=mode != caps.PER_DEVICE)})
caps.save_device_table(values, edited)

st.subheader("Links")
lk = st.columns(2)
preset = ACCELERATORS.get(acc) if acc != "model default" else None
widget(lk[0].number_input, "bandwidth", "Link bandwidth (GB/s, 0 = the accelerator's)", min_value=0.0, step=50.0,
       disabled=uniform, help=("Default: " + (f"{preset.link_gbytes_per_s:g} GB/s ({preset.name})" if preset
                                              else "the model's accelerator preset")))
widget(lk[1].number_input, "latency", "Link latency (ms)", min_value=0.0, step=0.01, format="%.3f", disabled=uniform)

with st.expander("Accelerator presets"):
    st.table(tables.accelerator_table())

# --- what these settings mean for the schedules --------------------------------------------------
st.subheader("This scenario")
config = ui.scenario_header(prefix="", hint="")
st.caption("How much memory each expert schedule needs on this cluster — a cap below a schedule's peak rules it out.")
st.table(tables.fit_table(config))
