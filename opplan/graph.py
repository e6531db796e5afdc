"""Operators and the model graph: the user's DAG, validated on construction.

Costs are kept in the unit the user gave (milliseconds, FLOPs or bytes moved); the cost model in
``cluster.py`` turns them into times on a device, so one model file serves any cluster.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from opplan.errors import OpplanError, read_user_file
from opplan.io.documents import parse_json_or_yaml
from opplan.limits import MAX_DEVICES, MAX_TEXT_CHARS, check_integer, check_quantity, check_text, shown, shown_path

MODEL_FORMAT = "opplan-model/1"
PASSES = ("forward", "input_grad", "weight_grad")
COST_UNITS = ("time", "flops", "bytes")
KINDS = ("compute", "communication")


def _check_number(value: Any, where: str) -> float:
    """A non-negative finite number within :data:`opplan.limits.MAX_QUANTITY`, or a one-line error."""
    return check_quantity(value, where)


@dataclass(frozen=True)
class PassCosts:
    """Cost of the three passes of one operator, in one unit (time in ms, FLOPs or bytes)."""

    forward: float
    input_grad: float
    weight_grad: float
    unit: str = "time"

    def __post_init__(self) -> None:
        if self.unit not in COST_UNITS:
            raise OpplanError(f"cost unit must be one of {', '.join(COST_UNITS)}, got {shown(self.unit)}")

    def scaled(self, factor: float) -> tuple[float, float, float]:
        return (self.forward * factor, self.input_grad * factor, self.weight_grad * factor)


@dataclass(frozen=True)
class Operator:
    """One node of the model graph."""

    id: str
    costs: PassCosts
    kind: str = "compute"
    activation_bytes: float = 0.0
    param_bytes: float = 0.0
    layer: int | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        check_text(self.id, "operator id")
        if self.kind not in KINDS:
            raise OpplanError(f"operator {shown(self.id)}: kind must be one of {', '.join(KINDS)}, got {shown(self.kind)}")
        if self.kind == "compute" and self.costs.unit == "bytes":
            raise OpplanError(f"operator {shown(self.id)}: a compute operator's cost is 'time' or 'flops', not 'bytes'")
        if self.kind == "communication" and self.costs.unit == "flops":
            raise OpplanError(f"operator {shown(self.id)}: a communication operator's cost is 'time' or 'bytes', not 'flops'")
        for name in PASSES:
            _check_number(getattr(self.costs, name), f"operator {shown(self.id)} field {self.costs.unit}.{name}")
        _check_number(self.activation_bytes, f"operator {shown(self.id)} field activation_bytes")
        _check_number(self.param_bytes, f"operator {shown(self.id)} field param_bytes")


@dataclass(frozen=True)
class Edge:
    """Tensor flow between operators: ``bytes`` go forward, the same size comes back as gradient."""

    src: str
    dst: str
    bytes: float = 0.0

    def __post_init__(self) -> None:
        check_text(self.src, "edge src")
        check_text(self.dst, "edge dst")
        _check_number(self.bytes, f"edge {shown(self.src)} -> {shown(self.dst)} field bytes")


@dataclass(frozen=True)
class ModelGraph:
    """A validated DAG of operators. Construction fails with a one-line error on bad input."""

    name: str
    operators: tuple[Operator, ...]
    edges: tuple[Edge, ...] = ()
    description: str = ""
    accelerator: str | None = None
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _nx: nx.DiGraph = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if not self.operators:
            raise OpplanError(f"model {shown(self.name)} has no operators")
        index: dict[str, int] = {}
        for position, op in enumerate(self.operators):
            if op.id in index:
                raise OpplanError(f"duplicate operator id {shown(op.id)}")
            index[op.id] = position
        graph = nx.DiGraph()
        graph.add_nodes_from(op.id for op in self.operators)
        seen_edges: set[tuple[str, str]] = set()
        for edge in self.edges:
            for end, name in (("src", edge.src), ("dst", edge.dst)):
                if name not in index:
                    raise OpplanError(f"edge {shown(edge.src)} -> {shown(edge.dst)}: unknown {end} operator {shown(name)}")
            if edge.src == edge.dst:
                raise OpplanError(f"cycle: {edge.src} -> {edge.src} (an edge from an operator to itself)")
            if (edge.src, edge.dst) in seen_edges:
                raise OpplanError(f"duplicate edge {shown(edge.src)} -> {shown(edge.dst)}")
            seen_edges.add((edge.src, edge.dst))
            graph.add_edge(edge.src, edge.dst, bytes=edge.bytes)
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
            raise OpplanError(f"cycle: {path}")
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_nx", graph)

    # --- queries -------------------------------------------------------------------------
    def operator(self, op_id: str) -> Operator:
        try:
            return self.operators[self._index[op_id]]
        except KeyError:
            raise OpplanError(f"unknown operator {shown(op_id)}") from None

    @property
    def digraph(self) -> nx.DiGraph:
        """A networkx view (do not mutate)."""
        return self._nx

    def topological_order(self) -> list[str]:
        """Deterministic: ties broken by the order operators were listed in."""
        return list(nx.lexicographical_topological_sort(self._nx, key=self._index.__getitem__))

    def predecessors(self, op_id: str) -> list[str]:
        return list(self._nx.predecessors(op_id))

    def successors(self, op_id: str) -> list[str]:
        return list(self._nx.successors(op_id))

    @property
    def total_param_bytes(self) -> float:
        return sum(op.param_bytes for op in self.operators)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": MODEL_FORMAT, "name": self.name}
        if self.description:
            out["description"] = self.description
        if self.accelerator:
            out["accelerator"] = self.accelerator
        ops = []
        for op in self.operators:
            entry: dict[str, Any] = {"id": op.id, "kind": op.kind,
                                     op.costs.unit: {p: getattr(op.costs, p) for p in PASSES},
                                     "activation_bytes": op.activation_bytes, "param_bytes": op.param_bytes}
            if op.layer is not None:
                entry["layer"] = op.layer
            if op.group is not None:
                entry["group"] = op.group
            ops.append(entry)
        out["operators"] = ops
        out["edges"] = [{"src": e.src, "dst": e.dst, "bytes": e.bytes} for e in self.edges]
        return out

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> ModelGraph:
        return parse_model(data, source)


# --- parsing user input ---------------------------------------------------------------------
# The loader enforces schemas/model.schema.json (tests check that both accept the same files).
_TOP_FIELDS = {"$schema", "format", "name", "description", "accelerator", "scenario", "operators", "edges"}
_SCENARIO_FIELDS = ("devices", "microbatches", "accelerator", "granularity")
_OPERATOR_FIELDS = {"id", "kind", "time", "flops", "bytes", "activation_bytes", "param_bytes", "layer", "group"}
MAX_LAYER = 1_000_000


def _check_scenario(raw: Any, source: str) -> None:
    """The optional suggested scenario (devices, micro-batches, accelerator, granularity): checked like the
    schema says, then left to the dashboard; it is not part of the model graph."""
    from opplan.cluster import ACCELERATORS

    where = f"{source}: field scenario"
    if not isinstance(raw, Mapping):
        raise OpplanError(f"{where} must be an object, got {type(raw).__name__}")
    unknown = sorted((k for k in raw if k not in _SCENARIO_FIELDS), key=str)
    if unknown:
        raise OpplanError(f"{where}: unknown field {shown(unknown[0])} (allowed: {', '.join(_SCENARIO_FIELDS)})")
    for key in ("devices", "microbatches"):
        value = raw.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
            raise OpplanError(f"{where}.{key} must be a positive whole number, got {shown(value)}")
    if "accelerator" in raw and (not isinstance(raw["accelerator"], str) or raw["accelerator"] not in ACCELERATORS):
        raise OpplanError(f"{where}.accelerator must be one of {', '.join(ACCELERATORS)}, got {shown(raw['accelerator'])}")
    if "granularity" in raw and (not isinstance(raw["granularity"], str)
                                 or raw["granularity"] not in ("stage", "layer", "operator")):
        raise OpplanError(f"{where}.granularity must be one of stage, layer, operator, got {shown(raw['granularity'])}")


def _check_id(value: Any, where: str) -> str:
    return check_text(value, where)


def _parse_operator(raw: Any, position: int) -> Operator:
    where = f"operator #{position}"
    if not isinstance(raw, Mapping):
        raise OpplanError(f"{where} must be an object, got {type(raw).__name__}")
    if "id" not in raw:
        raise OpplanError(f"{where} is missing required field 'id'")
    op_id = _check_id(raw["id"], f"{where} field id")
    where = f"operator {shown(op_id)}"
    unknown = sorted((k for k in raw if k not in _OPERATOR_FIELDS), key=str)
    if unknown:
        raise OpplanError(f"{where}: unknown field {shown(unknown[0])} (allowed: {', '.join(sorted(_OPERATOR_FIELDS))})")
    units = [u for u in COST_UNITS if u in raw]
    if len(units) != 1:
        raise OpplanError(f"{where} needs exactly one of the cost fields 'time', 'flops' or 'bytes'"
                          + (f", got {' and '.join(units)}" if units else ""))
    unit = units[0]
    costs_raw = raw[unit]
    if not isinstance(costs_raw, Mapping):
        raise OpplanError(f"{where} field {unit} must be an object with keys {', '.join(PASSES)}")
    for name in PASSES:
        if name not in costs_raw:
            raise OpplanError(f"{where} field {unit} is missing required key {name!r}")
    extra = sorted((k for k in costs_raw if k not in PASSES), key=str)
    if extra:
        raise OpplanError(f"{where} field {unit}: unknown key {shown(extra[0])} (allowed: {', '.join(PASSES)})")
    values = [_check_number(costs_raw[name], f"{where} field {unit}.{name}") for name in PASSES]
    kind = raw.get("kind", "compute")
    if not isinstance(kind, str) or kind not in KINDS:
        raise OpplanError(f"{where}: kind must be one of {', '.join(KINDS)}, got {shown(kind)}")
    layer = raw.get("layer")          # optional; when present it must be valid (null included)
    if "layer" in raw:
        check_integer(layer, f"{where} field layer", 0, MAX_LAYER)
    group = raw.get("group")
    if "group" in raw:
        check_text(group, f"{where} field group")
    return Operator(
        id=op_id, kind=kind, costs=PassCosts(*values, unit=unit),
        activation_bytes=_check_number(raw.get("activation_bytes", 0), f"{where} field activation_bytes"),
        param_bytes=_check_number(raw.get("param_bytes", 0), f"{where} field param_bytes"),
        layer=layer, group=group,
    )


def _parse_edge(raw: Any, position: int) -> Edge:
    where = f"edge #{position}"
    if not isinstance(raw, Mapping):
        raise OpplanError(f"{where} must be an object with src, dst and bytes, got {type(raw).__name__}")
    for key in ("src", "dst"):
        if key not in raw:
            raise OpplanError(f"{where} is missing required field {key!r}")
        _check_id(raw[key], f"{where} field {key}")
    extra = sorted((k for k in raw if k not in ("src", "dst", "bytes")), key=str)
    if extra:
        raise OpplanError(f"{where} ({shown(raw['src'])} -> {shown(raw['dst'])}): unknown field {shown(extra[0])}")
    return Edge(raw["src"], raw["dst"],
                _check_number(raw.get("bytes", 0), f"edge {shown(raw['src'])} -> {shown(raw['dst'])} field bytes"))


def parse_model(data: Any, source: str = "model") -> ModelGraph:
    """Build a ModelGraph from parsed JSON/YAML, raising one-line errors that name the problem.

    Absent ``format``, ``name`` and ``edges`` take their defaults (the schema documents them);
    everything present must be what the schema allows."""
    source = shown(source) if len(source) > 200 else source
    if not isinstance(data, Mapping):
        raise OpplanError(f"{source}: top level must be an object with 'operators' and 'edges', got {type(data).__name__}")
    unknown = sorted((k for k in data if k not in _TOP_FIELDS), key=str)
    if unknown:
        raise OpplanError(f"{source}: unknown top-level field {shown(unknown[0])} "
                          f"(allowed: {', '.join(sorted(_TOP_FIELDS - {'$schema'}))})")
    fmt = data.get("format", MODEL_FORMAT)
    if fmt != MODEL_FORMAT:
        raise OpplanError(f"{source}: unsupported format {shown(fmt)} (expected {MODEL_FORMAT!r})")
    if "$schema" in data:
        check_text(data["$schema"], f"{source}: field $schema", MAX_TEXT_CHARS)
    if "operators" not in data:
        raise OpplanError(f"{source}: missing required field 'operators'")
    ops_raw = data["operators"]
    if not isinstance(ops_raw, list):
        raise OpplanError(f"{source}: field operators must be a list, got {type(ops_raw).__name__}")
    if not ops_raw:
        raise OpplanError(f"{source}: the model has no operators")
    edges_raw = data.get("edges", [])
    if not isinstance(edges_raw, list):
        raise OpplanError(f"{source}: field edges must be a list, got {type(edges_raw).__name__}")
    name = data.get("name", Path(source).stem if source != "model" else "model") or ""
    if "name" in data:
        name = check_text(data["name"], f"{source}: field name")
    description = check_text(data.get("description", ""), f"{source}: field description", MAX_TEXT_CHARS,
                             empty_ok=True)
    accelerator = data.get("accelerator")
    if "accelerator" in data:
        from opplan.cluster import ACCELERATORS

        if not isinstance(accelerator, str) or accelerator not in ACCELERATORS:
            raise OpplanError(f"{source}: field accelerator must be one of {', '.join(ACCELERATORS)}, "
                              f"got {shown(accelerator)}")
    if "scenario" in data:
        _check_scenario(data["scenario"], source)
    operators = tuple(_parse_operator(raw, i) for i, raw in enumerate(ops_raw))
    edges = tuple(_parse_edge(raw, i) for i, raw in enumerate(edges_raw))
    return ModelGraph(name=name or "model", operators=operators, edges=edges, description=description,
                      accelerator=accelerator)


def parse_model_text(text: str, source: str = "model") -> ModelGraph:
    """JSON or YAML text (JSON is tried first; YAML is a superset for our purposes)."""
    from opplan.limits import MAX_FILE_BYTES, check_file_size

    check_file_size(len(text), source)    # characters: at least a quarter of the bytes, at most all of them
    if len(text) > MAX_FILE_BYTES // 4:
        check_file_size(len(text.encode("utf-8")), source)
    if not text.strip():
        raise OpplanError(f"{source}: the file is empty")
    return parse_model(parse_json_or_yaml(text, source), source)


def load_model(path: str | Path) -> ModelGraph:
    return parse_model_text(read_user_file(path, "model file"), shown_path(path))


def save_model(model: ModelGraph, path: str | Path) -> None:
    Path(path).write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")


def uniform_chain(stages: int, forward: float = 1.0, input_grad: float = 1.0, weight_grad: float = 1.0,
                  activation_bytes: float = 1.0, param_bytes: float = 0.0, name: str | None = None) -> ModelGraph:
    """The synthetic pipeline of the published formulas: P identical stages in a chain.

    One activation byte stands for one activation unit (one micro-batch of one stage).
    """
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise OpplanError(f"stages must be a positive integer, got {shown(stages)}", field="stages")
    if stages > MAX_DEVICES:
        raise OpplanError(f"stages must be at most {MAX_DEVICES}, got {stages}", field="stages")
    ops = tuple(Operator(id=f"s{i}", costs=PassCosts(forward, input_grad, weight_grad), layer=i,
                         activation_bytes=activation_bytes, param_bytes=param_bytes) for i in range(stages))
    edges = tuple(Edge(f"s{i}", f"s{i + 1}") for i in range(stages - 1))
    return ModelGraph(name=name or f"uniform-{stages}", operators=ops, edges=edges,
                      description=f"uniform pipeline: {stages} stages, F={forward:g} B={input_grad:g} W={weight_grad:g}")
