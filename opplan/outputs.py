"""What a plan reports about itself: its metrics, where it came from, its status, its violations.

These are plain typed records so that every reader (CLI, dashboard, charts, benchmarks) names
fields instead of string keys, and so that the plan file's JSON has one shape. JSON has no
infinity: an infinite value (no memory cap, no bound) is written as ``null`` everywhere.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from opplan.errors import OpplanError

# The validator's numbered rules; the numbers are part of the plan file and the CLI output.
RULES: dict[int, str] = {
    1: "every task exactly once",
    2: "durations match the problem",
    3: "dependencies, transfer delays and the order's fences respected",
    4: "one task (or block) at a time per resource",
    5: "tasks run on their stage's device and stream",
    6: "memory within each device's cap",
    7: "reported metrics consistent with the times",
    8: "blocks well formed",
}
MEMORY_RULE = 6


def json_number(value: float | None) -> float | None:
    """A float for JSON: infinity becomes ``null`` (the one encoding used in every output)."""
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return None
    return value


def _finite_or_inf(value: Any, what: str) -> float:
    """The reverse of :func:`json_number` for fields where ``null`` means "no limit"."""
    if value is None or value == "inf":   # "inf": plan files written before null was the encoding
        return math.inf
    return _number(value, what)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OpplanError(f"plan field {what} must be a number, got {_short(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise OpplanError(f"plan field {what} must be a finite number, got {_short(value)}")
    return number


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OpplanError(f"plan field {what} must be a non-negative integer, got {_short(value)}")
    return value


def _numbers(value: Any, what: str, inf_ok: bool = False) -> list[float]:
    if not isinstance(value, list):
        raise OpplanError(f"plan field {what} must be a list of numbers, got {_short(value)}")
    convert = _finite_or_inf if inf_ok else _number
    return [convert(v, what) for v in value]


def _short(value: Any) -> str:
    """A value for a message, bounded (``repr`` of a hostile value can be any size)."""
    from opplan.limits import shown

    return shown(value)


def _mapping(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise OpplanError(f"plan field {what} must be an object, got {_short(data)}")
    return data


@dataclass(frozen=True)
class Metrics:
    """The numbers a plan is judged by, per device where it is a list (index = device).

    ``busy``/``bubble`` are the compute stream's; ``exposed_communication`` is the time a device's
    communication stream works while its compute stream idles (all-to-all not hidden by compute).
    """

    makespan: float
    busy: list[float]
    bubble: list[float]
    bubble_ratio: float
    peak_activation_bytes: list[float]
    peak_activations: list[float] | None          # in activation units, when the problem has one
    param_bytes: list[float]
    peak_memory_bytes: list[float]
    memory_cap_bytes: list[float]                 # inf = no cap
    lower_bound: float
    critical_path: float
    device_bound: float
    num_tasks: int
    exposed_communication: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["memory_cap_bytes"] = [json_number(c) for c in self.memory_cap_bytes]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Metrics:
        data = _mapping(data, "metrics")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names - {"lower_bound_parts"})
        if unknown:
            raise OpplanError(f"plan metrics has unknown field {unknown[0]!r}")
        parts = data.get("lower_bound_parts")     # plan files before the typed metrics
        parts = parts if isinstance(parts, Mapping) else {}
        try:
            acts = data.get("peak_activations")
            return cls(
                makespan=_number(data["makespan"], "metrics.makespan"),
                busy=_numbers(data["busy"], "metrics.busy"),
                bubble=_numbers(data["bubble"], "metrics.bubble"),
                bubble_ratio=_number(data["bubble_ratio"], "metrics.bubble_ratio"),
                peak_activation_bytes=_numbers(data["peak_activation_bytes"], "metrics.peak_activation_bytes"),
                peak_activations=None if acts is None else _numbers(acts, "metrics.peak_activations"),
                param_bytes=_numbers(data["param_bytes"], "metrics.param_bytes"),
                peak_memory_bytes=_numbers(data["peak_memory_bytes"], "metrics.peak_memory_bytes"),
                memory_cap_bytes=_numbers(data["memory_cap_bytes"], "metrics.memory_cap_bytes", inf_ok=True),
                lower_bound=_finite_or_inf(data["lower_bound"], "metrics.lower_bound"),
                critical_path=_number(data.get("critical_path", parts.get("critical_path", 0.0)),
                                      "metrics.critical_path"),
                device_bound=_number(data.get("device_bound", parts.get("device", 0.0)), "metrics.device_bound"),
                num_tasks=_count(data["num_tasks"], "metrics.num_tasks"),
                exposed_communication=_numbers(data["exposed_communication"], "metrics.exposed_communication")
                if "exposed_communication" in data else [0.0] * len(data["busy"]),   # files before streams
            )
        except KeyError as missing:
            raise OpplanError(f"plan metrics is missing field {missing.args[0]!r}") from None


class PlanStatus(str, enum.Enum):
    """How far a plan is from the best possible one, as the producer knows it."""

    OPTIMAL = "optimal"          # meets a proven lower bound
    FEASIBLE = "feasible"        # valid, not proven optimal (time limit, gap, or no solver)
    PRUNED = "pruned"            # placement skipped: its bound cannot beat another's plan; warm start kept
    CANCELLED = "cancelled"      # the user stopped the run; the best plan so far is kept
    NOT_SOLVED = "not_solved"    # no time was left for the solver; the warm start is kept


@dataclass
class Provenance:
    """Who made a plan and how: the producer, and for planner results the solver's verdict."""

    producer: str = ""                       # baseline, heuristic, mip, local-search, opplan, order-file
    schedule: str = "plan"                   # the name shown in tables and legends
    placement: str | None = None
    status: PlanStatus | None = None
    solver: str | None = None
    solver_reason: str | None = None
    lower_bound: float | None = None
    gap: float | None = None
    solve_seconds: float | None = None
    warm_start: str | None = None
    improved_on_warm_start: bool | None = None
    placements_tried: list[str] | None = None
    objective: str | None = None
    microbatches: int | None = None          # the user's M (DualPipe's problem holds M/2 per direction)
    scenario: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and not isinstance(self.status, PlanStatus):
            try:
                self.status = PlanStatus(self.status)
            except ValueError:
                raise OpplanError(f"plan status must be one of {', '.join(s.value for s in PlanStatus)}, "
                                  f"got {_short(self.status)}") from None

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that are set, so a baseline's provenance stays two keys long."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = value.value if isinstance(value, PlanStatus) else json_number(value)
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Provenance:
        data = _mapping(data, "provenance")
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise OpplanError(f"plan provenance has unknown field {_short(key)}")
            if value is None:
                continue
            if key in ("lower_bound", "gap", "solve_seconds"):
                value = _number(value, f"provenance.{key}")
            elif key == "microbatches":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise OpplanError(f"plan field provenance.microbatches must be an integer, got {_short(value)}")
            elif key == "improved_on_warm_start":
                if not isinstance(value, bool):
                    raise OpplanError(f"plan field provenance.{key} must be true or false, got {_short(value)}")
            elif key == "placements_tried":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise OpplanError(f"plan field provenance.{key} must be a list of names")
            elif key != "status" and not isinstance(value, str):
                raise OpplanError(f"plan field provenance.{key} must be text, got {_short(value)}")
            kwargs[key] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class Violation:
    """One broken validator rule, naming the tasks and times involved."""

    rule: int
    message: str
    tasks: tuple[str, ...] = ()
    times: tuple[float, ...] = field(default=())

    def __str__(self) -> str:
        return f"rule {self.rule} ({RULES[self.rule]}): {self.message}"

    @property
    def is_memory(self) -> bool:
        return self.rule == MEMORY_RULE

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "name": RULES[self.rule], "message": self.message,
                "tasks": list(self.tasks), "times": list(self.times)}
