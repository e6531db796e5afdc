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
from opplan.errors import OpplanError, read_user_file, write_user_file
from opplan.io.documents import parse_json
from opplan.limits import check_integer, check_quantity, check_text, shown, shown_path
from opplan.outputs import Metrics, Provenance, Violation
from opplan.problem import Problem

PLAN_FORMAT = "opplan-plan/1"
MAX_ENTRY_CHARS = 1000      # an order entry: a task name, or a block of a few of them


def parse_entry(entry: str | Entry, backward: str = "split") -> tuple[str, ...]:
    """The task names an order entry stands for (one, or the members of a group); in split mode a
    full backward stands for its input and weight gradients."""
    return entry_names(entry, split_backward=backward == "split")


@dataclass(frozen=True)
class Order:
    """Per resource, the sequence of entries it runs. Links left out are served first come, first served.

    ``fences`` are (before, after) task pairs across resources: ``after`` starts only once ``before``
    has ended. They describe a program that waits for its own communication, as a plain
    implementation does when the next chunk starts only after the last all-to-all of the previous
    one; a planner's own orders have none.
    """

    sequences: Mapping[str, tuple[str, ...]]   # entries may be given as records; they are kept as text
    backward: str = "split"
    fences: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.backward not in ("split", "full"):
            raise OpplanError(f"backward must be 'split' or 'full', got {self.backward!r}")
        object.__setattr__(self, "sequences", {str(r): tuple(map(str, seq)) for r, seq in self.sequences.items()})
        object.__setattr__(self, "fences", tuple((str(a), str(b)) for a, b in self.fences))

    def without_fences(self) -> Order:
        """The same sequences with every wait between resources lifted (what a planner may retime)."""
        return Order(self.sequences, self.backward) if self.fences else self

    def slots(self, resource: str) -> list[tuple[str, ...]]:
        return [parse_entry(e, self.backward) for e in self.sequences.get(resource, ())]

    def to_text(self) -> str:
        lines = [f"{r}: {' '.join(seq)}" for r, seq in self.sequences.items()]
        if self.fences:
            lines.append(f"{FENCES_LINE}: {' '.join(f'{a}<{b}' for a, b in self.fences)}")
        return "\n".join(lines)

    @classmethod
    def from_text(cls, text: str, backward: str = "split") -> Order:
        seqs: dict[str, tuple[str, ...]] = {}
        fences: list[tuple[str, str]] = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if ":" not in line:
                raise OpplanError(f"order line {number}: expected 'resource: entry entry ...', got {shown(line.strip())}")
            resource, rest = line.split(":", 1)
            resource = check_text(resource.strip(), f"order line {number}: the resource name")
            if resource == FENCES_LINE:
                fences += [_fence(pair.split("<", 1) if "<" in pair else pair, f"order line {number}: fence")
                           for pair in rest.split()]
                continue
            seqs[resource] = tuple(check_text(e, f"order line {number}: entry", MAX_ENTRY_CHARS) for e in rest.split())
        return cls(seqs, backward, tuple(fences))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"backward": self.backward, "sequences": {r: list(s) for r, s in self.sequences.items()}}
        if self.fences:
            data["fences"] = [list(pair) for pair in self.fences]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Order:
        if not isinstance(data, Mapping):
            raise OpplanError(f"plan order must be an object, got {type(data).__name__} {shown(data)}")
        unknown = sorted((k for k in data if k not in ("backward", "sequences", "fences")), key=str)
        if unknown:
            raise OpplanError(f"plan order has unknown field {shown(unknown[0])}")
        sequences = data.get("sequences")
        if not isinstance(sequences, Mapping):
            raise OpplanError(f"plan order.sequences must be an object of resource: [entries], got {shown(sequences)}")
        checked: dict[str, tuple[str, ...]] = {}
        for resource, seq in sequences.items():
            check_text(resource, "plan order resource")
            if not isinstance(seq, list):
                raise OpplanError(f"plan order.sequences[{shown(resource)}] must be a list of entries, got {shown(seq)}")
            checked[resource] = tuple(check_text(e, f"plan order entry on {shown(resource)}", MAX_ENTRY_CHARS)
                                      for e in seq)
        backward = data.get("backward", "split")
        if backward not in ("split", "full"):
            raise OpplanError(f"plan order.backward must be 'split' or 'full', got {shown(backward)}")
        fences = data.get("fences", [])
        if not isinstance(fences, list):
            raise OpplanError(f"plan order.fences must be a list of [before, after] task pairs, got {shown(fences)}")
        return cls(checked, backward, tuple(_fence(pair, f"plan order.fences[{i}]") for i, pair in enumerate(fences)))


