"""Devices, links, accelerator presets and the cost model that turns operator costs into times.

Times are milliseconds throughout. A device's ``speed`` is relative to its accelerator preset
(1.0 = nominal), which is how heterogeneous clusters are described.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opplan.errors import OpplanError
from opplan.graph import Operator


@dataclass(frozen=True)
class Accelerator:
    """Published peak figures of one accelerator (dense BF16/FP16, no sparsity)."""

    name: str
    peak_tflops: float
    memory_bytes: float
    link_gbytes_per_s: float
    source: str
    ep_gbytes_per_s: float = 50.0   # expert-parallel (scale-out) bandwidth per device
    ep_source: str = ""


GB = 1e9
GiB = 2**30

# Figures are the vendors' own datasheet numbers (dense, no 2:4 sparsity), in decimal units.
# The expert-parallel bandwidth is the scale-out NIC per device of the vendor's reference 8-way
# server: the all-to-all of expert parallelism crosses nodes, so it runs at the NIC, not NVLink.
ACCELERATORS: dict[str, Accelerator] = {
    a.name: a for a in (
        Accelerator("H100", 989.0, 80 * GB, 900.0,
                    "NVIDIA H100 SXM5 datasheet: 989 TFLOP/s dense BF16, 80 GB HBM3, NVLink 4 900 GB/s",
                    50.0, "DGX H100: one ConnectX-7 400 Gb/s InfiniBand NDR port per GPU (the 50 GB/s per H800 "
                          "GPU of DeepSeek-V3's cluster, arXiv 2412.19437)"),
        Accelerator("A100", 312.0, 80 * GB, 600.0,
                    "NVIDIA A100 SXM4 80GB datasheet: 312 TFLOP/s dense BF16, 80 GB HBM2e, NVLink 3 600 GB/s",
                    25.0, "DGX A100: one ConnectX-6 200 Gb/s InfiniBand HDR port per GPU"),
        Accelerator("H20", 148.0, 96 * GB, 900.0,
                    "NVIDIA H20 (China SKU) spec sheet: 148 TFLOP/s dense BF16, 96 GB HBM3, NVLink 900 GB/s",
                    50.0, "assumed: one 400 Gb/s NIC per GPU, as HGX H100/H800 servers (H20 cuts compute, "
                          "not the network)"),
        Accelerator("Ascend910B", 313.0, 64 * GB, 392.0,
                    "Huawei Ascend 910B: ~313 TFLOP/s FP16 (910B3 figure), 64 GB HBM2e, HCCS 392 GB/s",
                    25.0, "Atlas 800T A2: one 200 GE RoCE port per NPU"),
    )
}

DEFAULT_EFFICIENCY = 0.5  # model FLOPs utilisation assumed when FLOPs become time
# expert-parallel bandwidth per device without a preset: 400 Gb/s InfiniBand NDR per GPU, the
# scale-out network of DGX H100 and of DeepSeek-V3's H800 cluster
DEFAULT_EP_GBYTES_PER_S = 50.0


def check_ep_bandwidth(value: Any) -> float:
    """The expert-parallel bandwidth in GB/s if it is a positive finite number (OpplanError naming
    ``ep_bandwidth`` otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise OpplanError(f"ep_bandwidth must be a positive finite number of GB/s, got {value!r}",
                          field="ep_bandwidth")
    return float(value)


def _positive(value: Any, where: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise OpplanError(f"{where} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise OpplanError(f"{where} must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Device:
    """One accelerator. ``memory_bytes`` may be ``inf`` (no cap)."""

    name: str
    memory_bytes: float = math.inf
    speed: float = 1.0
    peak_tflops: float = 989.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise OpplanError(f"device name must be a non-empty string, got {self.name!r}")
        _positive(self.memory_bytes, f"device {self.name!r} field memory_bytes")
        _positive(self.speed, f"device {self.name!r} field speed")
        _positive(self.peak_tflops, f"device {self.name!r} field peak_tflops")


@dataclass(frozen=True)
class Link:
    """A directed point-to-point link; a transfer takes ``latency_ms + bytes / bandwidth``."""

    bandwidth_gbytes_per_s: float = 900.0
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        _positive(self.bandwidth_gbytes_per_s, "link bandwidth")
        _positive(self.latency_ms, "link latency", allow_zero=True)

    def transfer_ms(self, nbytes: float) -> float:
        if nbytes <= 0:
            return 0.0
        return self.latency_ms + nbytes / (self.bandwidth_gbytes_per_s * 1e9) * 1e3


@dataclass(frozen=True)
class Cluster:
    """Devices plus links: one default link, and optional overrides per (src, dst) device index.

    ``ep_bandwidth_gbytes_per_s`` is the expert-parallel network bandwidth per device: the
    communication operators of a model (costs in bytes, e.g. MoE all-to-all) move their volume at
    it, because expert parallelism spans nodes while the pipeline link may be NVLink.
    """

    devices: tuple[Device, ...]
    link: Link = Link()
    link_overrides: tuple[tuple[int, int, Link], ...] = ()
    efficiency: float = DEFAULT_EFFICIENCY
    ep_bandwidth_gbytes_per_s: float = DEFAULT_EP_GBYTES_PER_S
    _links: dict[tuple[int, int], Link] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.devices:
            raise OpplanError("a cluster needs at least one device")
        names = [d.name for d in self.devices]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise OpplanError(f"duplicate device name {sorted(dup)[0]!r}")
        if not 0 < self.efficiency <= 1:
            raise OpplanError(f"efficiency must be in (0, 1], got {self.efficiency!r}")
        object.__setattr__(self, "ep_bandwidth_gbytes_per_s", check_ep_bandwidth(self.ep_bandwidth_gbytes_per_s))
        links = {}
        for src, dst, link in self.link_overrides:
            for i in (src, dst):
                if not 0 <= i < len(self.devices):
                    raise OpplanError(f"link override names device index {i}, cluster has {len(self.devices)}")
            links[(src, dst)] = link
        object.__setattr__(self, "_links", links)

    @property
    def size(self) -> int:
        return len(self.devices)

    def link_between(self, src: int, dst: int) -> Link:
        return self._links.get((src, dst), self.link)

    def operator_times(self, op: Operator, device: int) -> tuple[float, float, float]:
        """Milliseconds of forward, input-grad and weight-grad of ``op`` on ``device``."""
        dev = self.devices[device]
        unit = op.costs.unit
        if unit == "time":
            return op.costs.scaled(1.0 / dev.speed)
        if unit == "flops":
            flops_per_ms = dev.peak_tflops * 1e12 * self.efficiency * dev.speed / 1e3
            return op.costs.scaled(1.0 / flops_per_ms)
        # communication volume (expert-parallel all-to-all): moved at the expert-parallel bandwidth
        return op.costs.scaled(1e3 / (self.ep_bandwidth_gbytes_per_s * 1e9))

    def with_memory(self, caps: list[float] | float) -> Cluster:
        """The same cluster with new memory caps (one value for all, or one per device)."""
        if isinstance(caps, (int, float)):
            caps = [float(caps)] * self.size
        if len(caps) != self.size:
            raise OpplanError(f"got {len(caps)} memory caps for {self.size} devices")
        devices = tuple(Device(d.name, float(c), d.speed, d.peak_tflops) for d, c in zip(self.devices, caps))
        return Cluster(devices, self.link, self.link_overrides, self.efficiency, self.ep_bandwidth_gbytes_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": [{"name": d.name, "memory_bytes": _num_out(d.memory_bytes), "speed": d.speed,
                         "peak_tflops": d.peak_tflops} for d in self.devices],
            "link": {"bandwidth_gbytes_per_s": self.link.bandwidth_gbytes_per_s, "latency_ms": self.link.latency_ms},
            "link_overrides": [{"src": s, "dst": t, "bandwidth_gbytes_per_s": link.bandwidth_gbytes_per_s,
                                "latency_ms": link.latency_ms} for s, t, link in self.link_overrides],
            "efficiency": self.efficiency,
            "ep_bandwidth_gbytes_per_s": self.ep_bandwidth_gbytes_per_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cluster:
        try:
            devices = tuple(Device(d["name"], _num_in(d.get("memory_bytes")), d.get("speed", 1.0),
                                   d.get("peak_tflops", 989.0)) for d in data["devices"])
            link = Link(**data.get("link", {}))
            overrides = tuple((o["src"], o["dst"], Link(o["bandwidth_gbytes_per_s"], o.get("latency_ms", 0.0)))
                              for o in data.get("link_overrides", []))
        except (KeyError, TypeError) as error:
            raise OpplanError(f"cluster: malformed field ({error})") from None
        return cls(devices, link, overrides, data.get("efficiency", DEFAULT_EFFICIENCY),
                   data.get("ep_bandwidth_gbytes_per_s", DEFAULT_EP_GBYTES_PER_S))


def _num_out(x: float) -> float | None:
    return None if math.isinf(x) else x


def _num_in(x: float | None) -> float:
    return math.inf if x is None else x


def uniform_cluster(devices: int, memory_bytes: float = math.inf, accelerator: str | None = None,
                    latency_ms: float = 0.0, ep_bandwidth: float | None = None) -> Cluster:
    """``devices`` identical devices; with an accelerator preset its FLOP/s, link bandwidth and
    expert-parallel bandwidth apply (``ep_bandwidth`` in GB/s overrides the last)."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise OpplanError(f"devices must be a positive integer, got {devices!r}", field="devices")
    acc = preset(accelerator) if accelerator else None
    peak = acc.peak_tflops if acc else 989.0
    bandwidth = acc.link_gbytes_per_s if acc else 900.0
    if ep_bandwidth is None:
        ep_bandwidth = acc.ep_gbytes_per_s if acc else DEFAULT_EP_GBYTES_PER_S
    return Cluster(tuple(Device(f"dev{i}", memory_bytes, 1.0, peak) for i in range(devices)),
                   Link(bandwidth, latency_ms), ep_bandwidth_gbytes_per_s=ep_bandwidth)


def preset(name: str) -> Accelerator:
    for key, acc in ACCELERATORS.items():
        if key.lower() == str(name).lower():
            return acc
    raise OpplanError(f"unknown accelerator {name!r} (known: {', '.join(ACCELERATORS)})")
