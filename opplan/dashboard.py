"""What the dashboard pages share: persistent UI state, the scenario built from it, cached
baseline runs, background planner jobs, tables and exports.

Pages stay thin: they draw widgets, call these helpers and render figures from ``opplan.viz``.
Everything here that is keyed by a scenario uses its *config*, a plain JSON-able dict, so caches
and session state never hold objects that compare by identity.
"""
from __future__ import annotations

import io
import json
import math
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from opplan import baselines
from opplan.cluster import ACCELERATORS, Link
from opplan.errors import OpplanError
from opplan.graph import ModelGraph, parse_model_text
from opplan.scenario import Scenario
from opplan.schedule import Plan

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_models"
UNIFORM = "uniform pipeline"
HOME_SCHEDULES = ("1f1b", "dualpipe")
DEFAULT_SCHEDULES = ("1f1b", "zb-h1", "dualpipe")
SOLVER_THREADS = 2           # HiGHS's thread pool is process-wide: one constant count (DESIGN §4)
GB = 1e9
DEFAULTS: dict[str, Any] = {
    "model_label": UNIFORM, "model_text": None, "f": 1.0, "b": 1.0, "w": 1.0, "fb": 0.0,
    "overlap_factor": 1.0, "devices": 8, "microbatches": 20, "accelerator": "model default",
    "cap_mode": "same as DualPipe's peak", "cap_value": 5.0, "cap_value_gb": 80.0, "caps_per_device": None,
    "caps_per_device_gb": None, "speeds": None,
    "bandwidth": 0.0, "latency": 0.0,
    "solver": "auto", "objective": "makespan", "time_limit": 10.0, "placement": "auto", "mip_gap": 0.0,
}
CAP_MODES = ("same as DualPipe's peak", "one value for every device", "per device", "no cap")


# --- persistent UI state --------------------------------------------------------------------
def _session() -> Any:
    import streamlit as st

    return st.session_state


def store() -> dict[str, Any]:
    """Values that outlive page switches (Streamlit drops a widget's key when its page is left)."""
    return _session().setdefault("opplan_store", dict(DEFAULTS))


def widget(factory: Callable[..., Any], key: str, label: str, **kwargs: Any) -> Any:
    """A widget seeded from and saved to :func:`store`, so its value survives page switches.

    The store is the source of truth: when code (an upload, the Home page) changes a value, the
    widget shows the new value on the next run.
    """
    values = store()
    last = values.setdefault("_widget_last", {})
    wkey = f"w:{key}"
    state = _session()
    current = values.get(key, DEFAULTS.get(key))
    options = kwargs.get("options")
    if options is not None:
        allowed = list(options)
        if isinstance(current, list):  # a multiselect: keep what is still offered
            current = [c for c in current if c in allowed]
        elif current not in allowed:
            current = allowed[0]
    if wkey not in state or (key in last and last[key] != current) or (
            options is not None and _not_offered(state[wkey], list(options))):
        state[wkey] = current
    value = factory(label, key=wkey, **kwargs)
    values[key] = value
    last[key] = value
    return value


def _not_offered(value: Any, allowed: list[Any]) -> bool:
    if isinstance(value, list):
        return any(v not in allowed for v in value)
    return value not in allowed


# --- models ---------------------------------------------------------------------------------
def sample_models() -> dict[str, Path]:
    """Sample model files by display name (file stem)."""
    return {p.stem: p for p in sorted(SAMPLE_DIR.glob("*.json"))}


def load_model_text(text: str, source: str) -> ModelGraph:
    """Parse a model; raises OpplanError with a one-line message naming the problem."""
    return _parse_cached(text, source)


_PARSED: "OrderedDict[tuple[str, str], ModelGraph]" = OrderedDict()


def _parse_cached(text: str, source: str) -> ModelGraph:
    key = (text, source)
    if key in _PARSED:
        _PARSED.move_to_end(key)
        return _PARSED[key]
    model = parse_model_text(text, source)
    _PARSED[key] = model
    while len(_PARSED) > 16:
        _PARSED.popitem(last=False)
    return model


