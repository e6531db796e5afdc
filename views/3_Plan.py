"""Plan: run the planner on the current scenario with live progress, cancel, and the verdict
(which solver ran and why, status, gap), then the schedule and its exports."""
from __future__ import annotations

import streamlit as st

from opplan.ui import components as ui
from opplan.ui import jobs, results
from opplan.ui import plans as pl
from opplan.ui.display import units_for
from opplan.ui.state import store, widget
from opplan.viz import gantt_figure, memory_figure, progress_figure

SLOT = "plan_job"
st.title("Plan")
values = store()

config = ui.scenario_header()

c = st.columns(5)
widget(c[0].selectbox, "solver", "Solver", options=["auto", "gurobi", "highs", "cpsat"],
       help="auto: Gurobi when it is licensed and the model fits its licence, HiGHS otherwise.")
widget(c[1].selectbox, "objective", "Objective", options=["makespan", "bubble", "memory"],
       format_func={"makespan": "shortest iteration", "bubble": "lowest bubble ratio",
                    "memory": "lowest peak memory"}.get)
widget(c[2].number_input, "time_limit", "Time limit (s)", min_value=1.0, max_value=600.0, step=5.0,
       help="The best plan found so far is returned when time is up, with its gap to the lower bound.")
widget(c[3].selectbox, "placement", "Placement", options=["auto", "contiguous", "mirrored", "v", "searched",
                                                          "searched-mirrored"],
       format_func={"auto": "auto (try all)", "contiguous": "contiguous (1F1B-like)",
                    "mirrored": "mirrored (DualPipe-like)", "v": "V shape (ZB-V-like)",
                    "searched": "searched cut, contiguous (model graphs)",
                    "searched-mirrored": "searched cut, mirrored (model graphs)"}.get)
widget(c[4].number_input, "mip_gap", "Stop at gap (%)", min_value=0.0, max_value=50.0, step=1.0,
       help="0 = prove optimality (or run until the time limit).")

job: jobs.Job | None = st.session_state.get(SLOT)
running = job is not None and not job.done
if st.button("Run the planner", type="primary", disabled=running, key="plan_run"):
    st.session_state[SLOT] = jobs.start_solve(config, jobs.plan_options(values))
    st.rerun()

if running:
    ui.job_progress(SLOT)
    st.stop()
if job is not None and job.done:
    if job.error:
        ui.job_failure(job)
    pl.remember_result(values, job)

plan = pl.latest_opplan(values, config)
if plan is None:
    st.info("Press **Run the planner**. Progress (best plan and proven bound) shows while it runs; "
            "Cancel keeps the best plan found so far.")
    st.stop()

units = units_for(config)
for line in results.verdict(plan, units):
    st.markdown(line)
if job is not None and job.cancel_event.is_set():
    st.caption("Cancelled: this is the best plan found before the stop.")

ui.metric_cards(results.plan_cards(plan, config))
if job is not None and job.done and job.history:
    with st.expander("Solver progress of the last run"):
        st.plotly_chart(progress_figure(job.history, units.time_unit), key="plan_progress_done")

fig = gantt_figure([plan], time_label=units.time_label)
st.plotly_chart(fig, key="plan_gantt")
st.plotly_chart(memory_figure([plan], ["opplan"], unit_bytes=units.mem_unit_bytes, unit_label=units.mem_label,
                              time_label=units.time_label), key="plan_memory")
st.subheader("Export")
ui.export_buttons(fig, {"opplan": plan}, config, key="plan_export")
st.page_link("views/4_Compare.py", label="Compare this plan with the baselines →")
