"""The scheduling problem in resolved form: stages placed on devices, with times in ms.

A *stage* is a group of operators placed together and run back to back; with one operator per
stage the problem is operator-level. Every producer (baselines, planner) and every consumer
(simulator, validator, metrics, charts) works on this one type, and a saved plan embeds it, so a
plan file can be checked without the model or cluster it came from.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from opplan.cluster import Cluster
from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.limits import MAX_DEVICES, check_integer, check_quantity, check_task_count, check_text, shown

COMPUTE_STREAM = "compute"
COMM_STREAM = "communication"
STREAMS = (COMPUTE_STREAM, COMM_STREAM)


def comm_resource(device_name: str) -> str:
    """The name of a device's communication stream (expert-parallel all-to-all), beside its compute."""
    return f"{device_name}.comm"


@dataclass(frozen=True)
class Stage:
    """Operators run back to back on one device; times are already those of that device.

    ``stream``: a stage of compute operators runs on its device's compute stream; a stage that is
    one communication operator (an all-to-all) runs on the device's communication stream, so it
    can overlap the computation of another micro-batch.
    """

    name: str
    device: int
    forward: float
    input_grad: float
    weight_grad: float
    activation_bytes: float = 1.0
    param_bytes: float = 0.0
    operators: tuple[str, ...] = ()
    stream: str = COMPUTE_STREAM
    layout_stage: int | None = None     # operator level: the schedule's stage this unit belongs to

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise OpplanError(f"stage {self.name!r} field stream must be one of {', '.join(STREAMS)}, "
                              f"got {self.stream!r}")
        for attr in ("forward", "input_grad", "weight_grad", "activation_bytes", "param_bytes"):
            value = getattr(self, attr)
            if not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value) or value < 0:
                raise OpplanError(f"stage {self.name!r} field {attr} must be a non-negative finite number, got {value!r}")


@dataclass(frozen=True)
class StageEdge:
    """Data flow between stages; ``transfer_ms`` is 0 when both sit on one device."""

    src: int
    dst: int
    bytes: float = 0.0
    transfer_ms: float = 0.0


@dataclass(frozen=True)
class DeviceSpec:
    name: str
    memory_bytes: float = math.inf


