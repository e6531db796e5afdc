"""Orders (what each resource runs, in sequence) and plans (timed tasks + metrics + provenance).

An order entry is a task name (see ``actions.py``) or a group run as one block on one resource:
``(0F7;7BW3)`` runs a forward and a full backward overlapped (DualPipe's F&B), and in split mode
``2BW0`` is shorthand for the group ``(2B0;2W0)``. All members of a group start and end together.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from opplan.actions import Entry, entry_names, is_transfer_name
from opplan.errors import OpplanError, read_user_file
from opplan.outputs import Metrics, Provenance, Violation
from opplan.problem import Problem

PLAN_FORMAT = "opplan-plan/1"


def parse_entry(entry: str | Entry, backward: str = "split") -> tuple[str, ...]:
    """The task names an order entry stands for (one, or the members of a group); in split mode a
    full backward stands for its input and weight gradients."""
    return entry_names(entry, split_backward=backward == "split")


@dataclass(frozen=True)
class Order:
    """Per resource, the sequence of entries it runs. Links left out are served first come, first served."""

    sequences: Mapping[str, tuple[str, ...]]   # entries may be given as records; they are kept as text
    backward: str = "split"

    def __post_init__(self) -> None:
        if self.backward not in ("split", "full"):
            raise OpplanError(f"backward must be 'split' or 'full', got {self.backward!r}")
        object.__setattr__(self, "sequences", {str(r): tuple(map(str, seq)) for r, seq in self.sequences.items()})

    def slots(self, resource: str) -> list[tuple[str, ...]]:
        return [parse_entry(e, self.backward) for e in self.sequences.get(resource, ())]

    def to_text(self) -> str:
        return "\n".join(f"{r}: {' '.join(seq)}" for r, seq in self.sequences.items())

    @classmethod
    def from_text(cls, text: str, backward: str = "split") -> Order:
        seqs: dict[str, tuple[str, ...]] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if ":" not in line:
                raise OpplanError(f"order line {number}: expected 'resource: entry entry ...', got {line.strip()!r}")
            resource, rest = line.split(":", 1)
            seqs[resource.strip()] = tuple(rest.split())
        return cls(seqs, backward)

    def to_dict(self) -> dict[str, Any]:
        return {"backward": self.backward, "sequences": {r: list(s) for r, s in self.sequences.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        try:
            return cls({r: tuple(s) for r, s in data["sequences"].items()}, data.get("backward", "split"))
        except (KeyError, AttributeError, TypeError) as error:
            raise OpplanError(f"plan order section is malformed: {error}") from None


class TimedTask(NamedTuple):
    """One task with its times; tasks sharing a non-negative ``group`` ran as one block."""

    task: str
    resource: str
    start: float
    end: float
    group: int = -1

    @property
    def is_transfer(self) -> bool:
        return is_transfer_name(self.task)


@dataclass
class Plan:
    """What we save, compare, draw and export. Produced only by ``simulate.make_plan``."""

    problem: Problem
    order: Order
    tasks: list[TimedTask]
    metrics: Metrics | None = None
    provenance: Provenance = field(default_factory=Provenance)
    violations: list[Violation] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.violations

    @property
    def over_cap(self) -> bool:
        """True when the plan breaks a memory cap (it still shows what the schedule would need)."""
        return any(v.is_memory for v in self.violations)

    @property
    def makespan(self) -> float:
        return max((t.end for t in self.tasks), default=0.0)

    @property
    def schedule_name(self) -> str:
        return self.provenance.schedule

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "provenance": self.provenance.to_dict(),
            "metrics": self.metrics.to_dict() if self.metrics is not None else None,
            "problem": self.problem.to_dict(),
            "order": self.order.to_dict(),
            "tasks": [[t.task, t.resource, t.start, t.end, t.group] for t in self.tasks],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "plan") -> Plan:
        if not isinstance(data, Mapping):
            raise OpplanError(f"{source}: a plan must be a JSON object")
        if data.get("format") != PLAN_FORMAT:
            raise OpplanError(f"{source}: not an opplan plan (format {data.get('format')!r}, expected {PLAN_FORMAT!r})")
        for key in ("problem", "order", "tasks"):
            if key not in data:
                raise OpplanError(f"{source}: missing required field {key!r}")
        if not isinstance(data["tasks"], list):
            raise OpplanError(f"{source}: field 'tasks' must be a list of [task, resource, start, end, group] rows")
        tasks = []
        for i, row in enumerate(data["tasks"]):
            try:
                if not isinstance(row, list):
                    raise TypeError
                key, resource, start, end = row[0], row[1], float(row[2]), float(row[3])
                group = int(row[4]) if len(row) > 4 else -1
            except (TypeError, ValueError, IndexError, OverflowError):
                raise OpplanError(f"{source}: task row #{i} must be [task, resource, start, end, group]") from None
            tasks.append(TimedTask(str(key), str(resource), start, end, group))
        try:
            metrics = None if data.get("metrics") is None else Metrics.from_dict(data["metrics"])
            provenance = Provenance.from_dict(data.get("provenance", {}))
        except OpplanError as error:
            raise OpplanError(f"{source}: {error}") from None
        return cls(Problem.from_dict(data["problem"]), Order.from_dict(data["order"]), tasks, metrics, provenance)


def save_plan(plan: Plan, path: str | Path) -> None:
    Path(path).write_text(json.dumps(plan.to_dict()) + "\n", encoding="utf-8")


def load_plan(path: str | Path) -> Plan:
    text = read_user_file(path, "plan file")
    if not text.strip():
        raise OpplanError(f"{path}: the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise OpplanError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    return Plan.from_dict(data, str(path))


def order_from_lists(problem: Problem, per_device: Iterable[Iterable[str | Entry]],
                     backward: str = "split") -> Order:
    """An order from per-device action lists (device index → entries as text or records), the
    baselines' output."""
    lists = list(per_device)
    if len(lists) != problem.num_devices:
        raise OpplanError(f"order has {len(lists)} device lists, problem has {problem.num_devices} devices")
    return Order({problem.devices[d].name: tuple(seq) for d, seq in enumerate(lists)}, backward)
