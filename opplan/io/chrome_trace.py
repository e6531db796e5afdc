"""Plans and measured runs as Chrome trace JSON (the Trace Event Format read by chrome://tracing,
Perfetto and ``torch.profiler`` viewers), so a planned schedule and a measured one open side by
side in the same tools people already use for PyTorch profiles.

One process per device, one thread per resource it owns: its compute stream, its communication
stream, and the links that leave it. Each task is a complete event ("X") in microseconds.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opplan.actions import is_transfer_name
from opplan.errors import OpplanError
from opplan.schedule import Plan


@dataclass(frozen=True)
class Span:
    """One task on one resource of one device, in milliseconds (the unit of plans)."""

    task: str
    device: int
    resource: str
    start_ms: float
    end_ms: float
    group: int = -1

    def __post_init__(self) -> None:
        if not self.end_ms >= self.start_ms:
            raise OpplanError(f"span {self.task!r} ends ({self.end_ms}) before it starts ({self.start_ms})")


def _category(task: str) -> str:
    if is_transfer_name(task):
        return "transfer"
    body = task.lstrip("0123456789")
    return body.rstrip("0123456789") or "task"


def plan_spans(plan: Plan) -> list[Span]:
    """Every timed task of a plan as a span on the device that owns its resource (a link belongs to
    the device it leaves)."""
    owner = {d.name: i for i, d in enumerate(plan.problem.devices)}

    def device_of(resource: str) -> int:
        head = resource.split("->")[0]
        head = head[:-len(".comm")] if head.endswith(".comm") else head
        if head not in owner:
            raise OpplanError(f"task resource {resource!r} belongs to no device of the plan")
        return owner[head]

    return [Span(t.task, device_of(t.resource), t.resource, t.start, t.end, t.group) for t in plan.tasks]


def trace_events(spans: Iterable[Span], device_names: Sequence[str], label: str = "") -> dict[str, Any]:
    """A Chrome trace object: metadata naming each device and resource, then one event per span."""
    spans = list(spans)
    for span in spans:
        if not 0 <= span.device < len(device_names):
            raise OpplanError(f"span {span.task!r} is on device {span.device}, but there are {len(device_names)}")
    threads: dict[tuple[int, str], int] = {}
    for span in sorted(spans, key=lambda s: (s.device, "->" in s.resource, s.resource)):
        key = (span.device, span.resource)
        if key not in threads:
            threads[key] = sum(1 for d, _ in threads if d == span.device)
    prefix = f"{label}: " if label else ""
    events: list[dict[str, Any]] = []
    for d, name in enumerate(device_names):
        events.append({"ph": "M", "name": "process_name", "pid": d, "tid": 0, "args": {"name": prefix + name}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": d, "tid": 0, "args": {"sort_index": d}})
    for (d, resource), tid in threads.items():
        events.append({"ph": "M", "name": "thread_name", "pid": d, "tid": tid, "args": {"name": resource}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": d, "tid": tid, "args": {"sort_index": tid}})
    for span in spans:
        args: dict[str, Any] = {"start_ms": span.start_ms, "end_ms": span.end_ms}
        if span.group >= 0:
            args["block"] = span.group
        events.append({"ph": "X", "name": span.task, "cat": _category(span.task), "pid": span.device,
                       "tid": threads[(span.device, span.resource)], "ts": span.start_ms * 1000.0,
                       "dur": (span.end_ms - span.start_ms) * 1000.0, "args": args})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def plan_trace(plan: Plan) -> dict[str, Any]:
    """The planned schedule as a Chrome trace (times as the simulator computed them)."""
    label = plan.provenance.schedule or "plan"
    return trace_events(plan_spans(plan), [d.name for d in plan.problem.devices], f"{label} (planned)")


def run_trace(result: Any, device_names: Sequence[str]) -> dict[str, Any]:
    """A measured run (``opplan.runtime.RunResult``) as a Chrome trace: its median iteration, one
    compute thread per rank, with the same task names as the planned trace."""
    spans = [Span(str(task), int(rank), device_names[int(rank)], float(start), float(end))
             for task, rank, start, end in result.spans]
    return trace_events(spans, device_names, f"{result.schedule} (measured)")


def trace_json(trace: dict[str, Any]) -> str:
    return json.dumps(trace) + "\n"
