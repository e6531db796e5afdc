"""Memory caps and per-device settings: the cap modes, turning the chosen mode into numbers
(resolution), and the Cluster page's table of device speeds and caps."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from opplan.ui.config import MemoryScale, base_config, memory_scale, peak_of
from opplan.ui.display import units_for
from opplan.ui.plans import baseline_plan

SAME_AS_DUALPIPE, ONE_VALUE, PER_DEVICE, NO_CAP = (
    "same as DualPipe's peak", "one value for every device", "per device", "no cap")
CAP_MODES = (SAME_AS_DUALPIPE, ONE_VALUE, PER_DEVICE, NO_CAP)
HOME_CAP_MODES = (SAME_AS_DUALPIPE, ONE_VALUE, NO_CAP)   # the Home page has no per-device table
SPEED = "speed (× nominal)"


def cap_keys(in_units: bool) -> tuple[str, str]:
    """Store keys of the cap value and per-device caps: activation units and GB are kept apart,
    so switching between a model in units and one in GB does not turn 5 units into 5 GB (and each
    keeps what the user typed)."""
    return ("cap_value", "caps_per_device") if in_units else ("cap_value_gb", "caps_per_device_gb")


def scale_of(values: dict[str, Any]) -> MemoryScale:
    """The memory scale of the store's current scenario (model and devices)."""
    return memory_scale(base_config(values))


def cap_unit(values: dict[str, Any]) -> str:
    """The unit caps are entered in: activation units (uniform pipeline, models in abstract units) or GB."""
    return scale_of(values).label


@dataclass(frozen=True)
class CapInput:
    """The cap's number input on Home and Cluster: the store key it edits, its label and step."""

    key: str
    label: str
    step: float
    help: str


def cap_input(values: dict[str, Any]) -> CapInput:
    """The cap input for the current model, in its memory scale (one place, so Home and Cluster agree)."""
    scale = scale_of(values)
    if scale.in_units:
        what = ("one micro-batch of one stage" if values.get("model_text") is None
                else "one micro-batch of one stage: the model's activations ÷ devices")
        why = f"In activation units ({what})."
    else:
        why = "In GB (parameters, gradients and optimizer state included)."
    return CapInput(cap_keys(scale.in_units)[0], f"Cap ({scale.label})", scale.step, why)


def resolve_config(values: dict[str, Any], config: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The config with numeric caps (units for uniform, bytes for models: the store's values times
    the scenario's memory scale) and notes on how the
    cap was chosen. "Same as DualPipe's peak" runs DualPipe uncapped and takes its peak."""
    config = dict(config or base_config(values))
    mode = values.get("cap_mode", CAP_MODES[0])
    notes: list[str] = []
    if mode == SAME_AS_DUALPIPE:
        dual, why_not = baseline_plan(config, "dualpipe")
        reference, plan = ("DualPipe", dual) if dual is not None else ("1F1B", baseline_plan(config, "1f1b")[0])
        if plan is not None:
            peak = peak_of(plan, config)
            config["caps"] = [peak] * config["devices"]
            notes.append(f"Memory cap: {reference}'s peak, {units_for(config).memory(peak)} per device.")
            if dual is None:
                notes.append(f"DualPipe does not apply here ({why_not}); the cap follows 1F1B instead.")
    elif mode in (ONE_VALUE, PER_DEVICE):
        scale = memory_scale(config)
        value_key, list_key = cap_keys(scale.in_units)
        caps = values.get(list_key) or []
        if mode == PER_DEVICE and len(caps) == config["devices"]:
            config["caps"] = [scale.to_bytes(c) for c in caps]
        else:
            config["caps"] = [scale.to_bytes(values[value_key])] * config["devices"]
    return config, [n for n in notes if n]


def device_table(values: dict[str, Any], devices: int, active_caps: list[float] | None = None) -> pd.DataFrame:
    """One row per device: its speed and its cap (padded to ``devices`` rows). Outside the
    per-device mode the cap column shows ``active_caps`` — the caps in force, in the config's unit
    (units or bytes), None for no cap — so the table never shows 80 GB while 60 GB applies."""
    scale = scale_of(values)
    value_key, list_key = cap_keys(scale.in_units)
    speeds = values.get("speeds") or []
    if len(speeds) != devices:
        speeds = (list(speeds) + [1.0] * devices)[:devices]
    if values.get("cap_mode") == PER_DEVICE:
        caps = values.get(list_key) or []
        if len(caps) != devices:
            caps = (list(caps) + [float(values[value_key])] * devices)[:devices]
    else:
        caps = [scale.to_display(c) for c in active_caps] if active_caps else [None] * devices
    return pd.DataFrame({"device": [f"dev{d}" for d in range(devices)], SPEED: speeds,
                         cap_column(scale): caps})


def cap_column(scale: MemoryScale) -> str:
    """The device table's cap column, named with its unit."""
    return f"memory cap ({scale.label})"


def save_device_table(values: dict[str, Any], edited: pd.DataFrame) -> None:
    """Store the edited speeds, and in the per-device mode the caps (an emptied cell falls back to
    1× or the common cap)."""
    scale = scale_of(values)
    value_key, list_key = cap_keys(scale.in_units)
    values["speeds"] = [float(x) if x == x else 1.0 for x in edited[SPEED]]
    if values.get("cap_mode") == PER_DEVICE:
        values[list_key] = [float(x) if x is not None and x == x else float(values[value_key])
                            for x in edited[cap_column(scale)]]
