"""The scenario as the dashboard holds it: the store's defaults, and the *config*, a plain
JSON-able dict built from the store and turned into an ``opplan.scenario.Scenario`` when needed.

Caches and session state are keyed by the config, never by objects that compare by identity.
Memory caps in a config are numbers per device: activation units for the uniform pipeline,
bytes for a model graph (``None``: no cap, or the accelerator's memory for a model).
"""
from __future__ import annotations

import json
from typing import Any

from opplan.cluster import ACCELERATORS, Link
from opplan.scenario import Scenario
from opplan.schedule import Plan
from opplan.ui.models import UNIFORM, load_model_text
from opplan.units import MemoryCap

GB = 1e9
DEFAULTS: dict[str, Any] = {
    "model_label": UNIFORM, "_loaded_label": UNIFORM, "model_text": None, "f": 1.0, "b": 1.0, "w": 1.0, "fb": 0.0,
    "overlap_factor": 1.0, "devices": 8, "microbatches": 20, "accelerator": "model default",
    "cap_mode": "same as DualPipe's peak", "cap_value": 5.0, "cap_value_gb": 80.0, "caps_per_device": None,
    "caps_per_device_gb": None, "speeds": None,
    "bandwidth": 0.0, "latency": 0.0,
    "solver": "auto", "objective": "makespan", "time_limit": 10.0, "placement": "auto", "mip_gap": 0.0,
    "granularity": "stage",
}


def base_config(values: dict[str, Any]) -> dict[str, Any]:
    """The scenario as the user set it, with the cap still symbolic (``opplan.ui.caps`` resolves it)."""
    devices = int(values["devices"])
    speeds = values.get("speeds")
    return {
        "model": values.get("model_text"), "devices": devices, "microbatches": int(values["microbatches"]),
        "f": float(values["f"]), "b": float(values["b"]), "w": float(values["w"]),
        "fb": float(values["fb"]) if values.get("fb") else None,
        "overlap_factor": float(values.get("overlap_factor", 1.0)),
        "accelerator": None if values.get("accelerator") in (None, "model default") else values["accelerator"],
        "bandwidth": float(values["bandwidth"]) if values.get("bandwidth") else None,
        "latency": float(values.get("latency") or 0.0),
        "speeds": [float(s) for s in speeds] if speeds and len(speeds) == devices and any(s != 1 for s in speeds)
        else None,
        "caps": None,
        # the uniform pipeline's stages are single operators: only model graphs split further
        "granularity": values.get("granularity", "stage") if values.get("model_text") is not None else "stage",
    }


def scenario_from_config(config: dict[str, Any]) -> Scenario:
    """Plain config → Scenario (raises OpplanError on bad input)."""
    model = None if config["model"] is None else load_model_text(config["model"], "model")
    link = None
    if model is not None and (config.get("bandwidth") or config.get("latency")):
        default_bw = ACCELERATORS.get(config.get("accelerator") or model.accelerator or "H100")
        bandwidth = config.get("bandwidth") or (default_bw.link_gbytes_per_s if default_bw else 900.0)
        link = Link(bandwidth, config.get("latency") or 0.0)
    caps = config.get("caps")
    cap = None
    if caps:    # the config holds activation units for the uniform pipeline, bytes for a model
        cap = MemoryCap(tuple(caps), "activations" if model is None else "bytes")
    return Scenario.from_options(
        model, devices=config["devices"], microbatches=config["microbatches"],
        f=config["f"], b=config["b"], w=config["w"], fb=config.get("fb") if model is None else None,
        overlap_factor=config.get("overlap_factor", 1.0) if model is not None else 1.0,
        memory_cap=cap, accelerator=config.get("accelerator"), link=link,
        speeds=tuple(config["speeds"]) if config.get("speeds") and model is not None else None,
        granularity=config.get("granularity", "stage") if model is not None else "stage",
    )


def config_key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


def uncapped(config: dict[str, Any]) -> dict[str, Any]:
    """The same scenario without memory caps."""
    return dict(config, caps=None)


def cap_scale(config: dict[str, Any]) -> float:
    """Bytes per cap unit: 1 for the uniform pipeline (activation units), 1e9 for models (GB)."""
    return 1.0 if config["model"] is None else GB


def peak_of(plan: Plan, config: dict[str, Any]) -> float:
    """A plan's peak memory per device in the scenario's cap unit (units, or bytes for models)."""
    if config["model"] is None:
        acts = plan.metrics.peak_activations or plan.metrics.peak_activation_bytes
        return max(acts)
    return max(plan.metrics.peak_memory_bytes)


def first_cap(config: dict[str, Any]) -> float | None:
    """Device 0's cap (what the metric cards show), or None without caps."""
    return config["caps"][0] if config.get("caps") else None
