"""Memory sizes in one place: how bytes are written and read, what one activation unit of a model
is, and memory caps as users give them (in activation units or in bytes).

Every front end and every message formats and parses bytes here, so "80GB" typed into the CLI,
shown in a table and printed in an error always means the same number.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opplan.errors import OpplanError

if TYPE_CHECKING:
    from opplan.graph import ModelGraph
    from opplan.problem import Problem

CAP_UNITS = ("activations", "bytes")
NO_CAP = "no cap"

# decimal units, as accelerator memory is sold ("80 GB" H100), largest first
_DECIMAL = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3))
_FACTORS = {"": 1.0, "B": 1.0,
            "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12,
            "KIB": 2.0**10, "MIB": 2.0**20, "GIB": 2.0**30, "TIB": 2.0**40}
_SIZE = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*")


def format_bytes(n: float) -> str:
    """``80.00 GB`` style (powers of 1000); ``no cap`` for infinity, the value of an absent cap."""
    if math.isinf(n):
        return NO_CAP
    for unit, size in _DECIMAL:
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:g} B"


def parse_bytes(text: str, field: str | None = None) -> float:
    """A byte size as users type it: ``80GB``, ``80G``, ``512MiB``, ``1.5 TB``, ``1e10``, or
    ``no cap`` (infinity), so that :func:`format_bytes` output reads back."""
    text = str(text)
    if text.strip().lower() == NO_CAP:
        return math.inf
    try:
        return float(text)        # plain numbers, and inf / nan for the caller to judge
    except ValueError:
        pass
    match = _SIZE.fullmatch(text)
    factor = _FACTORS.get(match.group(2).upper()) if match else None
    if match is None or factor is None:
        raise OpplanError(f"{text!r} is not a byte size (a number with an optional unit: 80GB, 512MiB)",
                          field=field)
    return float(match.group(1)) * factor


UNIT_PIPELINE_BYTES = 1.0   # the uniform pipeline's "byte" is one activation unit


ABSTRACT_MODEL_BYTES = 1024.0   # a whole model below this many bytes is written in abstract units


def written_in_abstract_units(activation_bytes: float, param_bytes: float) -> bool:
    """True for a model written in abstract units rather than bytes, such as the uniform MoE sample
    (one "byte" of activation per operator): its activation and parameter bytes together are below
    1 KiB. A real model holds megabytes per micro-batch (one bf16 token of hidden 512 is already
    1 KB), so no real model falls under the rule; a model with no activations at all has no unit."""
    return activation_bytes > 0 and activation_bytes + param_bytes < ABSTRACT_MODEL_BYTES


def counts_in_activation_units(problem: Problem) -> bool:
    """True when a problem's memory reads best in activation units, not bytes: the uniform
    pipeline (one activation unit is stored as one "byte", no parameters) and models written in
    abstract units (see ``written_in_abstract_units``; a unit is their activation bytes / P)."""
    unit = problem.activation_unit_bytes
    if unit is None:       # a problem built by hand: no unit to count in
        return False
    params = [problem.param_bytes(d) for d in range(problem.num_devices)]
    return ((unit == UNIT_PIPELINE_BYTES and all(p < 1e3 for p in params))
            or written_in_abstract_units(unit * problem.num_devices, sum(params)))


def activation_unit_bytes(model: ModelGraph, devices: int) -> float:
    """Bytes of one activation unit of ``model``: one micro-batch of one of ``devices`` equal stages
    (a 1F1B stage), i.e. total activation bytes / P. Caps and peaks in these units mean the same
    for every schedule on the model, and match the published formulas."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise OpplanError(f"devices must be a positive integer, got {devices!r}", field="devices")
    return sum(op.activation_bytes for op in model.operators) / devices


@dataclass(frozen=True)
class MemoryCap:
    """A memory cap as a user gives it: one value (every device) or one per device, in activation
    units (comparable across models and schedules) or in bytes (what a device holds)."""

    values: tuple[float, ...]
    unit: str = "activations"

    def __post_init__(self) -> None:
        if self.unit not in CAP_UNITS:
            raise OpplanError(f"memory cap unit must be one of {', '.join(CAP_UNITS)}, got {self.unit!r}",
                              field="memory_cap")
        values = (self.values,) if isinstance(self.values, (int, float)) else tuple(self.values)
        if not values:
            raise OpplanError("memory cap needs at least one value", field="memory_cap")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise OpplanError(f"memory caps must be numbers, got {v!r}", field="memory_cap")
            if not 0 < v < math.inf:     # also false for NaN
                raise OpplanError(f"memory caps must be positive and finite, got {v:g}", field="memory_cap")
        object.__setattr__(self, "values", tuple(float(v) for v in values))

    @classmethod
    def parse(cls, text: str, unit: str = "activations") -> MemoryCap:
        """From text: ``4`` or ``4,3,2,1`` in activation units; ``80GB`` or ``80GB,40GB`` in bytes."""
        values: list[float] = []
        for part in str(text).split(","):
            part = part.strip()
            if unit == "bytes":
                values.append(parse_bytes(part, field="memory_cap"))
                continue
            try:
                values.append(float(part))
            except ValueError:
                raise OpplanError(f"memory cap {part!r} is not a number (one value, or a comma list per device)",
                                  field="memory_cap") from None
        return cls(tuple(values), unit)

    def per_device(self, devices: int) -> tuple[float, ...]:
        """One value per device, in this cap's unit."""
        if len(self.values) == 1:
            return self.values * devices
        if len(self.values) != devices:
            raise OpplanError(f"got {len(self.values)} memory caps for {devices} devices", field="memory_cap")
        return self.values

    def bytes_per_device(self, model: ModelGraph | None, devices: int) -> tuple[float, ...]:
        """The cap of each device in bytes for a scenario on ``devices`` devices: units × the
        model's activation unit; in the uniform pipeline (``model=None``) one unit is one byte."""
        values = self.per_device(devices)
        if self.unit == "bytes":
            if model is None:
                raise OpplanError("a memory cap in bytes needs a model; give the uniform pipeline's cap in "
                                  "activation units", field="memory_cap")
            return values
        unit = 1.0 if model is None else activation_unit_bytes(model, devices)
        if unit <= 0:
            raise OpplanError(f"model {model.name!r} has no activation bytes, so a cap in activation units means "
                              "nothing; give it in bytes", field="memory_cap")
        return tuple(v * unit for v in values)
