"""Compare: any baselines (and opplan) on one time axis, memory over time, bubbles per device,
and the bubble-versus-memory trade-off swept over caps."""
from __future__ import annotations

import streamlit as st

from opplan.ui import components as ui
from opplan.ui import plans as pl
from opplan.ui import results, tables
from opplan.ui import sweep as sw
from opplan.ui.display import memory_text, schedule_title, units_for
from opplan.ui.state import store, widget
from opplan.ui.text import plain
from opplan.viz import bubble_figure, gantt_figure, memory_figure, pareto_figure

SWEEP = "sweep_job"
st.title("Compare schedules")
values = store()

config = ui.scenario_header()
units = units_for(config)

opplan_plan = pl.latest_opplan(values, config)
loaded = ui.saved_plans(config)
available = pl.compare_choices(values, opplan_plan) + list(loaded)
chosen = widget(st.multiselect, "compare_schedules", "Schedules", options=available, format_func=schedule_title)
if opplan_plan is None:
    st.caption("opplan is not in the list yet: run it on the Home or Plan page for this scenario.")

plans, skipped = pl.collect_plans(config, [n for n in chosen if n in available and n not in loaded], opplan_plan)
plans.update({n: loaded[n] for n in chosen if n in loaded})
for name, reason in skipped:
    st.warning(f"{schedule_title(name)}: {plain(reason)}")
if not plans:
    st.info("Pick at least one schedule that applies to this scenario.")
    st.stop()

over_cap = results.over_cap_names(plans)
if over_cap:
    st.warning(f"Over the memory cap: {', '.join(over_cap)} (their charts show what they would need).")

names = [schedule_title(n) for n in plans]
show_links = results.has_links(plans.values()) and st.checkbox("Show transfers on links", value=True,
                                                                key="compare_links")
gantt = gantt_figure(list(plans.values()), titles=results.gantt_titles(plans, units, mark_invalid=True),
                     time_label=units.time_label, show_links=show_links)
st.plotly_chart(gantt, key="compare_gantt")

st.subheader("Bubbles")
table = tables.metrics_table(plans, config, titled=True)
st.dataframe(table, hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.4g") for c in table.columns
                            if c not in ("schedule", "valid")})
st.plotly_chart(bubble_figure(list(plans.values()), names, units.time_unit or "time units"), key="compare_bubbles")

st.subheader("Memory over time")
st.plotly_chart(memory_figure(list(plans.values()), names, unit_bytes=units.mem_unit_bytes, unit_label=units.mem_label,
                              time_label=units.time_label), key="compare_memory")

# --- the trade-off: bubble ratio against memory -------------------------------------------------------
st.subheader("Bubble ratio against memory (Pareto)")
st.caption("Each expert schedule is one point: its peak memory and bubble ratio. opplan is planned again at "
           "several caps; lower and further left is better.")
sweep = st.session_state.get(SWEEP)
s = st.columns([1, 1, 1, 2])
n_points = int(s[0].number_input("Caps to try", min_value=2, max_value=12, value=5, step=1, key="sweep_n"))
per_point = float(s[1].number_input("Seconds per cap", min_value=1.0, max_value=120.0, value=5.0, step=1.0,
                                    key="sweep_seconds"))
peaks = sw.baseline_peaks(config)
if peaks:
    caps = sw.sweep_caps(peaks, n_points)
    s[3].caption(f"Caps from {units.memory(min(peaks))} to {units.memory(max(peaks))} "
                 "(the smallest and largest baseline peaks).")
    if s[2].button("Sweep opplan", disabled=sweep is not None and not sweep.done, key="sweep_run"):
        st.session_state[SWEEP] = sw.start_sweep(config, sw.sweep_options(values, per_point, caps), caps)
        st.rerun()
swept = sw.sweep_applies(sweep, config)
if swept and not sweep.done:
    ui.job_progress(SWEEP)
elif swept and sweep.error:
    st.error(plain(memory_text(sweep.error, config)))
if swept and sweep.done and sweep.log:
    st.caption(plain(memory_text(sw.sweep_log(sweep), config)))
points = sw.pareto_points(config, (sweep.result or []) if swept else [], opplan_plan)
st.plotly_chart(pareto_figure(points, units.mem_label), key="compare_pareto")

st.subheader("Export")
ui.export_buttons(gantt, plans, config, key="compare_export")
