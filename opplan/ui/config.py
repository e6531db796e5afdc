"""The scenario as the dashboard holds it: the store's defaults, and the *config*, a plain
JSON-able dict built from the store and turned into an ``opplan.scenario.Scenario`` when needed.

Caches and session state are keyed by the config, never by objects that compare by identity.
Memory caps in a config are numbers per device: activation units for the uniform pipeline,
bytes for a model graph (``None``: no cap, or the accelerator's memory for a model). How memory
*reads* (GB, or activation units for the uniform pipeline and models written in abstract units)
is decided once per scenario by :func:`memory_scale`; every input, card, table, chart and link
converts through it, so labels and numbers cannot disagree.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from opplan.cluster import ACCELERATORS, Link
from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.scenario import Scenario
from opplan.schedule import Plan
from opplan.ui.models import UNIFORM, load_model_text
from opplan.units import MemoryCap, activation_unit_bytes, written_in_abstract_units

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


GB_LABEL, UNITS_LABEL = "GB", "activation units"
DISPLAY_DIGITS = 12             # significant digits kept when bytes turn back into display units


@dataclass(frozen=True)
class MemoryScale:
    """How one scenario's memory reads: ``unit_bytes`` bytes per displayed unit, named ``label``
    (``short`` where space is tight). The cap input, cards, tables, charts and links all use it."""

    unit_bytes: float
    label: str
    short: str

    def __post_init__(self) -> None:
        if not (isinstance(self.unit_bytes, (int, float)) and 0 < self.unit_bytes < math.inf):
            raise OpplanError(f"memory display unit must be a positive number of bytes, got {self.unit_bytes!r}")
        if self.label not in (GB_LABEL, UNITS_LABEL):
            raise OpplanError(f"memory display label must be {GB_LABEL} or {UNITS_LABEL}, got {self.label!r}")

    @property
    def in_units(self) -> bool:
        """True when memory reads in activation units (the cap input keeps its own value then)."""
        return self.label == UNITS_LABEL

    @property
    def step(self) -> float:
        """The cap input's step: one activation unit, or 5 GB."""
        return 1.0 if self.in_units else 5.0

    def to_bytes(self, shown: float) -> float:
        """A displayed (or typed) value in bytes."""
        return float(shown) * self.unit_bytes

    def to_display(self, n_bytes: float) -> float:
        """Bytes in the displayed unit, to 12 significant digits so a value the user typed reads back
        exactly (9 units → 18 bytes → 9, not 8.999999999999998); infinity stays infinity."""
        value = float(n_bytes) / self.unit_bytes
        return float(f"{value:.{DISPLAY_DIGITS}g}") if math.isfinite(value) else value


ACTIVATION_UNITS = MemoryScale(1.0, UNITS_LABEL, "act. units")
GIGABYTES = MemoryScale(GB, GB_LABEL, GB_LABEL)


def in_abstract_units(model: ModelGraph) -> bool:
    """True for a model written in abstract units rather than bytes (``units.written_in_abstract_units``)."""
    return written_in_abstract_units(sum(op.activation_bytes for op in model.operators),
                                     sum(op.param_bytes for op in model.operators))


def memory_scale(config: dict[str, Any]) -> MemoryScale:
    """The one memory display scale of a scenario: activation units for the uniform pipeline (one
    unit per "byte") and for models in abstract units (one unit = the model's activation bytes / P,
    one micro-batch of one stage, as ``--memory-cap-activations`` means it); GB for real models."""
    if config["model"] is None:
        return ACTIVATION_UNITS
    try:
        model = load_model_text(config["model"], "model")
    except OpplanError:
        return GIGABYTES   # the page reports the broken model; its memory reads as for any model
    if not in_abstract_units(model):
        return GIGABYTES
    return MemoryScale(activation_unit_bytes(model, max(1, int(config["devices"]))), UNITS_LABEL, "act. units")


def cap_scale(config: dict[str, Any]) -> float:
    """Bytes per cap unit of the config (see :func:`memory_scale`)."""
    return memory_scale(config).unit_bytes


def peak_of(plan: Plan, config: dict[str, Any]) -> float:
    """A plan's peak memory per device in the scenario's cap unit (units, or bytes for models)."""
    if config["model"] is None:
        acts = plan.metrics.peak_activations or plan.metrics.peak_activation_bytes
        return max(acts)
    return max(plan.metrics.peak_memory_bytes)


def first_cap(config: dict[str, Any]) -> float | None:
    """Device 0's cap (what the metric cards show), or None without caps."""
    return config["caps"][0] if config.get("caps") else None