def set_model(text: str | None, label: str) -> None:
    """Make ``text`` (canonical JSON, or None for the uniform pipeline) the current model."""
    values = store()
    values["model_text"] = text
    values["model_label"] = label
    values["_loaded_label"] = label
    if text is not None:
        model = load_model_text(text, label)
        values["accelerator"] = "model default" if model.accelerator else values.get("accelerator", "model default")


def select_model(label: str) -> None:
    """Load a sample model (or the uniform pipeline) by its display name."""
    if label == UNIFORM:
        set_model(None, UNIFORM)
        return
    samples = sample_models()
    if label not in samples:
        return  # a custom model already current: nothing to load
    model = load_model_text(samples[label].read_text(encoding="utf-8"), samples[label].name)
    set_model(json.dumps(model.to_dict()), label)


def current_model() -> ModelGraph | None:
    text = store().get("model_text")
    return None if text is None else load_model_text(text, store().get("model_label", "model"))


def model_version() -> str:
    """A short fingerprint of the current model (keys editors so a new model resets them)."""
    import hashlib

    return hashlib.md5(str(store().get("model_text")).encode("utf-8")).hexdigest()[:12]


def model_tables(model: ModelGraph) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Operators and edges as editable tables (one cost unit column, F/B/W columns)."""
    ops = pd.DataFrame([{
        "id": op.id, "kind": op.kind, "cost unit": op.costs.unit, "forward": op.costs.forward,
        "input_grad": op.costs.input_grad, "weight_grad": op.costs.weight_grad,
        "activation_bytes": op.activation_bytes, "param_bytes": op.param_bytes,
        "layer": op.layer, "group": op.group or "",
    } for op in model.operators])
    edges = pd.DataFrame([{"src": e.src, "dst": e.dst, "bytes": e.bytes} for e in model.edges],
                         columns=["src", "dst", "bytes"])
    return ops, edges


def _cell(value: Any) -> Any:
    """A table cell as JSON: NaN/None → None, numpy numbers → Python numbers."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def model_from_tables(base: ModelGraph, ops: pd.DataFrame, edges: pd.DataFrame) -> ModelGraph:
    """The edited model; parsing it through the same validator as files gives the same errors."""
    operators = []
    for i, row in enumerate(ops.to_dict("records")):
        if all(_cell(v) in (None, "") for v in row.values()):
            continue  # an empty row the editor added
        unit = _cell(row.get("cost unit")) or "time"
        entry: dict[str, Any] = {"id": _cell(row.get("id")), "kind": _cell(row.get("kind")) or "compute",
                                 str(unit): {p: _cell(row.get(p)) if _cell(row.get(p)) is not None else 0.0
                                             for p in ("forward", "input_grad", "weight_grad")},
                                 "activation_bytes": _cell(row.get("activation_bytes")) or 0.0,
                                 "param_bytes": _cell(row.get("param_bytes")) or 0.0}
        if entry["id"] is None:
            raise OpplanError(f"operator table row {i + 1}: id is empty")
        layer = _cell(row.get("layer"))
        if layer is not None:
            entry["layer"] = int(layer) if float(layer).is_integer() else layer
        if _cell(row.get("group")):
            entry["group"] = str(_cell(row.get("group")))
        operators.append(entry)
    edge_list = []
    for i, row in enumerate(edges.to_dict("records")):
        src, dst = _cell(row.get("src")), _cell(row.get("dst"))
        if src in (None, "") and dst in (None, ""):
            continue
        edge_list.append({"src": src, "dst": dst, "bytes": _cell(row.get("bytes")) or 0.0})
    data: dict[str, Any] = {"format": "opplan-model/1", "name": base.name, "operators": operators,
                            "edges": edge_list}
    if base.description:
        data["description"] = base.description
    if base.accelerator:
        data["accelerator"] = base.accelerator
    return parse_model_text(json.dumps(data), "edited model")


# --- the scenario ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Units:
    """How a scenario's numbers read: uniform pipelines in units of F, models in ms and GB."""

    time_label: str       # axis title
    time_unit: str        # short suffix
    mem_unit_bytes: float
    mem_label: str
    mem_short: str        # for narrow places (metric card labels)

    def time(self, x: float) -> str:
        return f"{x:.4g} {self.time_unit}".strip()

    def memory(self, nbytes: float) -> str:
        return f"{nbytes / self.mem_unit_bytes:.4g} {self.mem_label}" if math.isfinite(nbytes) else "no cap"


