"""Compare: any baselines (and opplan) on one time axis, memory over time, bubbles per device,
and the bubble-versus-memory trade-off swept over caps."""
from __future__ import annotations

import numpy as np
import streamlit as st

from opplan import dashboard as db
from opplan.viz import bubble_figure, gantt_figure, memory_figure, pareto_figure

st.set_page_config(page_title="opplan · compare", page_icon="🧩", layout="wide")
SWEEP = "sweep_job"
st.title("Compare schedules")
values = db.store()

config = db.scenario_header()
units = db.units_for(config)

opplan_plan = db.latest_opplan(config)
available = (["opplan"] if opplan_plan is not None else []) + db.baseline_names()
default = [n for n in ("opplan",) + db.DEFAULT_SCHEDULES if n in available]
if "compare_schedules" not in values or (opplan_plan is not None and not values.get("_compare_saw_opplan")):
    values["compare_schedules"] = default  # a new opplan plan joins the comparison by itself
values["_compare_saw_opplan"] = opplan_plan is not None
chosen = db.widget(st.multiselect, "compare_schedules", "Schedules", options=available, format_func=db.schedule_title)
chosen = [n for n in chosen if n in available]
if opplan_plan is None:
    st.caption("opplan is not in the list yet: run it on the Home or Plan page for this scenario.")

plans = {}
for name in chosen:
    if name == "opplan":
        plans[name] = opplan_plan
        continue
    plan, reason = db.baseline_plan(config, name)
    if plan is None:
        st.warning(f"{db.schedule_title(name)}: {reason}")
    else:
        plans[name] = plan
if not plans:
    st.info("Pick at least one schedule that applies to this scenario.")
    st.stop()

over_cap = [db.schedule_title(n) for n, p in plans.items() if any(v.rule == 6 for v in p.violations)]
if over_cap:
    st.warning(f"Over the memory cap: {', '.join(over_cap)} (their charts show what they would need).")

titles = [f"<b>{db.schedule_title(n)}</b> · iteration {units.time(p.makespan)} · bubble ratio "
          f"{p.metrics['bubble_ratio']:.1%}" + ("" if p.valid else " · ⚠ over the cap") for n, p in plans.items()]
has_links = any(t.is_transfer for p in plans.values() for t in p.tasks)
show_links = st.checkbox("Show transfers on links", value=True, key="compare_links") if has_links else False
gantt = gantt_figure(list(plans.values()), titles=titles, time_label=units.time_label, show_links=show_links)
st.plotly_chart(gantt, key="compare_gantt")

st.subheader("Bubbles")
table = db.metrics_table(plans, config)
table["schedule"] = [db.schedule_title(n) for n in table["schedule"]]
st.dataframe(table, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.4g") for c in table.columns
                            if c not in ("schedule", "valid")})
st.plotly_chart(bubble_figure(list(plans.values()), [db.schedule_title(n) for n in plans],
                              units.time_unit or "time units"), key="compare_bubbles")

st.subheader("Memory over time")
st.plotly_chart(memory_figure(list(plans.values()), [db.schedule_title(n) for n in plans],
                              unit_bytes=units.mem_unit_bytes, unit_label=units.mem_label,
                              time_label=units.time_label), key="compare_memory")

# --- the trade-off: bubble ratio against memory -------------------------------------------------------
st.subheader("Bubble ratio against memory (Pareto)")
st.caption("Each expert schedule is one point: its peak memory and bubble ratio. opplan is planned again at "
           "several caps; lower and further left is better.")
free = dict(config, caps=None)
points = []
peaks = []
for name in db.baseline_names():
    plan, _ = db.baseline_plan(free, name)
    if plan is None:
        continue
    peak = db.peak_of(plan, free)
    peaks.append(peak)
    points.append({"schedule": db.schedule_title(name), "peak": peak / units.mem_unit_bytes,
                   "bubble_ratio": plan.metrics["bubble_ratio"], "makespan": plan.makespan})
sweep: db.Job | None = st.session_state.get(SWEEP)
s = st.columns([1, 1, 1, 2])
n_points = int(s[0].number_input("Caps to try", min_value=2, max_value=12, value=5, step=1, key="sweep_n"))
per_point = float(s[1].number_input("Seconds per cap", min_value=1.0, max_value=120.0, value=5.0, step=1.0,
                                    key="sweep_seconds"))
if peaks:
    low, high = min(peaks), max(peaks)
    caps = [float(c) for c in np.linspace(low, high, n_points)] if high > low else [low]
    s[3].caption(f"Caps from {units.memory(low)} to {units.memory(high)} (the smallest and largest baseline peaks).")
    if s[2].button("Sweep opplan", disabled=sweep is not None and not sweep.done, key="sweep_run"):
        options = {"solver": values["solver"], "objective": "makespan", "time_limit": per_point,
                   "placement": values["placement"], "caps": caps}
        st.session_state[SWEEP] = db.start_sweep(free, options, caps)
        st.rerun()
if sweep is not None and db.config_key(sweep.config) == db.config_key(free):
    if not sweep.done:
        db.job_progress(SWEEP)
    elif sweep.error:
        st.error(sweep.error)
    for p in sweep.result or []:
        points.append(dict(p, peak=p["peak"] / units.mem_unit_bytes, cap=p["cap"] / units.mem_unit_bytes))
    if sweep.done and sweep.log:
        st.caption(" · ".join(line for line in sweep.log if "solving" not in line))
if opplan_plan is not None:
    points.append({"schedule": "opplan", "peak": db.peak_of(opplan_plan, config) / units.mem_unit_bytes,
                   "bubble_ratio": opplan_plan.metrics["bubble_ratio"], "makespan": opplan_plan.makespan,
                   "cap": (config["caps"][0] / units.mem_unit_bytes) if config.get("caps") else None})
st.plotly_chart(pareto_figure(points, units.mem_label), key="compare_pareto")

st.subheader("Export")
db.export_buttons(gantt, plans, config, key="compare_export")
