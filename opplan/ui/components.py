"""Page pieces that several pages draw identically (Streamlit), so they cannot drift apart."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from opplan.errors import OpplanError
from opplan.schedule import Plan
from opplan.ui import exports, models, session  # noqa: F401  (session: a closed tab cancels its solve)
from opplan.ui import plans as pl
from opplan.ui.caps import resolve_config
from opplan.ui.config import scenario_from_config
from opplan.ui.display import memory_text, scenario_summary, schedule_title
from opplan.ui.jobs import Job
from opplan.ui.results import Card
from opplan.ui.state import store, widget
from opplan.ui.tables import figure_html, figure_png, metrics_csv, plan_json
from opplan.ui.text import plain

FIX_HINT = " — fix it on the Model or Cluster page."


def summary(config: dict[str, Any], label: str | None = None) -> str:
    """The one-line scenario summary, naming ``label`` (by default the current model)."""
    return scenario_summary(config, label or store().get("model_label", models.UNIFORM))


def model_select(factory: Callable[..., Any], label: str, help: str) -> str:
    """The model selectbox (uniform pipeline, samples, the current upload or edit); choosing one
    loads it, and a model that does not load shows one line."""
    values = store()
    choice = widget(factory, "model_label", label, options=models.model_choices(values), help=help)
    try:
        models.choose_model(values, choice)
    except OpplanError as error:
        st.error(plain(error))
    if values.get("_scenario_note"):
        st.caption(plain(values["_scenario_note"]))
    return choice


def model_graph(model: Any, plans: dict[str, Plan | None]) -> None:
    """The model graph (Graphviz, laid out in the browser), coloured by operator kind or by the
    devices of the plan chosen in ``plans`` (name → plan, None: by kind), with its legend."""
    from opplan.viz import dag_dot, device_legend

    choice = widget(st.radio, "dag_colour", "Colour operators by", options=list(plans), horizontal=True,
                    format_func=lambda n: n if n == "operator kind" else f"device in {schedule_title(n)}",
                    help="Once a schedule is chosen, each operator takes the colour of the device it runs on.")
    plan = plans.get(choice)
    device_of = pl.device_of_operators(plan) if plan is not None else {}
    st.graphviz_chart(dag_dot(model, device_of), width="content")
    if device_of:
        squares = " ".join(f'<span style="background:{c};padding:0 0.6em;border-radius:3px">{d}</span>'
                           for d, c in device_legend(device_of))
        st.markdown(f"<small>{squares}</small>", unsafe_allow_html=True)
    else:
        st.caption("Boxes: compute · hexagons: communication · a 3-D box folds a run of identical layers "
                   "(hover any node for its costs).")


def model_builder() -> bool:
    """The builder form (family, hyperparameters, accelerator). True when it built a new current
    model; a bad hyperparameter shows one line and changes nothing."""
    from opplan.ui import builder

    values = store()
    label = widget(st.selectbox, "build_family", "Model family", options=list(builder.BUILDER_FAMILIES))
    family = builder.BUILDER_FAMILIES[label]
    builder.seed_fields(values, family)
    params = builder.hyperparameters(family)
    main = [n for n in builder.MAIN_FIELDS[family] if n in params]
    more = [n for n in params if n not in main and n != "accelerator"]

    def fields(names: list[str]) -> None:
        for column, name in zip(st.columns(4) * (len(names) // 4 + 1), names, strict=False):
            widget(column.number_input, builder.field_key(family, name), name.replace("_", " "), min_value=0,
                   step=1, help="empty: none" if params[name] is None else f"default {params[name]}")

    fields(main)
    widget(st.selectbox, builder.field_key(family, "accelerator"), "Accelerator",
           options=builder.accelerator_options())
    with st.expander("More hyperparameters"):
        fields(more)
    if st.button("Build the model", type="primary", key="build_model"):
        try:
            builder.build(values, family)
            return True
        except OpplanError as error:
            st.error(f"{plain(error)} — the model was not changed.")
    return False


def _upload_text(upload: Any, what: str) -> str:
    """An uploaded file's text, within the size limit and decoded (OpplanError naming the file)."""
    from opplan.errors import decode_user_text
    from opplan.limits import check_file_size

    data = upload.getvalue()
    check_file_size(len(data), upload.name)
    return decode_user_text(data, upload.name, what)


