"""What a user compares schedules on: a model (or the synthetic uniform pipeline), a cluster,
micro-batches and memory caps. Every schedule — each baseline and opplan — is built from the same
scenario, so a comparison is always at the same memory.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from opplan.cluster import Cluster, Link, uniform_cluster
from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.layout import Layout
from opplan.problem import Problem


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

    def __post_init__(self) -> None:
        if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1:
            raise OpplanError(f"devices must be a positive integer, got {self.devices!r}")
        if isinstance(self.microbatches, bool) or not isinstance(self.microbatches, int) or self.microbatches < 1:
            raise OpplanError(f"micro-batches must be a positive integer, got {self.microbatches!r}")
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

    @property
    def is_uniform(self) -> bool:
        return self.model is None

    @property
    def name(self) -> str:
        return self.model.name if self.model else f"uniform P={self.devices}"

    def cluster(self) -> Cluster:
        """The devices a model scenario runs on: caps in bytes (default: the accelerator's memory),
        speeds, links."""
        from opplan.cluster import preset

        accelerator = self.accelerator or (self.model.accelerator if self.model else None) or "H100"
        base = uniform_cluster(self.devices, preset(accelerator).memory_bytes, accelerator=accelerator)
        devices = base.devices
        if self.speeds is not None:
            from opplan.cluster import Device

            devices = tuple(Device(d.name, d.memory_bytes, s, d.peak_tflops) for d, s in zip(devices, self.speeds))
        cluster = Cluster(devices, self.link or base.link)
        return cluster.with_memory(list(self.memory_caps)) if self.memory_caps else cluster

    def problem_for(self, layout: Layout, groups: Sequence[Sequence[str]] | None = None) -> Problem:
        """The placed problem of this scenario in ``layout`` (model scenarios: balanced stages, or
        ``groups`` of operators, one per model stage)."""
        if self.is_uniform:
            return layout.uniform_problem(self.devices, self.microbatches, self.f, self.b, self.w,
                                          fb=self.fb, memory_units=self.memory_caps)
        return layout.model_problem(self.model, self.cluster(), self.microbatches, self.overlap_factor, groups)

    def with_caps(self, caps: Sequence[float] | float | None) -> "Scenario":
        if caps is None:
            return replace(self, memory_caps=None)
        if isinstance(caps, (int, float)):
            caps = (float(caps),)
        return replace(self, memory_caps=tuple(caps))