@dataclass(frozen=True)
class Problem:
    """Placed stages, their data flow, devices with memory caps, micro-batches, overlap factor.

    ``overlap_factor``: an order may run a forward and a backward of different micro-batches as one
    overlapped pair (DualPipe's F&B); the pair takes ``overlap_factor`` × the sum of its parts.
    ``activation_unit_bytes``: bytes of one activation unit (one micro-batch of one stage), used to
    report memory in the units of the published formulas.
    """

    stages: tuple[Stage, ...]
    edges: tuple[StageEdge, ...]
    devices: tuple[DeviceSpec, ...]
    microbatches: int
    overlap_factor: float = 1.0
    activation_unit_bytes: float | None = None
    name: str = ""
    _preds: tuple[tuple[int, ...], ...] = field(default=(), init=False, repr=False, compare=False)
    _succs: tuple[tuple[int, ...], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.stages:
            raise OpplanError("a problem needs at least one stage")
        if not self.devices:
            raise OpplanError("a problem needs at least one device")
        if isinstance(self.microbatches, bool) or not isinstance(self.microbatches, int) or self.microbatches < 1:
            raise OpplanError(f"microbatches must be a positive integer, got {self.microbatches!r}",
                              field="microbatches")
        if len(self.devices) > MAX_DEVICES:
            raise OpplanError(f"devices must be at most {MAX_DEVICES}, got {len(self.devices)}", field="devices")
        check_task_count(_task_estimate(len(self.stages), len(self.edges), self.microbatches),
                         f"a problem of {len(self.stages)} stages and {self.microbatches} micro-batches")
        if not (isinstance(self.overlap_factor, (int, float)) and 0 < self.overlap_factor <= 2):
            raise OpplanError(f"overlap factor must be in (0, 2], got {self.overlap_factor!r}")
        n = len(self.stages)
        for s in self.stages:
            if not 0 <= s.device < len(self.devices):
                raise OpplanError(f"stage {s.name!r} is placed on device {s.device}, "
                                  f"but there are {len(self.devices)} devices")
        preds: list[list[int]] = [[] for _ in range(n)]
        succs: list[list[int]] = [[] for _ in range(n)]
        graph = nx.DiGraph()
        graph.add_nodes_from(range(n))
        for e in self.edges:
            if not (0 <= e.src < n and 0 <= e.dst < n) or e.src == e.dst:
                raise OpplanError(f"stage edge {e.src} -> {e.dst} is invalid for {n} stages")
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)
            graph.add_edge(e.src, e.dst)
        if not nx.is_directed_acyclic_graph(graph):
            cycle = nx.find_cycle(graph)
            raise OpplanError("stage graph has a cycle: "
                              + " -> ".join(self.stages[u].name for u, _ in cycle) + f" -> {self.stages[cycle[0][0]].name}")
        object.__setattr__(self, "_preds", tuple(tuple(p) for p in preds))
        object.__setattr__(self, "_succs", tuple(tuple(s) for s in succs))

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def num_devices(self) -> int:
        return len(self.devices)

    def preds(self, stage: int) -> tuple[int, ...]:
        return self._preds[stage]

    def succs(self, stage: int) -> tuple[int, ...]:
        return self._succs[stage]

    def edge(self, src: int, dst: int) -> StageEdge:
        for e in self.edges:
            if e.src == src and e.dst == dst:
                return e
        raise KeyError((src, dst))

    def block_duration(self, durations: Sequence[float], passes: Sequence[str]) -> float:
        """Tasks run as one block take their sum, shrunk by the overlap factor when the block
        pairs a forward with a backward (DualPipe's F&B)."""
        total = sum(durations)
        if "F" in passes and set(passes) & {"B", "W", "BW"}:
            return total * self.overlap_factor
        return total

    def stages_on(self, device: int) -> list[int]:
        return [i for i, s in enumerate(self.stages) if s.device == device]

    def resource_of(self, stage: int) -> str:
        """Where a stage's tasks run: its device's compute stream (named like the device) or its
        communication stream."""
        st = self.stages[stage]
        name = self.devices[st.device].name
        return name if st.stream == COMPUTE_STREAM else comm_resource(name)

    @property
    def has_comm_streams(self) -> bool:
        return any(s.stream == COMM_STREAM for s in self.stages)

    @property
    def is_unit_level(self) -> bool:
        """True when the stages are units (merged operators) of coarser schedule stages."""
        return any(s.layout_stage is not None for s in self.stages)

    def units_of(self, layout_stage: int) -> tuple[int, ...]:
        """The units of one schedule stage, in the order a forward runs them (stage index order)."""
        return tuple(i for i, s in enumerate(self.stages) if s.layout_stage == layout_stage)

    @property
    def num_layout_stages(self) -> int:
        """Schedule stages: the units' parents at operator level, else the stages themselves."""
        if not self.is_unit_level:
            return self.num_stages
        return 1 + max(s.layout_stage for s in self.stages if s.layout_stage is not None)

    def param_bytes(self, device: int) -> float:
        return sum(s.param_bytes for s in self.stages if s.device == device)

    def with_memory(self, caps: Sequence[float] | float) -> Problem:
        if isinstance(caps, (int, float)):
            caps = [float(caps)] * self.num_devices
        if len(caps) != self.num_devices:
            raise OpplanError(f"got {len(caps)} memory caps for {self.num_devices} devices")
        devices = tuple(DeviceSpec(d.name, float(c)) for d, c in zip(self.devices, caps))
        return Problem(self.stages, self.edges, devices, self.microbatches, self.overlap_factor,
                       self.activation_unit_bytes, self.name)

    def with_microbatches(self, microbatches: int) -> Problem:
        return Problem(self.stages, self.edges, self.devices, microbatches, self.overlap_factor,
                       self.activation_unit_bytes, self.name)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "microbatches": self.microbatches,
            "overlap_factor": self.overlap_factor,
            "activation_unit_bytes": self.activation_unit_bytes,
            "devices": [{"name": d.name, "memory_bytes": None if math.isinf(d.memory_bytes) else d.memory_bytes}
                        for d in self.devices],
            "stages": [{"name": s.name, "device": s.device, "forward": s.forward, "input_grad": s.input_grad,
                        "weight_grad": s.weight_grad, "activation_bytes": s.activation_bytes,
                        "param_bytes": s.param_bytes, "operators": list(s.operators),
                        **({"stream": s.stream} if s.stream != COMPUTE_STREAM else {}),
                        **({"layout_stage": s.layout_stage} if s.layout_stage is not None else {})}
                       for s in self.stages],
            "edges": [{"src": e.src, "dst": e.dst, "bytes": e.bytes, "transfer_ms": e.transfer_ms} for e in self.edges],
        }

    @classmethod
    def from_dict(cls, data: Any) -> Problem:
        """The problem section of a plan file, checked field by field (integers stay integers: a
        ``device`` of 0.9 is an error, not device 0)."""
        where = "plan problem"
        data = _section(data, where, {"name", "microbatches", "overlap_factor", "activation_unit_bytes",
                                      "devices", "stages", "edges"}, {"microbatches", "devices", "stages", "edges"})
        devices_raw = _rows(data["devices"], f"{where}.devices", MAX_DEVICES)
        stages_raw = _rows(data["stages"], f"{where}.stages")
        edges_raw = _rows(data["edges"], f"{where}.edges")
        microbatches = check_integer(data["microbatches"], f"{where}.microbatches", 1)
        check_task_count(_task_estimate(len(stages_raw), len(edges_raw), microbatches), "the plan's problem")
        devices = []
        for i, d in enumerate(devices_raw):
            d = _section(d, f"{where}.devices[{i}]", {"name", "memory_bytes"}, {"name"})
            cap = d.get("memory_bytes")
            devices.append(DeviceSpec(check_text(d["name"], f"{where}.devices[{i}].name"),
                                      math.inf if cap is None else check_quantity(cap, f"{where}.devices[{i}].memory_bytes")))
        stages = []
        for i, s in enumerate(stages_raw):
            at = f"{where}.stages[{i}]"
            s = _section(s, at, {"name", "device", "forward", "input_grad", "weight_grad", "activation_bytes",
                                 "param_bytes", "operators", "stream", "layout_stage"},
                         {"name", "device", "forward", "input_grad", "weight_grad"})
            operators = s.get("operators", [])
            if not isinstance(operators, list):
                raise OpplanError(f"{at}.operators must be a list of operator ids, got {shown(operators)}")
            layout_stage = s.get("layout_stage")
            stages.append(Stage(
                check_text(s["name"], f"{at}.name"), check_integer(s["device"], f"{at}.device"),
                *(check_quantity(s[k], f"{at}.{k}") for k in ("forward", "input_grad", "weight_grad")),
                check_quantity(s.get("activation_bytes", 1.0), f"{at}.activation_bytes"),
                check_quantity(s.get("param_bytes", 0.0), f"{at}.param_bytes"),
                tuple(check_text(o, f"{at}.operators[{k}]") for k, o in enumerate(operators)),
                check_text(s.get("stream", COMPUTE_STREAM), f"{at}.stream"),
                None if layout_stage is None else check_integer(layout_stage, f"{at}.layout_stage")))
        edges = []
        for i, e in enumerate(edges_raw):
            at = f"{where}.edges[{i}]"
            e = _section(e, at, {"src", "dst", "bytes", "transfer_ms"}, {"src", "dst"})
            edges.append(StageEdge(check_integer(e["src"], f"{at}.src"), check_integer(e["dst"], f"{at}.dst"),
                                   check_quantity(e.get("bytes", 0.0), f"{at}.bytes"),
                                   check_quantity(e.get("transfer_ms", 0.0), f"{at}.transfer_ms")))
        overlap = data.get("overlap_factor", 1.0)
        if isinstance(overlap, bool) or not isinstance(overlap, (int, float)):
            raise OpplanError(f"{where}.overlap_factor must be a number, got {shown(overlap)}")
        unit = data.get("activation_unit_bytes")
        return cls(tuple(stages), tuple(edges), tuple(devices), microbatches, float(overlap),
                   None if unit is None else check_quantity(unit, f"{where}.activation_unit_bytes"),
                   check_text(data.get("name", ""), f"{where}.name", empty_ok=True))


