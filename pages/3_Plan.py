"""Plan: run the planner on the current scenario with live progress, cancel, and the verdict
(which solver ran and why, status, gap), then the schedule and its exports."""
from __future__ import annotations

import streamlit as st

from opplan import dashboard as db
from opplan.viz import gantt_figure, memory_figure

st.set_page_config(page_title="opplan · plan", page_icon="🧩", layout="wide")
SLOT = "plan_job"
st.title("Plan")
values = db.store()

config = db.scenario_header()

c = st.columns(5)
db.widget(c[0].selectbox, "solver", "Solver", options=["auto", "gurobi", "highs"],
          help="auto: Gurobi when it is licensed and the model fits its licence, HiGHS otherwise.")
db.widget(c[1].selectbox, "objective", "Objective", options=["makespan", "bubble", "memory"],
          format_func={"makespan": "shortest iteration", "bubble": "lowest bubble ratio",
                       "memory": "lowest peak memory"}.get)
db.widget(c[2].number_input, "time_limit", "Time limit (s)", min_value=1.0, max_value=600.0, step=5.0,
          help="The best plan found so far is returned when time is up, with its gap to the lower bound.")
db.widget(c[3].selectbox, "placement", "Placement", options=["auto", "contiguous", "mirrored", "v", "searched", "searched-mirrored"],
          format_func={"auto": "auto (try all)", "contiguous": "contiguous (1F1B-like)",
                       "mirrored": "mirrored (DualPipe-like)", "v": "V shape (ZB-V-like)",
                       "searched": "searched cut, contiguous (model graphs)",
                       "searched-mirrored": "searched cut, mirrored (model graphs)"}.get)
db.widget(c[4].number_input, "mip_gap", "Stop at gap (%)", min_value=0.0, max_value=50.0, step=1.0,
          help="0 = prove optimality (or run until the time limit).")
options = {"solver": values["solver"], "objective": values["objective"], "time_limit": float(values["time_limit"]),
           "placement": values["placement"], "mip_gap": float(values.get("mip_gap") or 0.0) / 100}

job: db.Job | None = st.session_state.get(SLOT)
running = job is not None and not job.done
if st.button("Run the planner", type="primary", disabled=running, key="plan_run"):
    st.session_state[SLOT] = db.start_solve(config, options)
    st.rerun()

if running:
    db.job_progress(SLOT)
    st.stop()
if job is not None and job.done:
    if job.error:
        st.error(job.error)
        if job.crash:
            with st.expander("Details for a bug report"):
                st.code(job.crash)
    db.remember_result(job)

plan = db.latest_opplan(config)
if plan is None:
    st.info("Press **Run the planner**. Progress (best plan and proven bound) shows while it runs; "
            "Cancel keeps the best plan found so far.")
    st.stop()

units = db.units_for(config)
prov = plan.provenance
status = prov.status.value if prov.status else "?"
badge = {"optimal": ":green-badge[:material/check: optimal]", "feasible": ":orange-badge[feasible]"}.get(
    status, f":gray-badge[{status}]")
gap = prov.gap or 0.0
st.markdown(f"{badge} gap **{gap:.1%}** to the lower bound {units.time(prov.lower_bound or 0.0)}; "
            f"placement **{prov.placement or '?'}**, warm start {prov.warm_start or '?'}, "
            f"{prov.solve_seconds or 0.0:.1f} s.")
st.markdown(f"**Solver:** {prov.solver or '?'} — {prov.solver_reason or ''}")
if job is not None and job.cancel_event.is_set():
    st.caption("Cancelled: this is the best plan found before the stop.")

m = plan.metrics
cards = st.columns(4)
time_suffix = f" ({units.time_unit})" if units.time_unit else ""
cards[0].metric(f"Iteration time{time_suffix}", f"{m.makespan:.4g}", border=True)
cards[1].metric("Bubble ratio", f"{m.bubble_ratio:.1%}", border=True)
cards[2].metric(f"Idle per device, max{time_suffix}", f"{max(m.bubble):.4g}", border=True)
cap = config["caps"][0] if config.get("caps") else None
cards[3].metric(f"Peak memory ({units.mem_short})", f"{db.peak_of(plan, config) / units.mem_unit_bytes:.4g}",
                border=True, delta=f"cap {cap / units.mem_unit_bytes:.4g}" if cap else "no cap", delta_color="off",
                delta_arrow="off")
if job is not None and job.done and job.history:
    with st.expander("Solver progress of the last run"):
        from opplan.viz import progress_figure

        st.plotly_chart(progress_figure(job.history, units.time_unit), key="plan_progress_done")

fig = gantt_figure([plan], time_label=units.time_label)
st.plotly_chart(fig, key="plan_gantt")
st.plotly_chart(memory_figure([plan], ["opplan"], unit_bytes=units.mem_unit_bytes, unit_label=units.mem_label,
                              time_label=units.time_label), key="plan_memory")
st.subheader("Export")
db.export_buttons(fig, {"opplan": plan}, config, key="plan_export")
st.page_link("pages/4_Compare.py", label="Compare this plan with the baselines →")
