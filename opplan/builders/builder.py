"""The accumulator every family builder writes into: operators and edges in insertion order.

It renders the ``opplan-model/1`` JSON document with the numbers exactly as computed (integers stay
integers), so the sample files are byte-for-byte repeatable; ``to_graph`` gives the validated
``ModelGraph`` the planner uses.
"""
from __future__ import annotations

from typing import Any

from opplan.errors import OpplanError
from opplan.graph import MODEL_FORMAT, ModelGraph, parse_model

Passes = dict[str, Any]  # {"forward": ..., "input_grad": ..., "weight_grad": ...}


class ModelBuilder:
    """Collects operators and edges, then renders the JSON document or the ModelGraph."""

    def __init__(self, name: str, description: str, accelerator: str | None = None) -> None:
        self.name, self.description, self.accelerator = name, description, accelerator
        self.operators: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []

    def op(self, op_id: str, *, flops: Passes | None = None, time: Passes | None = None,
           comm_bytes: Passes | None = None, activation_bytes: int = 0, param_bytes: int = 0,
           layer: int | None = None, group: str | None = None, communication: bool = False) -> str:
        """Add an operator with exactly one cost; returns its id so calls can be chained into edges.

        ``comm_bytes`` makes it a communication operator; ``communication=True`` does so for one
        timed in ``time`` (synthetic models whose transfers have fixed durations)."""
        given = [(unit, costs) for unit, costs in (("time", time), ("flops", flops), ("bytes", comm_bytes))
                 if costs is not None]
        if len(given) != 1:
            raise OpplanError(f"operator {op_id!r} needs exactly one of flops, time or comm_bytes")
        unit, costs = given[0]
        if communication and unit == "flops":
            raise OpplanError(f"operator {op_id!r}: a communication operator costs time or comm_bytes, not flops")
        kind = "communication" if communication or unit == "bytes" else "compute"
        entry = {"id": op_id, "kind": kind, unit: dict(costs),
                 "activation_bytes": activation_bytes, "param_bytes": param_bytes}
        if layer is not None:
            entry["layer"] = layer
        if group is not None:
            entry["group"] = group
        self.operators.append(entry)
        return op_id

    def edge(self, src: str, dst: str, nbytes: int = 0) -> None:
        """A tensor of ``nbytes`` from ``src`` to ``dst`` per micro-batch (its gradient comes back)."""
        self.edges.append({"src": src, "dst": dst, "bytes": nbytes})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": MODEL_FORMAT, "name": self.name, "description": self.description}
        if self.accelerator:
            out["accelerator"] = self.accelerator
        out["operators"] = self.operators
        out["edges"] = self.edges
        return out

    def to_graph(self) -> ModelGraph:
        """The validated graph (unique ids, known edge ends, acyclic), or a one-line OpplanError."""
        return parse_model(self.to_dict(), self.name)
