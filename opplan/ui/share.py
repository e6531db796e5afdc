"""Keeping and sharing a view: the scenario as one file (model, cluster, caps, options), the main
settings as URL query parameters, and saved plan files loaded back for comparison.

A scenario file is JSON ``{"format": "opplan-scenario/1", "model": <model or null>, "model_label",
"settings": {...}}``; loading one checks every field and names the first bad one. Query
parameters carry only what fits in a link (a sample or the uniform pipeline, never an upload).
"""
from __future__ import annotations

import json
import math
from typing import Any

from opplan.cluster import ACCELERATORS
from opplan.errors import OpplanError
from opplan.granularity import GRANULARITIES
from opplan.schedule import Plan
from opplan.ui.caps import CAP_MODES, NO_CAP, ONE_VALUE, SAME_AS_DUALPIPE, cap_keys, scale_of
from opplan.ui.models import UNIFORM, load_model_text, sample_models, select_model, set_model

SCENARIO_FORMAT = "opplan-scenario/1"
NUMBERS = ("f", "b", "w", "fb", "overlap_factor", "cap_value", "cap_value_gb", "bandwidth", "latency",
           "time_limit", "mip_gap")
INTEGERS = ("devices", "microbatches")
LISTS = ("caps_per_device", "caps_per_device_gb", "speeds")
CHOICES: dict[str, tuple[str, ...]] = {
    "cap_mode": CAP_MODES, "granularity": tuple(GRANULARITIES),
    "accelerator": ("model default", *ACCELERATORS),
    "solver": ("auto", "gurobi", "highs"), "objective": ("makespan", "bubble", "memory"),
    "placement": ("auto", "contiguous", "mirrored", "v", "searched", "searched-mirrored"),
}
SETTINGS = (*INTEGERS, *NUMBERS, *LISTS, *CHOICES)


# --- the scenario file --------------------------------------------------------------------------
def scenario_json(values: dict[str, Any]) -> str:
    """The whole scenario as one JSON file (the model embedded, so the file stands alone)."""
    text = values.get("model_text")
    return json.dumps({"format": SCENARIO_FORMAT, "model_label": values.get("model_label", UNIFORM),
                       "model": None if text is None else json.loads(text),
                       "settings": {k: values[k] for k in SETTINGS if k in values}}, indent=1)


def _check(key: str, value: Any) -> Any:
    """One setting, checked: the value to store, or OpplanError naming the setting."""
    if key in INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OpplanError(f"setting {key} must be a positive whole number, got {value!r}")
        return value
    if key in NUMBERS:
        if value is None and key == "fb":
            return 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise OpplanError(f"setting {key} must be a non-negative number, got {value!r}")
        return float(value)
    if key in LISTS:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  and math.isfinite(v) and v > 0 for v in value):
            raise OpplanError(f"setting {key} must be a list of positive numbers, got {value!r}")
        return [float(v) for v in value]
    if value not in CHOICES[key]:
        raise OpplanError(f"setting {key} must be one of {', '.join(map(str, CHOICES[key]))}, got {value!r}")
    return value