def units_for(config: dict[str, Any]) -> Units:
    if config["model"] is None:
        f = config["f"]
        return Units(f"time (F = {f:g})" if f == 1 else "time (same unit as F, B, W)", "", 1.0, "activation units",
                     "act. units")
    return Units("time (ms)", "ms", GB, "GB", "GB")


def base_config() -> dict[str, Any]:
    """The scenario as the user set it, with the cap still symbolic (see :func:`resolve_config`)."""
    v = store()
    devices = int(v["devices"])
    speeds = v.get("speeds")
    config = {
        "model": v.get("model_text"), "devices": devices, "microbatches": int(v["microbatches"]),
        "f": float(v["f"]), "b": float(v["b"]), "w": float(v["w"]),
        "fb": float(v["fb"]) if v.get("fb") else None, "overlap_factor": float(v.get("overlap_factor", 1.0)),
        "accelerator": None if v.get("accelerator") in (None, "model default") else v["accelerator"],
        "bandwidth": float(v["bandwidth"]) if v.get("bandwidth") else None, "latency": float(v.get("latency") or 0.0),
        "speeds": [float(s) for s in speeds] if speeds and len(speeds) == devices and any(s != 1 for s in speeds) else None,
        "caps": None,
    }
    return config


def scenario_from_config(config: dict[str, Any]) -> Scenario:
    """Plain config → Scenario (raises OpplanError on bad input)."""
    model = None if config["model"] is None else load_model_text(config["model"], "model")
    link = None
    if model is not None and (config.get("bandwidth") or config.get("latency")):
        default_bw = ACCELERATORS.get(config.get("accelerator") or model.accelerator or "H100")
        bandwidth = config.get("bandwidth") or (default_bw.link_gbytes_per_s if default_bw else 900.0)
        link = Link(bandwidth, config.get("latency") or 0.0)
    caps = config.get("caps")
    return Scenario(
        devices=config["devices"], microbatches=config["microbatches"], model=model,
        f=config["f"], b=config["b"], w=config["w"], fb=config.get("fb"),
        overlap_factor=config.get("overlap_factor", 1.0),
        memory_caps=tuple(caps) if caps else None, accelerator=config.get("accelerator"), link=link,
        speeds=tuple(config["speeds"]) if config.get("speeds") and model is not None else None,
    )


def config_key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def peak_of(plan: Plan, config: dict[str, Any]) -> float:
    """A plan's peak memory per device in the scenario's cap unit (units, or bytes for models)."""
    if config["model"] is None:
        acts = plan.metrics.peak_activations or plan.metrics.peak_activation_bytes
        return max(acts)
    return max(plan.metrics.peak_memory_bytes)


def cap_keys(uniform: bool) -> tuple[str, str]:
    """Store keys of the cap value and per-device caps: activation units and GB are kept apart,
    so switching between the uniform pipeline and a model does not turn 5 units into 5 GB."""
    return ("cap_value", "caps_per_device") if uniform else ("cap_value_gb", "caps_per_device_gb")


