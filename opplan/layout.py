"""How a schedule family lays a model's stages on devices: the one place a placement is defined.

P = number of devices. The problem's stages are numbered along the layout:

  contiguous   P stages, stage i on device i                           (GPipe, 1F1B, ZB-H1/H2)
  interleaved  v·P stages, stage i on device i mod P                   (interleaved 1F1B)
  v            2P stages, stage i on device i (i < P), else 2P−1−i      (ZB-V, DualPipeV)
  mirrored     P model stages held twice: stage j (< P) on device j carries the micro-batches that
               enter at device 0; stage P+j, a copy of model stage j, on device P−1−j carries those
               that enter at device P−1. Device r holds model stages r and P−1−r (DualPipe, 2×
               parameters); half of the micro-batches go each way, so the problem has M/2 indices.

Units, so that every layout on the same (P, M, F, B, W) does the same work per device: F, B, W
are what one device computes per micro-batch when the model is cut into P stages (a 1F1B stage);
layouts that cut finer (interleaved, V) give each chunk 1/chunks of that work and activation.
"""
from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from opplan.cluster import Cluster
from opplan.errors import OpplanError
from opplan.granularity import check_granularity, split_units
from opplan.graph import ModelGraph
from opplan.partition import balanced_partition
from opplan.problem import Problem, StageEdge, stage_problem, uniform_problem
from opplan.units import activation_unit_bytes


class LayoutKind(str, enum.Enum):
    CONTIGUOUS = "contiguous"
    INTERLEAVED = "interleaved"
    V = "v"
    MIRRORED = "mirrored"