def load_scenario(values: dict[str, Any], text: str, source: str = "scenario file") -> None:
    """Replace the session's scenario with a saved one; on any problem raise a one-line
    OpplanError naming it and leave the session unchanged."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise OpplanError(f"{source}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != SCENARIO_FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise OpplanError(f"{source}: not an opplan scenario (format {got!r}, expected {SCENARIO_FORMAT!r})")
    settings = data.get("settings")
    if not isinstance(settings, dict):
        raise OpplanError(f"{source}: field settings must be an object")
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise OpplanError(f"{source}: unknown setting {unknown[0]!r}")
    try:
        checked = {k: _check(k, v) for k, v in settings.items()}
    except OpplanError as error:
        raise OpplanError(f"{source}: {error}") from None
    model = data.get("model")
    label = data.get("model_label") if isinstance(data.get("model_label"), str) else "loaded model"
    model_text = None
    if model is not None:
        model_text = json.dumps(load_model_text(json.dumps(model), f"{source}: model").to_dict())
    set_model(values, model_text, UNIFORM if model_text is None else label)
    values.update(checked)


# --- the link ----------------------------------------------------------------------------------
def query_params(values: dict[str, Any]) -> dict[str, str]:
    """The main settings as query parameters; a model that is not a sample stays out of the link."""
    label = values.get("model_label", UNIFORM)
    params: dict[str, str] = {}
    if label == UNIFORM or label in sample_models():
        params["model"] = label
    params["devices"] = str(int(values["devices"]))
    params["microbatches"] = str(int(values["microbatches"]))
    mode = values.get("cap_mode", SAME_AS_DUALPIPE)
    if mode == NO_CAP:
        params["cap"] = "none"
    elif mode == ONE_VALUE:
        params["cap"] = _exact(float(values[cap_keys(scale_of(values).in_units)[0]]))   # in the model's scale
    elif mode == SAME_AS_DUALPIPE:
        params["cap"] = "dualpipe"
    if values.get("model_text") is None:
        params.update({k: f"{float(values[k]):g}" for k in ("f", "b", "w")})
    elif values.get("granularity", "stage") != "stage":
        params["granularity"] = values["granularity"]
    return params


def _exact(value: float) -> str:
    """A number as short as it reads back exactly (``9``, ``12.345678``), so a link loses no digit of a cap."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def apply_query_params(values: dict[str, Any], params: dict[str, str]) -> list[str]:
    """Set the store from a link's parameters; returns one line per parameter it ignored."""
    ignored: list[str] = []
    model = params.get("model")
    if model is not None:
        if model == UNIFORM or model in sample_models():
            select_model(values, model)
            values["model_label"] = values["_loaded_label"] = model
        else:
            ignored.append(f"model {model!r} is not a sample")
    for key in ("devices", "microbatches"):
        if key in params:
            try:
                values[key] = _check(key, int(params[key]))
            except (ValueError, OpplanError):
                ignored.append(f"{key}={params[key]!r} is not a positive whole number")
    for key in ("f", "b", "w"):
        if key in params:
            try:
                values[key] = _check(key, float(params[key]))
            except (ValueError, OpplanError):
                ignored.append(f"{key}={params[key]!r} is not a non-negative number")
    cap = params.get("cap")
    if cap is not None:
        if cap in ("dualpipe", "none"):
            values["cap_mode"] = SAME_AS_DUALPIPE if cap == "dualpipe" else NO_CAP
        else:
            try:
                value = float(cap)
                if not (math.isfinite(value) and value > 0):
                    raise ValueError
                values["cap_mode"] = ONE_VALUE
                values[cap_keys(scale_of(values).in_units)[0]] = value   # units or GB, as the model reads
            except ValueError:
                ignored.append(f"cap={cap!r} is not dualpipe, none or a positive number")
    if "granularity" in params:
        if params["granularity"] in GRANULARITIES:
            values["granularity"] = params["granularity"]
        else:
            ignored.append(f"granularity={params['granularity']!r} is not one of {', '.join(GRANULARITIES)}")
    return ignored


# --- saved plans --------------------------------------------------------------------------------
def load_plan_text(text: str, source: str) -> Plan:
    """A saved plan file, re-simulated and re-validated (nothing unchecked is shown)."""
    from opplan.simulate import make_plan

    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise OpplanError(f"{source}: not valid JSON ({error.msg} at line {error.lineno})") from None
    saved = Plan.from_dict(data, source)
    return make_plan(saved.problem, saved.order, saved.provenance)


def plan_mismatch(plan: Plan, config: dict[str, Any]) -> str | None:
    """Why a loaded plan is not comparable with the scenario on screen (None when it is)."""
    devices = plan.problem.num_devices
    microbatches = plan.provenance.microbatches or plan.problem.microbatches
    if (devices, microbatches) != (config["devices"], config["microbatches"]):
        return (f"made for {devices} devices and {microbatches} micro-batches; this scenario has "
                f"{config['devices']} and {config['microbatches']}")
    return None