def _section(data: Any, where: str, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    """A JSON object with only ``allowed`` keys and every ``required`` one."""
    if not isinstance(data, Mapping):
        raise OpplanError(f"{where} must be an object, got {type(data).__name__} {shown(data)}")
    unknown = sorted((k for k in data if k not in allowed), key=str)
    if unknown:
        raise OpplanError(f"{where} has unknown field {shown(unknown[0])}")
    missing = sorted(required - set(data))
    if missing:
        raise OpplanError(f"{where} is missing field {missing[0]!r}")
    return data


def _rows(value: Any, where: str, limit: int | None = None) -> list[Any]:
    if not isinstance(value, list):
        raise OpplanError(f"{where} must be a list, got {type(value).__name__} {shown(value)}")
    if limit is not None and len(value) > limit:
        raise OpplanError(f"{where} has {len(value):,} entries; the limit is {limit:,}")
    return value


def _task_estimate(stages: int, edges: int, microbatches: int) -> int:
    """Tasks of a problem: three passes per stage and micro-batch, two transfers per edge."""
    return (3 * stages + 2 * edges) * microbatches


# --- builders -------------------------------------------------------------------------------
def uniform_problem(stages: int, microbatches: int, forward: float = 1.0, input_grad: float = 1.0,
                    weight_grad: float = 1.0, placement: Sequence[int] | None = None, devices: int | None = None,
                    memory_units: Sequence[float] | float | None = None, fb_overlap: float | None = None,
                    param_units: float = 0.0) -> Problem:
    """The synthetic chain of the published formulas; one activation unit = one byte.

    ``placement[s]`` is the device of stage ``s`` (default: stage s on device s). ``fb_overlap``
    is the time of one forward overlapped with one full backward (default F+B+W, i.e. no gain).
    """
    for name, value in (("f", forward), ("b", input_grad), ("w", weight_grad)):
        if not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value) or value < 0:
            raise OpplanError(f"{name} must be a non-negative finite number, got {value!r}", field=name)
    if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
        raise OpplanError(f"stages must be a positive integer, got {stages!r}", field="stages")
    check_task_count(_task_estimate(stages, stages - 1, microbatches) if isinstance(microbatches, int) else 0,
                     f"a pipeline of {stages} stages and {microbatches} micro-batches")
    placement = list(range(stages)) if placement is None else list(placement)
    if len(placement) != stages:
        raise OpplanError(f"placement lists {len(placement)} devices for {stages} stages")
    n_devices = devices if devices is not None else max(placement) + 1
    total = forward + input_grad + weight_grad
    factor = 1.0
    if fb_overlap is not None:
        if not isinstance(fb_overlap, (int, float)) or fb_overlap <= 0 or math.isinf(fb_overlap):
            raise OpplanError(f"fb must be a positive number, got {fb_overlap!r}", field="fb")
        if total <= 0:
            raise OpplanError("fb needs F+B+W > 0", field="fb")
        factor = fb_overlap / total
    if memory_units is None:
        caps = [math.inf] * n_devices
    elif isinstance(memory_units, (int, float)):
        caps = [float(memory_units) + 0.0] * n_devices
    else:
        caps = [float(c) for c in memory_units]
    if len(caps) != n_devices:
        raise OpplanError(f"got {len(caps)} memory caps for {n_devices} devices")
    stage_list = tuple(Stage(f"s{i}", placement[i], forward, input_grad, weight_grad, 1.0, param_units, (f"s{i}",))
                       for i in range(stages))
    edges = tuple(StageEdge(i, i + 1) for i in range(stages - 1))
    # parameters count in the cap too: a cap of K units means K activations on top of the params
    dev_params = [sum(param_units for s in stage_list if s.device == d) for d in range(n_devices)]
    devices_t = tuple(DeviceSpec(f"dev{d}", caps[d] + dev_params[d]) for d in range(n_devices))
    return Problem(stage_list, edges, devices_t, microbatches, factor, 1.0,
                   f"uniform P={stages} M={microbatches}")


