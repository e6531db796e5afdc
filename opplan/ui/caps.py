"""Memory caps and per-device settings: the cap modes, turning the chosen mode into numbers
(resolution), and the Cluster page's table of device speeds and caps."""
from __future__ import annotations

from typing import Any

import pandas as pd

from opplan.ui.config import base_config, cap_scale, peak_of
from opplan.ui.display import units_for
from opplan.ui.plans import baseline_plan

SAME_AS_DUALPIPE, ONE_VALUE, PER_DEVICE, NO_CAP = (
    "same as DualPipe's peak", "one value for every device", "per device", "no cap")
CAP_MODES = (SAME_AS_DUALPIPE, ONE_VALUE, PER_DEVICE, NO_CAP)
HOME_CAP_MODES = (SAME_AS_DUALPIPE, ONE_VALUE, NO_CAP)   # the Home page has no per-device table
SPEED = "speed (× nominal)"


def cap_keys(uniform: bool) -> tuple[str, str]:
    """Store keys of the cap value and per-device caps: activation units and GB are kept apart,
    so switching between the uniform pipeline and a model does not turn 5 units into 5 GB."""
    return ("cap_value", "caps_per_device") if uniform else ("cap_value_gb", "caps_per_device_gb")


def cap_unit(values: dict[str, Any]) -> str:
    """The unit caps are entered in: activation units (uniform pipeline) or GB (model graphs)."""
    return "activation units" if values.get("model_text") is None else "GB"


def resolve_config(values: dict[str, Any], config: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The config with numeric caps (units for uniform, bytes for models) and notes on how the
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
        value_key, list_key = cap_keys(config["model"] is None)
        caps = values.get(list_key) or []
        scale = cap_scale(config)
        if mode == PER_DEVICE and len(caps) == config["devices"]:
            config["caps"] = [float(c) * scale for c in caps]
        else:
            config["caps"] = [float(values[value_key]) * scale] * config["devices"]
    return config, [n for n in notes if n]


def device_table(values: dict[str, Any], devices: int, active_caps: list[float] | None = None) -> pd.DataFrame:
    """One row per device: its speed and its cap (padded to ``devices`` rows). Outside the
    per-device mode the cap column shows ``active_caps`` — the caps in force, in the config's unit
    (units or bytes), None for no cap — so the table never shows 80 GB while 60 GB applies."""
    unit = cap_unit(values)
    value_key, list_key = cap_keys(unit != "GB")
    speeds = values.get("speeds") or []
    if len(speeds) != devices:
        speeds = (list(speeds) + [1.0] * devices)[:devices]
    if values.get("cap_mode") == PER_DEVICE:
        caps = values.get(list_key) or []
        if len(caps) != devices:
            caps = (list(caps) + [float(values[value_key])] * devices)[:devices]
    else:
        scale = 1.0 if unit != "GB" else 1e9
        caps = [c / scale for c in active_caps] if active_caps else [None] * devices
    return pd.DataFrame({"device": [f"dev{d}" for d in range(devices)], SPEED: speeds,
                         f"memory cap ({unit})": caps})


def save_device_table(values: dict[str, Any], edited: pd.DataFrame) -> None:
    """Store the edited speeds, and in the per-device mode the caps (an emptied cell falls back to
    1× or the common cap)."""
    unit = cap_unit(values)
    value_key, list_key = cap_keys(unit != "GB")
    values["speeds"] = [float(x) if x == x else 1.0 for x in edited[SPEED]]
    if values.get("cap_mode") == PER_DEVICE:
        values[list_key] = [float(x) if x is not None and x == x else float(values[value_key])
                            for x in edited[f"memory cap ({unit})"]]