def resolve_config(config: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The config with numeric caps (units for uniform, bytes for models) and notes on how the
    cap was chosen. "Same as DualPipe's peak" runs DualPipe uncapped and takes its peak."""
    v = store()
    config = dict(config or base_config())
    mode = v.get("cap_mode", CAP_MODES[0])
    scale = 1.0 if config["model"] is None else GB
    notes: list[str] = []
    if mode == "same as DualPipe's peak":
        dual, why_not = baseline_plan(config, "dualpipe")
        reference, plan = ("DualPipe", dual) if dual is not None else ("1F1B", baseline_plan(config, "1f1b")[0])
        if plan is not None:
            peak = peak_of(plan, config)
            config["caps"] = [peak] * config["devices"]
            notes.append(f"Memory cap: {reference}'s peak, {units_for(config).memory(peak)} per device.")
            if dual is None:
                notes.append(f"DualPipe does not apply here ({why_not}); the cap follows 1F1B instead.")
    elif mode in ("one value for every device", "per device"):
        value_key, list_key = cap_keys(config["model"] is None)
        caps = v.get(list_key) or []
        if mode == "per device" and len(caps) == config["devices"]:
            config["caps"] = [float(c) * scale for c in caps]
        else:
            config["caps"] = [float(v[value_key]) * scale] * config["devices"]
    return config, [n for n in notes if n]


# --- baselines (cached) ---------------------------------------------------------------------
_BASELINES: "OrderedDict[tuple[str, str], tuple[Plan | None, str | None]]" = OrderedDict()
_BASELINE_LOCK = threading.Lock()


def baseline_names() -> list[str]:
    from opplan import baselines

    return list(baselines.NAMES)


def baseline_plan(config: dict[str, Any], name: str) -> tuple[Plan | None, str | None]:
    """(plan, None) or (None, one-line reason) — precondition errors are shown, never raised.

    Cached process-wide on the plain config: baselines are deterministic and fast, and every page
    and every session asks for the same few.
    """
    key = (config_key(config), name)
    with _BASELINE_LOCK:
        if key in _BASELINES:
            _BASELINES.move_to_end(key)
            return _BASELINES[key]
    try:
        plan = baselines.run_on(scenario_from_config(config), name)
        result: tuple[Plan | None, str | None] = (plan, None)
    except OpplanError as error:
        result = (None, str(error))
    with _BASELINE_LOCK:
        _BASELINES[key] = result
        while len(_BASELINES) > 256:
            _BASELINES.popitem(last=False)
    return result


# --- background jobs ------------------------------------------------------------------------
@dataclass
class Job:
    """A long computation on a worker thread. The thread only writes these fields; pages read
    them from a polling fragment. Never call ``st.*`` from the thread."""

    kind: str
    key: str
    config: dict[str, Any]
    options: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    history: list[tuple[float, float, float]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: str | None = None
    crash: str | None = None          # traceback of an unexpected failure (a bug, shown in full)
    finished: float | None = None
    thread: threading.Thread | None = None

    @property
    def done(self) -> bool:
        return self.finished is not None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def cancel(self) -> None:
        self.cancel_event.set()

    def _progress(self, p: Any) -> None:
        # the planner's own clock restarts per placement; the job's clock does not
        self.history.append((time.monotonic() - self.started, float(p.incumbent), float(p.bound)))

    def _run(self, work: Callable[["Job"], Any]) -> None:
        try:
            self.result = work(self)
        except OpplanError as error:
            self.error = str(error)
        except Exception:  # a bug in the library: keep the page alive and show the traceback
            self.crash = traceback.format_exc()
            self.error = "internal error: " + self.crash.strip().splitlines()[-1]
        finally:
            self.finished = time.monotonic()


def start_job(kind: str, config: dict[str, Any], options: dict[str, Any], work: Callable[[Job], Any]) -> Job:
    job = Job(kind, config_key(config) + json.dumps(options, sort_keys=True), config, options)
    job.thread = threading.Thread(target=job._run, args=(work,), name=f"opplan-{kind}", daemon=True)
    job.thread.start()
    return job


def planner_options(options: dict[str, Any], job: Job | None = None) -> Any:
    from opplan.planner.api import PlannerOptions

    return PlannerOptions(
        solver=options["solver"], objective=options["objective"], time_limit=float(options["time_limit"]),
        mip_gap=float(options.get("mip_gap", 0.0)), threads=SOLVER_THREADS, placement=options["placement"],
        progress=job._progress if job else None, should_stop=job.cancel_event.is_set if job else None,
        log=job.log.append if job else None,
    )


_PLANS: "OrderedDict[str, Plan]" = OrderedDict()
_PLANS_LOCK = threading.Lock()


def cached_opplan(config: dict[str, Any], options: dict[str, Any]) -> Plan | None:
    """A finished planner result for exactly this scenario and options, if any session made one."""
    key = config_key(config) + json.dumps(options, sort_keys=True)
    with _PLANS_LOCK:
        return _PLANS.get(key)


def _remember_plan(key: str, plan: Plan) -> None:
    with _PLANS_LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > 64:
            _PLANS.popitem(last=False)


def start_solve(config: dict[str, Any], options: dict[str, Any]) -> Job:
    """Run the planner on a worker thread; the finished plan is also cached for other pages."""
    from opplan.planner.api import solve as run_planner

    def work(job: Job) -> Plan:
        scenario = scenario_from_config(config)
        result = run_planner(scenario, planner_options(options, job))
        if not job.cancel_event.is_set():
            _remember_plan(job.key, result)
        return result

    return start_job("solve", config, options, work)


def start_sweep(config: dict[str, Any], options: dict[str, Any], caps: list[float]) -> Job:
    """opplan at several memory caps (the Pareto curve); points land in ``job.result`` as they come."""
    from opplan.planner.api import solve as run_planner

    def work(job: Job) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = []
        job.result = points
        for k, cap in enumerate(caps):
            if job.cancel_event.is_set():
                break
            capped = dict(config, caps=[cap] * config["devices"])
            job.log.append(f"cap {cap:.4g}: solving ({k + 1}/{len(caps)})")
            try:
                result = run_planner(scenario_from_config(capped), planner_options(options, None))
            except OpplanError as error:
                job.log.append(f"cap {cap:.4g}: {error}")
                continue
            points.append({"schedule": "opplan", "cap": cap, "peak": peak_of(result, capped),
                           "bubble_ratio": result.metrics.bubble_ratio, "makespan": result.makespan})
        return points

    return start_job("sweep", config, options, work)


# --- tables and exports ---------------------------------------------------------------------
def metrics_table(plans: dict[str, Plan], config: dict[str, Any]) -> pd.DataFrame:
    """One row per schedule: the numbers every comparison reports, in the scenario's units."""
    units = units_for(config)
    scale = 1.0 if config["model"] is None else GB
    rows = []
    for name, plan in plans.items():
        m = plan.metrics
        peak = peak_of(plan, config)
        caps = [c for c in m.memory_cap_bytes if c is not None and math.isfinite(c)]
        rows.append({
            "schedule": name,
            f"iteration{(' (' + units.time_unit + ')') if units.time_unit else ''}": m.makespan,
            "bubble ratio (%)": 100 * m.bubble_ratio,
            f"total idle{(' (' + units.time_unit + ')') if units.time_unit else ''}": sum(m.bubble),
            f"max idle per device{(' (' + units.time_unit + ')') if units.time_unit else ''}": max(m.bubble),
            f"peak memory ({units.mem_label})": peak / scale,
            f"cap ({units.mem_label})": (min(caps) / scale) if caps else None,
            "lower bound": m.lower_bound,
            "valid": plan.valid,
        })
    return pd.DataFrame(rows)


def metrics_csv(plans: dict[str, Plan], config: dict[str, Any]) -> str:
    """Per schedule and device: bubble, busy time, peak memory — the raw numbers, for spreadsheets."""
    rows = []
    for name, plan in plans.items():
        m = plan.metrics
        for d, dev in enumerate(plan.problem.devices):
            rows.append({"schedule": name, "device": dev.name, "makespan": m.makespan,
                         "bubble_ratio": m.bubble_ratio, "busy": m.busy[d], "bubble": m.bubble[d],
                         "peak_activation_bytes": m.peak_activation_bytes[d],
                         "param_bytes": m.param_bytes[d], "peak_memory_bytes": m.peak_memory_bytes[d],
                         "memory_cap_bytes": m.memory_cap_bytes[d], "valid": plan.valid})
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return buffer.getvalue()


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=1)


