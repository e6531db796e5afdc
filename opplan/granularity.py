"""How finely a schedule stage is split into schedulable units.

A schedule stage (what 1F1B or DualPipe call a stage) is a run of operators along the model's
topological order. At ``stage`` granularity it is one unit, and a communication operator inside
it simply costs time on the device. At ``operator`` granularity it becomes the fewest units that
let communication overlap computation: consecutive compute operators merge into one unit, and
every communication operator (an MoE dispatch or combine all-to-all) is a unit of its own, run on
the device's communication stream — an MoE layer becomes about four units (compute, dispatch,
compute, combine), not one task per operator. ``layer`` granularity also cuts compute runs where
the operators' ``layer`` changes, so each layer's compute is its own unit.

Units are runs of a topological order, so the unit graph stays acyclic.
"""
from __future__ import annotations

from collections.abc import Sequence

from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.problem import COMM_STREAM, COMPUTE_STREAM

GRANULARITIES = ("stage", "layer", "operator")


def check_granularity(granularity: str) -> str:
    if granularity not in GRANULARITIES:
        raise OpplanError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}",
                          field="granularity")
    return granularity


def split_units(model: ModelGraph, operators: Sequence[str], granularity: str) -> list[tuple[list[str], str]]:
    """The units of one schedule stage as (operator ids, stream), in topological order."""
    check_granularity(granularity)
    position = {op_id: i for i, op_id in enumerate(model.topological_order())}
    ordered = sorted(operators, key=position.__getitem__)
    if granularity == "stage":
        return [(ordered, COMPUTE_STREAM)]
    units: list[tuple[list[str], str]] = []
    for op_id in ordered:
        op = model.operator(op_id)
        if op.kind == "communication":
            units.append(([op_id], COMM_STREAM))
            continue
        last = units[-1] if units else None
        same_layer = last is not None and (granularity == "operator"
                                           or model.operator(last[0][-1]).layer == op.layer)
        if last is not None and last[1] == COMPUTE_STREAM and same_layer:
            last[0].append(op_id)
        else:
            units.append(([op_id], COMPUTE_STREAM))
    return units