@dataclass(frozen=True)
class Layout:
    """Stage → device map of a schedule family: kind, stages per device, micro-batch directions."""

    kind: LayoutKind
    chunks: int = 1              # problem stages per device
    microbatch_split: int = 1    # 2: half of the micro-batches enter at each end (mirrored)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", LayoutKind(self.kind))
        if isinstance(self.chunks, bool) or not isinstance(self.chunks, int) or self.chunks < 1:
            raise OpplanError(f"layout chunks per device must be a positive integer, got {self.chunks!r}")
        if self.kind in (LayoutKind.V, LayoutKind.MIRRORED) and self.chunks != 2:
            raise OpplanError(f"a {self.kind.value} layout holds 2 stages per device, got chunks={self.chunks}")
        if self.kind == LayoutKind.CONTIGUOUS and self.chunks != 1:
            raise OpplanError(f"a contiguous layout holds 1 stage per device, got chunks={self.chunks}")
        if self.microbatch_split not in (1, 2) or (self.microbatch_split == 2) != (self.kind == LayoutKind.MIRRORED):
            raise OpplanError("only the mirrored layout splits micro-batches between two directions")

    @property
    def name(self) -> str:
        return self.kind.value if self.kind != LayoutKind.INTERLEAVED else f"interleaved-{self.chunks}"

    # --- the map -------------------------------------------------------------------------------
    def stages(self, devices: int) -> int:
        """Problem stages on ``devices`` devices."""
        return self.chunks * devices

    def device_of(self, stage: int, devices: int) -> int:
        if not 0 <= stage < self.stages(devices):
            raise OpplanError(f"stage {stage} is not in a {self.name} layout of {self.stages(devices)} stages")
        if self.kind in (LayoutKind.CONTIGUOUS, LayoutKind.INTERLEAVED):
            return stage % devices
        return stage if stage < devices else 2 * devices - 1 - stage

    def placement(self, devices: int) -> list[int]:
        """Device of every problem stage, in stage order."""
        return [self.device_of(s, devices) for s in range(self.stages(devices))]

    @property
    def stage_fraction(self) -> float:
        """Share of a full (1F1B) stage one problem stage carries: mirrored stages are whole copies."""
        return 1.0 if self.kind == LayoutKind.MIRRORED else 1.0 / self.chunks

    def check(self, devices: int, microbatches: int, who: str | None = None) -> None:
        """Raise when the layout cannot hold ``devices`` devices and ``microbatches`` micro-batches;
        ``who`` names the schedule in the message (default: the layout)."""
        for value, field in ((devices, "devices"), (microbatches, "microbatches")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OpplanError(f"{field} must be a positive integer, got {value!r}", field=field)
        who = who or f"the {self.name} layout"
        if self.kind == LayoutKind.MIRRORED:
            if devices % 2:
                raise OpplanError(f"{who} needs an even number of devices, got P={devices}", field="devices")
            if microbatches % 2:
                raise OpplanError(f"{who} needs an even number of micro-batches (half enter at each end), "
                                  f"got M={microbatches}", field="microbatches")

    def problem_microbatches(self, microbatches: int) -> int:
        """Micro-batch indices of the problem (mirrored: per direction)."""
        return microbatches // self.microbatch_split

    def schedule_microbatches(self, problem: Problem) -> int:
        """The user's M for a problem laid out this way."""
        return problem.microbatches * self.microbatch_split

    def matches(self, problem: Problem) -> bool:
        """True when the problem's (schedule) stages sit where this layout puts them."""
        if not problem.is_unit_level:
            return [s.device for s in problem.stages] == self.placement(problem.num_devices)
        want = self.placement(problem.num_devices)
        return problem.num_layout_stages == len(want) and all(
            problem.stages[u].device == device for s, device in enumerate(want) for u in problem.units_of(s))

    # --- problems ------------------------------------------------------------------------------
    def uniform_problem(self, devices: int, microbatches: int, forward: float = 1.0, input_grad: float = 1.0,
                        weight_grad: float = 1.0, fb: float | None = None,
                        memory_units: Sequence[float] | float | None = None, param_units: float = 0.0) -> Problem:
        """The synthetic pipeline of the published formulas, laid out this way.

        One activation unit = one micro-batch of one full stage; a chunk of 1/c stage allocates 1/c.
        ``fb`` is the time of one forward overlapped with one full backward of a full stage.
        """
        self.check(devices, microbatches)
        k = self.stage_fraction
        problem = uniform_problem(self.stages(devices), self.problem_microbatches(microbatches), forward * k,
                                  input_grad * k, weight_grad * k, placement=self.placement(devices), devices=devices,
                                  memory_units=memory_units, fb_overlap=None if fb is None else fb * k,
                                  param_units=param_units * k)
        if k != 1.0:
            problem = replace(problem, stages=tuple(replace(s, activation_bytes=k) for s in problem.stages))
        if self.kind == LayoutKind.MIRRORED:  # two independent chains, one per direction
            problem = replace(problem, edges=tuple(e for e in problem.edges if e.src != devices - 1))
        return replace(problem, name=f"{self.name} uniform P={devices} M={microbatches}")

    def model_problem(self, model: ModelGraph, cluster: Cluster, microbatches: int, overlap_factor: float = 1.0,
                      groups: Sequence[Sequence[str]] | None = None, granularity: str = "stage") -> Problem:
        """``model`` cut into cost-balanced contiguous stages (or ``groups``, one per model stage)
        laid out on every device of ``cluster``; ``microbatches`` is the user's M. Below ``stage``
        granularity every stage is split into units (``opplan.granularity``)."""
        devices = cluster.size
        self.check(devices, microbatches)
        check_granularity(granularity)
        micro = self.problem_microbatches(microbatches)
        unit = activation_unit_bytes(model, devices)

        def placed(stage_groups: Sequence[Sequence[str]], placement: Sequence[int], first: int = 0) -> Problem:
            """Stages ``first``, ``first + 1``, ... of the layout, split into units if asked."""
            if granularity == "stage":
                return stage_problem(model, cluster, stage_groups, placement, micro, overlap_factor)
            units, streams, parents, devices_of = [], [], [], []
            for g, ops in enumerate(stage_groups):
                for unit_ops, stream in split_units(model, ops, granularity):
                    units.append(unit_ops)
                    streams.append(stream)
                    parents.append(first + g)
                    devices_of.append(placement[g])
            return stage_problem(model, cluster, units, devices_of, micro, overlap_factor, streams, parents)

        if self.kind == LayoutKind.MIRRORED:
            groups = groups or balanced_partition(model, devices, cluster)
            down = placed(groups, list(range(devices)))
            up = placed(groups, [devices - 1 - j for j in range(devices)], first=devices)
            offset = down.num_stages
            stages = tuple(replace(s, name=f"{s.name}.fwd") for s in down.stages) \
                + tuple(replace(s, name=f"{s.name}.rev") for s in up.stages)
            edges = down.edges + tuple(StageEdge(e.src + offset, e.dst + offset, e.bytes, e.transfer_ms)
                                       for e in up.edges)
            problem = Problem(stages, edges, down.devices, micro, overlap_factor, down.activation_unit_bytes,
                              model.name)
            name = f"{model.name} (mirrored, {devices} devices)"
        else:
            n_stages = self.stages(devices)
            groups = groups or balanced_partition(model, n_stages, cluster)
            problem = placed(groups, self.placement(devices))
            name = f"{model.name} ({self.kind.value}, {n_stages} stages on {devices} devices)"
        if granularity != "stage":
            name = f"{name}, {granularity} level: {problem.num_stages} units"
        # activations in units of one device's share of the model (a 1F1B stage), so the numbers of
        # every layout on the same model compare
        return replace(problem, activation_unit_bytes=unit if unit > 0 else problem.activation_unit_bytes,
                       name=name)


CONTIGUOUS = Layout(LayoutKind.CONTIGUOUS)
V_SHAPE = Layout(LayoutKind.V, chunks=2)
MIRRORED = Layout(LayoutKind.MIRRORED, chunks=2, microbatch_split=2)


def interleaved(chunks: int = 2) -> Layout:
    return Layout(LayoutKind.INTERLEAVED, chunks=chunks)