def figure_png(fig: Any, width: int = 1400) -> bytes:
    """A static PNG through kaleido (which drives the system Chromium)."""
    return fig.to_image(format="png", width=width, height=int(fig.layout.height or 600), scale=1)


def figure_html(fig: Any) -> str:
    return fig.to_html(include_plotlyjs="cdn", full_html=True)


def idle_removed(opplan: Plan, other: Plan) -> float | None:
    """Share of ``other``'s total idle time that opplan removes (negative if it adds idle)."""
    base = sum(other.metrics.bubble)
    if base <= 1e-12:
        return None
    return 1.0 - sum(opplan.metrics.bubble) / base


def schedule_title(name: str) -> str:
    titles = {"opplan": "opplan", "gpipe": "GPipe", "1f1b": "1F1B", "interleaved-1f1b": "interleaved 1F1B",
              "zb-h1": "ZB-H1", "zb-h2": "ZB-H2", "zb-v": "ZB-V", "dualpipe": "DualPipe", "dualpipev": "DualPipeV"}
    return titles.get(name, name)


# --- shared page pieces -----------------------------------------------------------------------
# The two bits of Streamlit that several pages draw identically live here so they cannot drift.
def scenario_summary(config: dict[str, Any]) -> str:
    """One line naming the scenario, for captions and sidebars."""
    units = units_for(config)
    model = store().get("model_label", UNIFORM) if config["model"] is not None else UNIFORM
    caps = config.get("caps")
    if caps:
        cap = units.memory(caps[0]) if len(set(caps)) == 1 else "per device " + ", ".join(
            f"{c / units.mem_unit_bytes:.3g}" for c in caps)
    elif config["model"] is not None:
        cap = "the accelerator's memory"
    else:
        cap = "none"
    return f"{model} · {config['devices']} devices · {config['microbatches']} micro-batches · memory cap {cap}"


