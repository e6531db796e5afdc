"""What a user compares schedules on: a model (or the synthetic uniform pipeline), a cluster,
micro-batches and memory caps. Every schedule — each baseline and opplan — is built from the same
scenario, so a comparison is always at the same memory.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from opplan.cluster import Cluster, Link, check_ep_bandwidth, preset, uniform_cluster
from opplan.errors import OpplanError
from opplan.granularity import check_granularity
from opplan.graph import ModelGraph
from opplan.layout import Layout
from opplan.limits import MAX_DEVICES, check_task_count
from opplan.problem import Problem
from opplan.units import MemoryCap


@dataclass(frozen=True)
class Scenario:
    """``model=None`` means the uniform pipeline of the published formulas (times f, b, w per
    stage; memory caps in activation units). With a model, caps are in bytes per device."""

    devices: int
    microbatches: int
    model: ModelGraph | None = None
    f: float = 1.0
    b: float = 1.0
    w: float = 1.0
    fb: float | None = None                  # uniform: time of one F overlapped with one full backward
    overlap_factor: float = 1.0              # model: F&B pair time = factor × (F + B + W)
    memory_caps: tuple[float, ...] | None = None
    accelerator: str | None = None
    link: Link | None = None
    speeds: tuple[float, ...] | None = None  # heterogeneous devices (model scenarios)
    ep_bandwidth: float | None = None        # GB/s per device for all-to-all (default: the accelerator's)
    granularity: str = "stage"               # model: how finely stages split into units (opplan.granularity)

    def __post_init__(self) -> None:
        check_granularity(self.granularity)
        if self.model is None and self.granularity != "stage":
            raise OpplanError("granularity applies to a model graph; the uniform pipeline's stages have no "
                              "operators to split", field="granularity")
        if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1:
            raise OpplanError(f"devices must be a positive integer, got {self.devices!r}")
        if isinstance(self.microbatches, bool) or not isinstance(self.microbatches, int) or self.microbatches < 1:
            raise OpplanError(f"micro-batches must be a positive integer, got {self.microbatches!r}")
        if self.devices > MAX_DEVICES:
            raise OpplanError(f"devices must be at most {MAX_DEVICES}, got {self.devices}", field="devices")
        # before any problem is built: a stage (or, finer, an operator) per device, three passes
        # and two transfers per micro-batch, twice over for layouts with two chunks per device
        units = self.devices if self.model is None or self.granularity == "stage" else \
            max(self.devices, len(self.model.operators))
        check_task_count(10 * units * self.microbatches, f"{self.devices} devices and {self.microbatches} micro-batches")
        if self.memory_caps is not None:
            caps = tuple(float(c) for c in self.memory_caps)
            if len(caps) == 1:
                caps = caps * self.devices
            if len(caps) != self.devices:
                raise OpplanError(f"got {len(caps)} memory caps for {self.devices} devices")
            if any(math.isnan(c) or c <= 0 for c in caps):
                raise OpplanError(f"memory caps must be positive, got {list(caps)}")
            object.__setattr__(self, "memory_caps", caps)
        if self.speeds is not None and len(self.speeds) != self.devices:
            raise OpplanError(f"got {len(self.speeds)} device speeds for {self.devices} devices")
        if self.ep_bandwidth is not None:
            object.__setattr__(self, "ep_bandwidth", check_ep_bandwidth(self.ep_bandwidth))

    @classmethod
    def from_options(cls, model: ModelGraph | None = None, *, devices: int | None = None, stages: int | None = None,
                     microbatches: int | None = None, f: float = 1.0, b: float = 1.0, w: float = 1.0,
                     fb: float | None = None, memory_cap: MemoryCap | None = None, accelerator: str | None = None,
                     link: Link | None = None, speeds: Sequence[float] | None = None,
                     overlap_factor: float = 1.0, granularity: str = "stage",
                     ep_bandwidth: float | None = None) -> Scenario:
        """A scenario from what a user set, by the one set of rules every front end shares.

        ``model=None`` is the uniform pipeline. ``stages`` is that pipeline's name for ``devices``
        (either may be given; both must agree). ``fb`` applies to the uniform pipeline only,
        ``overlap_factor``, ``speeds`` and ``ep_bandwidth`` (GB/s per device for communication
        operators in bytes) to a model only; a cap in bytes needs a model. Errors
        name the offending field (``OpplanError.field``).
        """
        if microbatches is None:
            raise OpplanError("microbatches M is required", field="microbatches")
        _check_count(microbatches, "microbatches")
        for name, value in (("stages", stages), ("devices", devices)):
            if value is not None:
                _check_count(value, name)
        if devices is not None and stages is not None and devices != stages:
            raise OpplanError(f"stages {stages} and devices {devices} disagree (one number, named either way); "
                              "give one of them", field="devices")
        count = devices if devices is not None else stages
        if count is None:
            raise (OpplanError("stages P is required (the number of pipeline devices)", field="stages")
                   if model is None else
                   OpplanError("devices P is required (the devices to place the model on)", field="devices"))
        for name, value in (("f", f), ("b", b), ("w", w)):
            _check_number(value, name, "a non-negative finite number", lambda v: 0 <= v < math.inf)
        if fb is not None:
            if model is not None:
                raise OpplanError("fb is the F&B time of a uniform pipeline; it does not apply to a model", field="fb")
            _check_number(fb, "fb", "a positive number", lambda v: 0 < v < math.inf)
        if overlap_factor != 1.0:
            if model is None:
                raise OpplanError("overlap_factor applies to a model; give fb for the uniform pipeline",
                                  field="overlap_factor")
            _check_number(overlap_factor, "overlap_factor", "in (0, 2]", lambda v: 0 < v <= 2)
        if speeds is not None:
            if model is None:
                raise OpplanError("speeds apply to a model; the uniform pipeline's devices are identical",
                                  field="speeds")
            if len(speeds) != count:
                raise OpplanError(f"got {len(speeds)} device speeds for {count} devices", field="speeds")
            for value in speeds:
                _check_number(value, "speeds", "positive and finite", lambda v: 0 < v < math.inf)
            speeds = tuple(float(v) for v in speeds)
        if ep_bandwidth is not None:
            if model is None:
                raise OpplanError("ep_bandwidth applies to a model's communication operators; the uniform "
                                  "pipeline has none", field="ep_bandwidth")
            ep_bandwidth = check_ep_bandwidth(ep_bandwidth)
        if memory_cap is not None and not isinstance(memory_cap, MemoryCap):
            raise OpplanError(f"memory_cap must be a MemoryCap, got {type(memory_cap).__name__}", field="memory_cap")
        caps = None if memory_cap is None else memory_cap.bytes_per_device(model, count)
        if accelerator is not None:
            try:
                preset(accelerator)
            except OpplanError as error:
                raise OpplanError(str(error), field="accelerator") from None
        return cls(devices=count, microbatches=microbatches, model=model, f=float(f), b=float(b), w=float(w),
                   fb=None if fb is None else float(fb), overlap_factor=float(overlap_factor), memory_caps=caps,
                   accelerator=accelerator, link=link, speeds=speeds, granularity=granularity,
                   ep_bandwidth=ep_bandwidth)

    @property
    def is_uniform(self) -> bool:
        return self.model is None

    @property
    def name(self) -> str:
        return self.model.name if self.model else f"uniform P={self.devices}"

    def cluster(self) -> Cluster:
        """The devices a model scenario runs on: caps in bytes (default: the accelerator's memory),
        speeds, links, expert-parallel bandwidth (default: the accelerator's)."""
        from opplan.cluster import preset

        accelerator = self.accelerator or (self.model.accelerator if self.model else None) or "H100"
        base = uniform_cluster(self.devices, preset(accelerator).memory_bytes, accelerator=accelerator,
                               ep_bandwidth=self.ep_bandwidth)
        devices = base.devices
        if self.speeds is not None:
            from opplan.cluster import Device

            devices = tuple(Device(d.name, d.memory_bytes, s, d.peak_tflops) for d, s in zip(devices, self.speeds))
        cluster = Cluster(devices, self.link or base.link, ep_bandwidth_gbytes_per_s=base.ep_bandwidth_gbytes_per_s)
        return cluster.with_memory(list(self.memory_caps)) if self.memory_caps else cluster

    def problem_for(self, layout: Layout, groups: Sequence[Sequence[str]] | None = None) -> Problem:
        """The placed problem of this scenario in ``layout`` (model scenarios: balanced stages, or
        ``groups`` of operators, one per model stage)."""
        if self.is_uniform:
            return layout.uniform_problem(self.devices, self.microbatches, self.f, self.b, self.w,
                                          fb=self.fb, memory_units=self.memory_caps)
        return layout.model_problem(self.model, self.cluster(), self.microbatches, self.overlap_factor, groups,
                                    self.granularity)

    def with_caps(self, caps: Sequence[float] | float | None) -> Scenario:
        if caps is None:
            return replace(self, memory_caps=None)
        if isinstance(caps, (int, float)):
            caps = (float(caps),)
        return replace(self, memory_caps=tuple(caps))


def _check_count(value: object, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OpplanError(f"{field} must be a positive integer, got {value!r}", field=field)


def _check_number(value: object, field: str, what: str, ok: Callable[[float], bool]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise OpplanError(f"{field} must be {what}, got {value!r}", field=field)
