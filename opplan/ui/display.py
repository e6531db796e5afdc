"""How the dashboard writes numbers and names: a scenario's units (the uniform pipeline in units
of F and activation units, model graphs in ms and in the memory scale ``config.memory_scale``
picks: GB, or activation units for a model in abstract units), schedule titles, the scenario summary."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from opplan.ui.config import MemoryScale, memory_scale
from opplan.ui.models import UNIFORM
from opplan.ui.text import plain
from opplan.units import NO_CAP, format_bytes

TITLES = {"opplan": "opplan", "gpipe": "GPipe", "1f1b": "1F1B", "interleaved-1f1b": "interleaved 1F1B",
          "zb-h1": "ZB-H1", "zb-h2": "ZB-H2", "zb-v": "ZB-V", "dualpipe": "DualPipe", "dualpipev": "DualPipeV"}


@dataclass(frozen=True)
class Units:
    """How a scenario's numbers read: uniform pipelines in units of F, models in ms; memory in the
    scenario's :class:`MemoryScale` (the ``mem_*`` properties are its fields)."""

    time_label: str       # axis title
    time_unit: str        # short suffix
    scale: MemoryScale

    @property
    def mem_unit_bytes(self) -> float:
        return self.scale.unit_bytes

    @property
    def mem_label(self) -> str:
        return self.scale.label

    @property
    def mem_short(self) -> str:   # for narrow places (metric card labels)
        return self.scale.short

    def time(self, x: float) -> str:
        return f"{x:.4g} {self.time_unit}".strip()

    def memory(self, value: float) -> str:
        """A cap or peak (``value`` in bytes, as configs hold them) written in the scenario's scale:
        ``80.00 GB``, or ``9 activation units``."""
        if not self.scale.in_units:
            return format_bytes(value)
        if not math.isfinite(value):
            return NO_CAP
        shown = self.scale.to_display(value)
        return f"{shown:.4g} {self.mem_label if shown != 1 else 'activation unit'}"

    @property
    def time_suffix(self) -> str:
        """`` (ms)`` for labels, or nothing when times are in units of F."""
        return f" ({self.time_unit})" if self.time_unit else ""


def units_for(config: dict[str, Any]) -> Units:
    """The scenario's units: time from the model (units of F, or ms), memory from :func:`memory_scale`."""
    if config["model"] is None:
        f = config["f"]
        return Units(f"time (F = {f:g})" if f == 1 else "time (same unit as F, B, W)", "", memory_scale(config))
    return Units("time (ms)", "ms", memory_scale(config))


_BYTES = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?(?:e[-+]?\d+)?) B\b")   # "2 B": format_bytes below 1 KB


def memory_text(text: str, config: dict[str, Any]) -> str:
    """A planner message in the scenario's memory scale: for a model in abstract units, its byte
    amounts ("cap 1 B", as ``format_bytes`` writes them) become activation units, so an error
    says "0.5 activation units" where every other place says units. Other text is unchanged."""
    units = units_for(config)
    if config["model"] is None or not units.scale.in_units:
        return text
    return _BYTES.sub(lambda m: units.memory(float(m.group(1))), text)


def schedule_title(name: str) -> str:
    return TITLES.get(name, name)


def scenario_summary(config: dict[str, Any], model_label: str) -> str:
    """One line naming the scenario, for captions and sidebars."""
    units = units_for(config)
    model = plain(model_label) if config["model"] is not None else UNIFORM
    caps = config.get("caps")
    if caps:
        cap = units.memory(caps[0]) if len(set(caps)) == 1 else "per device " + ", ".join(
            f"{units.scale.to_display(c):.3g}" for c in caps) + f" {units.mem_short}"
    elif config["model"] is not None:
        cap = "the accelerator's memory"
    else:
        cap = "none"
    level = "" if config.get("granularity", "stage") == "stage" else f" · {config['granularity']} level"
    return (f"{model} · {config['devices']} devices · {config['microbatches']} micro-batches · memory cap {cap}"
            f"{level}")