def scenario_sidebar() -> None:
    """In the sidebar of every page: save the scenario to a file, load one back; and the main
    settings mirrored in the URL, so a link reopens the same view (read once per session)."""
    from opplan.ui import share

    values = store()
    if not values.get("_link_read"):
        values["_link_read"] = True
        ignored = share.apply_query_params(values, st.query_params.to_dict())
        if ignored:
            st.sidebar.warning(plain("Ignored in the link: " + "; ".join(ignored) + "."))
    st.query_params.from_dict(share.query_params(values))
    with st.sidebar:
        st.caption("The scenario: model, cluster, caps and solver options. The address bar holds the main "
                   "settings, so a link reopens this view.")
        st.download_button("Save scenario", data=lambda: share.scenario_json(store()), file_name="scenario.json",
                           mime="application/json", on_click="ignore", key="scenario_save", icon=":material/download:")
        upload = st.file_uploader("Load a scenario", type=["json"], key="scenario_upload")
        if upload is not None and upload.file_id != values.get("_scenario_upload_id"):
            values["_scenario_upload_id"] = upload.file_id
            try:
                share.load_scenario(values, _upload_text(upload, "scenario file"), upload.name)
                values["_scenario_error"] = None
                st.query_params.from_dict(share.query_params(values))
            except OpplanError as error:
                values["_scenario_error"] = f"{error} — the scenario was not changed."
        if upload is not None and values.get("_scenario_error"):
            st.error(plain(values["_scenario_error"]))


def saved_plans(config: dict[str, Any]) -> dict[str, Plan]:
    """An uploader for saved plan files (re-simulated and validated on load); returns the plans
    loaded in this session by name (``saved: <file>``). A new one joins the compared schedules."""
    from opplan.ui import share

    values = store()
    loaded: dict[str, Plan] = values.setdefault("loaded_plans", {})
    with st.expander("Load a saved plan (JSON from an Export button or `opplan … --out`)", expanded=bool(loaded)):
        upload = st.file_uploader("Plan file", type=["json"], key="plan_upload", label_visibility="collapsed")
        if upload is not None and upload.file_id != values.get("_plan_upload_id"):
            values["_plan_upload_id"] = upload.file_id
            try:
                name = f"saved: {upload.name}"
                loaded[name] = share.load_plan_text(_upload_text(upload, "plan file"), upload.name)
                values["compare_schedules"] = [*values.get("compare_schedules", []), name]
                values["_plan_error"] = None
            except OpplanError as error:
                values["_plan_error"] = str(error)
        if upload is not None and values.get("_plan_error"):
            st.error(plain(values["_plan_error"]))
        for name, plan in loaded.items():
            why = share.plan_mismatch(plan, config)
            if why:
                st.caption(plain(f"{name}: {why} — compared as it is."))
    return loaded


def scenario_header(prefix: str = "**Scenario:** ", hint: str = FIX_HINT) -> dict[str, Any]:
    """The current scenario's config, summarised at the top of a page; stops the page with one
    line when the scenario is invalid (the user fixes it on the Model or Cluster page)."""
    try:
        config, notes = resolve_config(store())
        scenario_from_config(config)
    except OpplanError as error:
        st.error(f"{plain(error)}{hint}")
        st.stop()
    st.markdown(f"{prefix}{summary(config)}")
    for note in notes:
        st.caption(note)
    return config


def _cancel_requested(slot: str, job: Job) -> float | None:
    """When the user pressed Cancel on this job (monotonic seconds), or None."""
    entry = st.session_state.get(f"{slot}:cancel_at")
    return entry[1] if entry and entry[0] == id(job) else None


def _request_cancel(slot: str, job: Job) -> None:
    st.session_state[f"{slot}:cancel_at"] = (id(job), time.monotonic())
    job.cancel()