def stage_problem(model: ModelGraph, cluster: Cluster, groups: Sequence[Sequence[str]], placement: Sequence[int],
                  microbatches: int, overlap_factor: float = 1.0, streams: Sequence[str] | None = None,
                  layout_stages: Sequence[int] | None = None) -> Problem:
    """Merge operator groups into stages, place them, and resolve times on the placed devices.

    ``groups`` must cover every operator exactly once and the merged graph must stay acyclic.
    ``streams`` (default: all compute) and ``layout_stages`` describe operator-level units.
    """
    owner: dict[str, int] = {}
    for g, ops in enumerate(groups):
        if not ops:
            raise OpplanError(f"stage {g} has no operators")
        for op_id in ops:
            model.operator(op_id)
            if op_id in owner:
                raise OpplanError(f"operator {op_id!r} is in stages {owner[op_id]} and {g}")
            owner[op_id] = g
    missing = [op.id for op in model.operators if op.id not in owner]
    if missing:
        raise OpplanError(f"operator {missing[0]!r} is in no stage")
    if len(placement) != len(groups):
        raise OpplanError(f"placement lists {len(placement)} devices for {len(groups)} stages")
    for g, d in enumerate(placement):
        if not 0 <= d < cluster.size:
            raise OpplanError(f"stage {g} placed on device {d}, cluster has {cluster.size} devices")
    order = {op_id: i for i, op_id in enumerate(model.topological_order())}
    stages = []
    for g, ops in enumerate(groups):
        ops_sorted = sorted(ops, key=order.__getitem__)
        f = b = w = act = par = 0.0
        for op_id in ops_sorted:
            tf, tb, tw = cluster.operator_times(model.operator(op_id), placement[g])
            f, b, w = f + tf, b + tb, w + tw
            act += model.operator(op_id).activation_bytes
            par += model.operator(op_id).param_bytes
        stages.append(Stage(f"st{g}", placement[g], f, b, w, act, par, tuple(ops_sorted),
                            streams[g] if streams else COMPUTE_STREAM,
                            layout_stages[g] if layout_stages else None))
    flows: dict[tuple[int, int], float] = {}
    for e in model.edges:
        a, b = owner[e.src], owner[e.dst]
        if a != b:
            flows[(a, b)] = flows.get((a, b), 0.0) + e.bytes
    edges = tuple(StageEdge(a, b, nbytes, 0.0 if placement[a] == placement[b]
                            else cluster.link_between(placement[a], placement[b]).transfer_ms(nbytes))
                  for (a, b), nbytes in sorted(flows.items()))
    devices = tuple(DeviceSpec(d.name, d.memory_bytes) for d in cluster.devices)
    acts = [s.activation_bytes for s in stages]
    unit = sum(acts) / len(acts) if sum(acts) > 0 else None
    try:
        return Problem(tuple(stages), edges, devices, microbatches, overlap_factor, unit, model.name)
    except OpplanError as error:
        if "cycle" in str(error):
            raise OpplanError(f"the operator grouping is not convex: {error}") from None
        raise
