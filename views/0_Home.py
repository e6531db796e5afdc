"""Home: the one-click demo. Pick a model, devices, micro-batches and a memory cap, press Plan,
and see opplan beside 1F1B and DualPipe on one time axis."""
from __future__ import annotations

import streamlit as st

from opplan.ui import caps, jobs, results, tables
from opplan.ui import components as ui
from opplan.ui import plans as pl
from opplan.ui.config import config_key
from opplan.ui.display import schedule_title, units_for
from opplan.ui.state import store, widget
from opplan.ui.text import plain
from opplan.viz import gantt_figure

SLOT = "home_job"

st.title("opplan · planned pipeline schedules")
st.markdown("Pipeline parallelism leaves devices idle (*bubbles*). opplan plans placement and schedule "
            "with a mixed-integer program and compares the result with the expert schedules **at the same "
            "memory**. Press **Plan** to run the demo; the pages on the left go deeper.")

# --- inputs -----------------------------------------------------------------------------------
values = store()
cols = st.columns([2.2, 1, 1, 1.6, 1])
ui.model_select(cols[0].selectbox, "Model",
                help="The uniform pipeline reproduces the published formulas (F = B = W = 1). "
                     "Samples are real model graphs; upload your own on the Model page.")
widget(cols[1].number_input, "devices", "Devices", min_value=1, max_value=64, step=1,
       help="Pipeline devices P. DualPipe needs an even number.")
widget(cols[2].number_input, "microbatches", "Micro-batches", min_value=1, max_value=512, step=1,
       help="Micro-batches M per iteration. DualPipe needs M ≥ 2P.")
mode = widget(cols[3].selectbox, "cap_mode", "Memory cap per device", options=list(caps.HOME_CAP_MODES),
              help="Every schedule is measured against the same cap; opplan must fit it.")
cap = caps.cap_input(values)
if mode == caps.ONE_VALUE:
    widget(cols[4].number_input, cap.key, cap.label, min_value=0.01, step=cap.step)
else:
    widget(cols[4].number_input, "time_limit", "Solver time (s)", min_value=1.0, max_value=600.0, step=5.0,
           help="opplan returns its best plan when the time is up (and says how far from optimal it may be).")

config, notes = caps.resolve_config(values)
job: jobs.Job | None = st.session_state.get(SLOT)
if st.button("Plan", type="primary", disabled=job is not None and not job.done, key="home_plan"):
    st.session_state[SLOT] = jobs.start_solve(config, jobs.home_options(values))
    st.session_state[f"{SLOT}:label"] = values.get("model_label")   # the summary names the model solved
    st.rerun()
for note in notes:
    st.caption(note)

# --- progress or result ------------------------------------------------------------------------
if job is None:
    st.info("Press **Plan**: opplan solves for a few seconds, then its schedule appears beside 1F1B and DualPipe.")
    st.stop()
if not job.done:
    ui.job_progress(SLOT)
    st.stop()
if job.error:
    ui.job_failure(job)
    st.stop()

pl.remember_result(values, job)
plans, skipped = results.home_plans(job.config, job.result)
for name, reason in skipped:
    st.info(f"{schedule_title(name)} is not shown: {plain(reason)}")
if config_key(job.config) != config_key(config):
    st.caption("Settings changed since this run; press **Plan** to update. Showing: "
               + ui.summary(job.config, st.session_state.get(f"{SLOT}:label")))

message = results.headline(plans, job.config)
if message is not None:
    {"success": st.success, "warning": st.warning}.get(message[0], st.info)(message[1])
ui.metric_cards(results.home_cards(plans, job.config))
if results.cards_caption(plans):
    st.caption(results.cards_caption(plans))
st.table(tables.home_table(plans, job.config))
st.caption(results.provenance_line(job.result, job.elapsed))

units = units_for(job.config)
fig = gantt_figure(list(plans.values()), titles=results.gantt_titles(plans, units, mark_invalid=True),
                   time_label=units.time_label, show_links=False)
st.plotly_chart(fig, key="home_gantt")
if results.has_links([job.result]):
    st.caption("Device rows only; the Compare page also draws the transfers on each link.")
st.page_link("views/4_Compare.py", label="Compare with every baseline, memory timelines and the Pareto sweep →")
with st.expander("Export"):
    ui.export_buttons(fig, plans, job.config, key="home_export")