def _job_progress_body(slot: str) -> None:
    job: Job | None = st.session_state.get(slot)
    if job is None:
        return
    if job.done:
        st.rerun()  # redraw the whole page with the result
    fraction, text = job.progress()
    requested = _cancel_requested(slot, job)
    if requested is not None:   # the worker has not stopped yet: say so rather than "running"
        text = (f"cancelling… {time.monotonic() - requested:.1f} s since Cancel; the best plan found so far "
                "will be kept")
    st.progress(fraction, text=text)
    if job.history:
        from opplan.viz import progress_figure

        st.plotly_chart(progress_figure(job.history, now=job.elapsed), key=f"{slot}:progress")
    if job.log:
        st.caption(" · ".join(job.log[-3:]))
    st.button("Cancelling…" if requested is not None else "Cancel", key=f"{slot}:cancel", on_click=_request_cancel,
              args=(slot, job), disabled=requested is not None,
              help="Stops the solver; the best plan found so far is kept.")


def job_progress(slot: str) -> None:
    """Live progress of the job in ``st.session_state[slot]``, polled every 0.3 s without
    rerunning the page; the page reruns once when the job ends."""
    st.fragment(_job_progress_body, run_every=0.3)(slot)


def job_failure(job: Job) -> None:
    """A failed job's one-line error, and for a bug its traceback in an expander."""
    st.error(plain(memory_text(job.error, job.config)))
    if job.crash:
        with st.expander("Details for a bug report"):
            st.code(job.crash)


def metric_cards(cards: Sequence[Card | None]) -> None:
    """Cards side by side in equal columns (None leaves its column empty)."""
    for column, card in zip(st.columns(len(cards)), cards, strict=False):
        if card is not None:
            column.metric(card.label, card.value, delta=card.delta, delta_color=card.delta_color,
                          delta_arrow=card.delta_arrow, border=True, help=card.help)


def export_buttons(fig: Any, plans: dict[str, Plan], config: dict[str, Any], key: str) -> None:
    """Plan JSON, Gantt HTML and PNG, metrics CSV. Files are built only when clicked."""
    names = list(plans)
    chosen = names[0]
    if len(names) > 1:
        chosen = st.selectbox("Plan to export as JSON", names, key=f"{key}:which", format_func=schedule_title)
    cols = st.columns(4)
    cols[0].download_button(f"Plan JSON ({schedule_title(chosen)})", data=lambda: plan_json(plans[chosen]),
                            file_name=f"{chosen}-plan.json", mime="application/json", on_click="ignore",
                            key=f"{key}:json")
    cols[1].download_button("Gantt chart (HTML)", data=lambda: figure_html(fig), file_name="gantt.html",
                            mime="text/html", on_click="ignore", key=f"{key}:html")
    cols[2].download_button("Gantt chart (PNG)", data=lambda: figure_png(fig), file_name="gantt.png",
                            mime="image/png", on_click="ignore", key=f"{key}:png")
    cols[3].download_button("Metrics (CSV)", data=lambda: metrics_csv(plans, config), file_name="metrics.csv",
                            mime="text/csv", on_click="ignore", key=f"{key}:csv")
    cols = st.columns(4)     # the chosen plan for PyTorch's pipeline runtime and for trace viewers
    reason = exports.torch_csv_reason(plans[chosen])
    cols[0].download_button("PyTorch schedule (CSV)", data=lambda: exports.torch_csv(plans[chosen]),
                            file_name=f"{chosen}-torch.csv", mime="text/csv", on_click="ignore", key=f"{key}:torch",
                            disabled=reason is not None, help=reason or "torch.distributed.pipelining's _load_csv")
    cols[1].download_button("Chrome trace (JSON)", data=lambda: exports.chrome_trace(plans[chosen]),
                            file_name=f"{chosen}-trace.json", mime="application/json", on_click="ignore",
                            key=f"{key}:trace", help="chrome://tracing or ui.perfetto.dev")
