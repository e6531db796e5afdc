"""Home: the one-click demo. Pick a model, devices, micro-batches and a memory cap, press Plan,
and see opplan beside 1F1B and DualPipe on one time axis."""
from __future__ import annotations

import streamlit as st

from opplan import dashboard as db
from opplan.errors import OpplanError
from opplan.viz import gantt_figure

st.set_page_config(page_title="opplan · pipeline planner", page_icon="🧩", layout="wide")
SLOT = "home_job"

st.title("opplan · planned pipeline schedules")
st.markdown("Pipeline parallelism leaves devices idle (*bubbles*). opplan plans placement and schedule "
            "with a mixed-integer program and compares the result with the expert schedules **at the same "
            "memory**. Press **Plan** to run the demo; the pages on the left go deeper.")

# --- inputs -----------------------------------------------------------------------------------
samples = list(db.sample_models())
values = db.store()
choices = [db.UNIFORM] + [s for s in samples if s != "uniform_pipeline_8"]
if values.get("model_label") not in choices:
    choices.append(values["model_label"])  # an uploaded or edited model stays selectable
cols = st.columns([2.2, 1, 1, 1.6, 1])
label = db.widget(cols[0].selectbox, "model_label", "Model", options=choices,
                  help="The uniform pipeline reproduces the published formulas (F = B = W = 1). "
                       "Samples are real model graphs; upload your own on the Model page.")
if label != (values.get("_loaded_label")):
    try:
        db.select_model(label)
        values["_loaded_label"] = label
    except OpplanError as error:
        st.error(str(error))
db.widget(cols[1].number_input, "devices", "Devices", min_value=1, max_value=64, step=1,
          help="Pipeline devices P. DualPipe needs an even number.")
db.widget(cols[2].number_input, "microbatches", "Micro-batches", min_value=1, max_value=512, step=1,
          help="Micro-batches M per iteration. DualPipe needs M ≥ 2P.")
mode = db.widget(cols[3].selectbox, "cap_mode", "Memory cap per device",
                 options=["same as DualPipe's peak", "one value for every device", "no cap"],
                 help="Every schedule is measured against the same cap; opplan must fit it.")
unit = "activation units" if values.get("model_text") is None else "GB"
if mode == "one value for every device":
    db.widget(cols[4].number_input, db.cap_keys(unit != "GB")[0], f"Cap ({unit})", min_value=0.01, step=1.0)
else:
    db.widget(cols[4].number_input, "time_limit", "Solver time (s)", min_value=1.0, max_value=600.0, step=5.0,
              help="opplan returns its best plan when the time is up (and says how far from optimal it may be).")

config, notes = db.resolve_config()
options = {"solver": "auto", "objective": "makespan", "time_limit": float(values["time_limit"]),
           "placement": "auto"}
job: db.Job | None = st.session_state.get(SLOT)
running = job is not None and not job.done
if st.button("Plan", type="primary", disabled=running, key="home_plan"):
    st.session_state[SLOT] = db.start_solve(config, options)
    st.rerun()
for note in notes:
    st.caption(note)

# --- progress or result ------------------------------------------------------------------------
if job is None:
    st.info("Press **Plan**: opplan solves for a few seconds, then its schedule appears beside 1F1B and DualPipe.")
    st.stop()
if not job.done:
    db.job_progress(SLOT)
    st.stop()
if job.error:
    st.error(job.error)
    if job.crash:
        with st.expander("Details for a bug report"):
            st.code(job.crash)
    st.stop()

db.remember_result(job)
result = job.result
units = db.units_for(job.config)
plans = {"opplan": result}
for name in db.HOME_SCHEDULES:
    plan, reason = db.baseline_plan(job.config, name)
    if plan is None:
        st.info(f"{db.schedule_title(name)} is not shown: {reason}")
    else:
        plans[name] = plan
if db.config_key(job.config) != db.config_key(config):
    st.caption("Settings changed since this run; press **Plan** to update. Showing: "
               + db.scenario_summary(job.config))

reference = "dualpipe" if "dualpipe" in plans else "1f1b"
ref_plan = plans.get(reference)
if ref_plan is not None:
    removed = db.idle_removed(result, ref_plan)
    same = "at the same memory" if job.config.get("caps") else "(no memory cap)"
    if removed is None:
        st.success(f"{db.schedule_title(reference)} has no idle time here; opplan matches it.")
    elif removed >= 0:
        st.success(f"**opplan removes {removed:.0%} of {db.schedule_title(reference)}'s idle time {same}**: "
                   f"one iteration takes {units.time(result.makespan)} instead of {units.time(ref_plan.makespan)}"
                   + ("." if units.time_unit else " (time in units of F)."))
    else:
        st.warning(f"opplan has {-removed:.0%} more idle time than {db.schedule_title(reference)} {same} "
                   "(the solver ran out of time; raise the time limit on the Plan page).")

cards = st.columns(5)
m = result.metrics
ref_m = ref_plan.metrics if ref_plan is not None else None
cards[0].metric(f"Iteration time (opplan{', ' + units.time_unit if units.time_unit else ''})", f"{m['makespan']:.4g}",
                border=True,
                delta=(f"{m['makespan'] - ref_m['makespan']:+.4g} vs {db.schedule_title(reference)}" if ref_m else None),
                delta_color="inverse")
cards[1].metric("Bubble ratio (opplan)", f"{m['bubble_ratio']:.1%}", border=True,
                delta=(f"{100 * (m['bubble_ratio'] - ref_m['bubble_ratio']):+.1f} pp vs {db.schedule_title(reference)}"
                       if ref_m else None), delta_color="inverse")
for k, name in enumerate(db.HOME_SCHEDULES):
    if name in plans:
        cards[2 + k].metric(f"Speed-up over {db.schedule_title(name)}", f"{plans[name].makespan / m['makespan']:.2f}×",
                            border=True)
peak = db.peak_of(result, job.config)
cap = job.config["caps"][0] if job.config.get("caps") else None
cards[4].metric(f"Peak memory ({units.mem_short})", f"{peak / units.mem_unit_bytes:.4g}", border=True,
                delta=(f"cap {cap / units.mem_unit_bytes:.4g}" if cap else "no cap"), delta_color="off",
                delta_arrow="off")

table = db.metrics_table(plans, job.config)
table["schedule"] = [db.schedule_title(n) for n in table["schedule"]]
table = table.set_index("schedule").drop(columns=["lower bound"])
st.table(table.style.format(lambda x: f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}",
                            subset=[c for c in table.columns if c != "valid"]))

prov = result.provenance
st.caption(f"opplan: placement **{prov.get('placement', '?')}**, solver **{prov.get('solver', '?')}** "
           f"({prov.get('solver_reason', '')}), status **{prov.get('status', '?')}**, "
           f"gap {100 * float(prov.get('gap', 0)):.1f}% to the lower bound {prov.get('lower_bound', 0):.4g}, "
           f"{float(prov.get('solve_seconds', job.elapsed)):.1f} s.")
names = list(plans)
fig = gantt_figure([plans[n] for n in names],
                   titles=[f"<b>{db.schedule_title(n)}</b> · iteration {units.time(plans[n].makespan)} · "
                           f"bubble ratio {plans[n].metrics['bubble_ratio']:.1%}" for n in names],
                   time_label=units.time_label, show_links=False)
st.plotly_chart(fig, key="home_gantt")
if any(t.is_transfer for t in result.tasks):
    st.caption("Device rows only; the Compare page also draws the transfers on each link.")
st.page_link("pages/4_Compare.py", label="Compare with every baseline, memory timelines and the Pareto sweep →")