FENCES_LINE = "fences"     # the order-text line of (before<after) pairs


def _fence(pair: Any, where: str) -> tuple[str, str]:
    """One (before, after) pair of task names, checked."""
    if not isinstance(pair, list | tuple) or len(pair) != 2:
        raise OpplanError(f"{where} must be a [before, after] pair of task names, got {shown(pair)}")
    return (check_text(pair[0], f"{where}: the task before", MAX_ENTRY_CHARS),
            check_text(pair[1], f"{where}: the task after", MAX_ENTRY_CHARS))


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
            raise OpplanError(f"{source}: not an opplan plan (format {shown(data.get('format'))}, "
                              f"expected {PLAN_FORMAT!r})")
        unknown = sorted((k for k in data if k not in _PLAN_FIELDS), key=str)
        if unknown:
            raise OpplanError(f"{source}: unknown top-level field {shown(unknown[0])}")
        for key in ("problem", "order", "tasks"):
            if key not in data:
                raise OpplanError(f"{source}: missing required field {key!r}")
        if not isinstance(data["tasks"], list):
            raise OpplanError(f"{source}: field 'tasks' must be a list of [task, resource, start, end, group] rows")
        try:
            problem = Problem.from_dict(data["problem"])
            order = Order.from_dict(data["order"])
            tasks = [_task_row(row, i) for i, row in enumerate(data["tasks"])]
            metrics = None if data.get("metrics") is None else Metrics.from_dict(data["metrics"])
            provenance = Provenance.from_dict(data.get("provenance", {}))
        except OpplanError as error:
            raise OpplanError(f"{source}: {error}") from None   # a plan file's field, not an option
        return cls(problem, order, tasks, metrics, provenance)


_PLAN_FIELDS = ("format", "provenance", "metrics", "problem", "order", "tasks")


def _task_row(row: Any, i: int) -> TimedTask:
    """One ``[task, resource, start, end, group]`` row of a plan file, checked."""
    shape = f"task row #{i} must be [task, resource, start, end, group]"
    if not isinstance(row, list) or len(row) not in (4, 5):
        raise OpplanError(f"{shape}, got {shown(row)}")
    key = check_text(row[0], f"task row #{i}: the task name", MAX_ENTRY_CHARS)
    resource = check_text(row[1], f"task row #{i}: the resource")
    start = check_quantity(row[2], f"task row #{i}: the start")
    end = check_quantity(row[3], f"task row #{i}: the end")
    group = -1 if len(row) == 4 else check_integer(row[4], f"task row #{i}: the group", -1)
    return TimedTask(key, resource, start, end, group)


def save_plan(plan: Plan, path: str | Path) -> None:
    write_user_file(path, json.dumps(plan.to_dict()) + "\n", "plan")


def load_plan(path: str | Path) -> Plan:
    text = read_user_file(path, "plan file")
    where = shown_path(path)
    if not text.strip():
        raise OpplanError(f"{where}: the file is empty")
    try:
        data = parse_json(text, where)
    except OpplanError:
        raise
    except json.JSONDecodeError as error:
        raise OpplanError(f"{where}: not valid JSON ({error.msg} at line {error.lineno})") from None
    except ValueError as error:     # an integer past Python's conversion limit
        raise OpplanError(f"{where}: not valid JSON ({str(error)[:80]})") from None
    return Plan.from_dict(data, where)


def order_from_lists(problem: Problem, per_device: Iterable[Iterable[str | Entry]],
                     backward: str = "split") -> Order:
    """An order from per-device action lists (device index → entries as text or records), the
    baselines' output."""
    lists = list(per_device)
    if len(lists) != problem.num_devices:
        raise OpplanError(f"order has {len(lists)} device lists, problem has {problem.num_devices} devices")
    return Order({problem.devices[d].name: tuple(seq) for d, seq in enumerate(lists)}, backward)