def _job_progress_body(slot: str) -> None:
    import streamlit as st

    job: Job | None = st.session_state.get(slot)
    if job is None:
        return
    if job.done:
        st.rerun()  # redraw the whole page with the result
    limit = float(job.options.get("time_limit", 10.0))
    total = limit * max(1, len(job.options.get("caps", [0])))
    incumbent = next((h[1] for h in reversed(job.history) if math.isfinite(h[1])), None)
    bound = next((h[2] for h in reversed(job.history) if math.isfinite(h[2])), None)
    text = f"{'planner' if job.kind == 'solve' else 'sweep'} running · {job.elapsed:.1f} s of up to {total:.0f} s"
    if incumbent is not None or bound is not None:  # best plan of the whole run; bound of the current placement
        text += " · " + " · ".join(
            part for part in (f"best iteration so far {incumbent:.4g}" if incumbent is not None else "",
                              f"bound {bound:.4g}" if bound is not None else "") if part)
    st.progress(min(0.99, job.elapsed / total), text=text)
    if job.history:
        from opplan.viz import progress_figure

        st.plotly_chart(progress_figure(job.history), key=f"{slot}:progress")
    if job.log:
        st.caption(" · ".join(job.log[-3:]))
    st.button("Cancel", key=f"{slot}:cancel", on_click=job.cancel, disabled=job.cancel_event.is_set(),
              help="Stops the solver; the best plan found so far is kept.")


def scenario_header() -> dict[str, Any]:
    """The current scenario's config, summarised at the top of a page; stops the page with one
    line when the scenario is invalid (the user fixes it on the Model or Cluster page)."""
    import streamlit as st

    try:
        config, notes = resolve_config()
        scenario_from_config(config)
    except OpplanError as error:
        st.error(f"{error} — fix it on the Model or Cluster page.")
        st.stop()
    st.markdown(f"**Scenario:** {scenario_summary(config)}")
    for note in notes:
        st.caption(note)
    return config


def job_progress(slot: str) -> None:
    """Live progress of the job in ``st.session_state[slot]``, polled twice a second without
    rerunning the page; the page reruns once when the job ends."""
    import streamlit as st

    st.fragment(_job_progress_body, run_every=0.5)(slot)


def remember_result(job: Job) -> None:
    """Make a finished planner job's plan the scenario's current opplan plan (Compare shows it)."""
    if job.kind == "solve" and job.done and job.result is not None:
        store()["opplan_result"] = {"key": config_key(job.config), "plan": job.result, "options": job.options}


def latest_opplan(config: dict[str, Any]) -> Plan | None:
    """The last opplan plan solved for exactly this scenario in this session, if any."""
    entry = store().get("opplan_result")
    return entry["plan"] if entry and entry["key"] == config_key(config) else None


def export_buttons(fig: Any, plans: dict[str, Plan], config: dict[str, Any], key: str) -> None:
    """Plan JSON, Gantt HTML and PNG, metrics CSV. Files are built only when clicked."""
    import streamlit as st

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
