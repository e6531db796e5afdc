"""Task names as typed records, and the codec between the records and their text.

The text stays the wire format (order files, plan JSON, task-graph keys):
  ``2F0``   stage 2, forward, micro-batch 0        ``2B0`` input gradient   ``2W0`` weight gradient
  ``2BW0``  full backward (the input and weight gradients as one task)
  ``1>2F0`` the forward activation of micro-batch 0 sent from stage 1 to stage 2
  ``2>1B0`` the gradient of micro-batch 0 sent back from stage 2 to stage 1
  ``(0F7;7BW3)`` an order entry whose members run as one block (DualPipe's overlapped F&B)

Producers build records and write ``str(record)``; consumers that need a name's parts call
``parse_task``/``parse_entry`` rather than matching the text themselves, so the notation is
defined here once. Loops over every task of a 100k-task plan, where building a record per name
would cost more than the work itself, use the text helpers instead (``compute_name``,
``compute_name_head``, ``compute_names``, ``transfer_name``, ``entry_names``,
``is_transfer_name``): the same notation, written and read without records. Numbers are written
without leading zeros, and only that canonical text is accepted, so
``str(parse_entry(text)) == text`` for every name written here.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from opplan.errors import OpplanError


class Pass(str, Enum):
    """A compute pass, valued by its letters in task names."""

    FORWARD = "F"
    INPUT_GRAD = "B"
    WEIGHT_GRAD = "W"
    FULL_BACKWARD = "BW"

    # the letters as plain text (Enum's own str() gives "Pass.FORWARD"), at the speed of str's own
    __str__ = str.__str__
    __format__ = str.__format__

    @property
    def is_backward(self) -> bool:
        return self is not Pass.FORWARD

    @property
    def frees_activations(self) -> bool:
        """The pass at whose end a micro-batch's stored activations are no longer needed."""
        return self is Pass.WEIGHT_GRAD or self is Pass.FULL_BACKWARD


_PASSES = {p.value: p for p in Pass}
_NUMBER = r"(0|[1-9][0-9]*)"
_COMPUTE_RE = re.compile(rf"{_NUMBER}(F|BW|B|W){_NUMBER}")
_TRANSFER_RE = re.compile(rf"{_NUMBER}>{_NUMBER}(F|B){_NUMBER}")
_SHOWN = 60
_EXAMPLES = "like 2F0, 2B0, 2W0, 2BW0, 1>2F0 or 2>1B0"


def _quoted(text: str) -> str:
    """``text`` for an error message: quoted, and cut short so a pasted file cannot flood the line."""
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "...")


def _not_text(value: object, what: str) -> OpplanError:
    shown = repr(value)
    return OpplanError(f"{what} must be text, got {type(value).__name__} "
                       f"{shown if len(shown) <= _SHOWN else shown[:_SHOWN - 3] + '...'}")


def _check_count(value: object, what: str) -> None:
    if type(value) is not int or value < 0:
        raise OpplanError(f"{what} must be a non-negative integer, got {value!r}")


def _as_pass(value: object, what: str) -> Pass:
    if type(value) is Pass:
        return value
    found = _PASSES.get(value) if isinstance(value, str) else None
    if found is None:
        raise OpplanError(f"{what} must be one of {', '.join(_PASSES)}, got {value!r}")
    return found


def compute_name(stage: int | str, pass_: Pass | str, microbatch: int | str) -> str:
    """``str(ComputeTask(stage, pass_, microbatch))`` without building or checking the record
    (numbers may be given as their digits): for loops that name every task of a 100k-task plan."""
    return f"{stage}{pass_}{microbatch}"


def compute_name_head(stage: int, pass_: Pass | str) -> str:
    """A compute name without its micro-batch: every compute name is its head followed by the
    micro-batch's digits, so a loop naming every task of a plan can append them itself."""
    return f"{stage}{pass_}"


def compute_names(stage: int, pass_: Pass | str, microbatches: int) -> list[str]:
    """The names of ``stage``'s ``pass_`` for micro-batches 0, 1, ..., ``microbatches`` − 1: what
    checks of 100k-task plans build, at a fraction of the cost of one name at a time."""
    head = compute_name_head(stage, pass_)
    return [head + str(m) for m in range(microbatches)]


def transfer_name(src: int, dst: int, pass_: Pass | str, microbatch: int) -> str:
    """``str(TransferTask(src, dst, pass_, microbatch))`` without building or checking the record."""
    return f"{src}>{dst}{pass_}{microbatch}"


def is_transfer_name(name: str) -> bool:
    """Whether a task name is a transfer, without parsing it (only transfers hold an arrow), for
    scans over every task of a plan that must not fail on a name the problem does not know."""
    return ">" in name


@dataclass(frozen=True, slots=True)
class ComputeTask:
    """One pass of one micro-batch through one stage, run on the stage's device."""

    stage: int
    pass_: Pass
    microbatch: int

    def __post_init__(self) -> None:
        stage, microbatch = self.stage, self.microbatch
        if type(stage) is not int or stage < 0 or type(microbatch) is not int or microbatch < 0:
            _check_count(stage, "compute task stage")
            _check_count(microbatch, "compute task micro-batch")
        if type(self.pass_) is not Pass:
            object.__setattr__(self, "pass_", _as_pass(self.pass_, "compute task pass"))

    def __str__(self) -> str:
        return compute_name(self.stage, self.pass_.value, self.microbatch)

    @classmethod
    def parse(cls, text: str) -> ComputeTask:
        return _parse_kind(text, cls, "a transfer, not a compute task")

    def halves(self) -> tuple[ComputeTask, ...]:
        """The tasks this one stands for when the backward is split: a full backward is its input
        gradient then its weight gradient, run as one block; any other task is itself."""
        if self.pass_ is Pass.FULL_BACKWARD:
            return (ComputeTask(self.stage, Pass.INPUT_GRAD, self.microbatch),
                    ComputeTask(self.stage, Pass.WEIGHT_GRAD, self.microbatch))
        return (self,)


@dataclass(frozen=True, slots=True)
class TransferTask:
    """A tensor of one micro-batch moving between two stages on different devices: the forward
    activation (pass F, src before dst) or the gradient sent back (pass B, src after dst)."""

    src: int
    dst: int
    pass_: Pass
    microbatch: int

    def __post_init__(self) -> None:
        _check_count(self.src, "transfer source stage")
        _check_count(self.dst, "transfer destination stage")
        _check_count(self.microbatch, "transfer micro-batch")
        if self.src == self.dst:
            raise OpplanError(f"a transfer joins two different stages, got {self.src} to itself")
        pass_ = _as_pass(self.pass_, "transfer pass")
        if pass_ is not Pass.FORWARD and pass_ is not Pass.INPUT_GRAD:
            raise OpplanError(f"a transfer carries an activation (F) or a gradient (B), got {pass_.value}")
        if pass_ is not self.pass_:
            object.__setattr__(self, "pass_", pass_)

    def __str__(self) -> str:
        return transfer_name(self.src, self.dst, self.pass_.value, self.microbatch)

    @classmethod
    def parse(cls, text: str) -> TransferTask:
        return _parse_kind(text, cls, "a compute task, not a transfer")


def _parse_kind(text: str, kind: type, mismatch: str):
    """``parse_task`` narrowed to one record type; the other one is named in the error."""
    task = parse_task(text)
    if not isinstance(task, kind):
        raise OpplanError(f"{_quoted(str(text))} is {mismatch}")
    return task


@dataclass(frozen=True, slots=True)
class Block:
    """Compute tasks one resource runs as one block: they start and end together."""

    members: tuple[ComputeTask, ...]

    def __post_init__(self) -> None:
        members = tuple(self.members)
        if len(members) < 2:
            raise OpplanError(f"a block needs at least two tasks, got {len(members)}")
        for member in members:
            if not isinstance(member, ComputeTask):
                raise OpplanError(f"a block holds compute tasks only, got {_quoted(str(member))}")
        if len(set(members)) < len(members):
            twice = next(str(m) for i, m in enumerate(members) if m in members[:i])
            raise OpplanError(f"a block lists {twice} twice")
        object.__setattr__(self, "members", members)

    def __str__(self) -> str:
        return "(" + ";".join(str(m) for m in self.members) + ")"

    @classmethod
    def parse(cls, text: str) -> Block:
        entry = parse_entry(text)
        if not isinstance(entry, Block):
            raise OpplanError(f"{_quoted(str(text))} is a single task, not a block '(a;b)'")
        return entry


Task = ComputeTask | TransferTask
Entry = ComputeTask | TransferTask | Block


def parse_task(text: str | Task) -> Task:
    """The record a task name stands for (surrounding spaces ignored); a record passes through."""
    if isinstance(text, (ComputeTask, TransferTask)):
        return text
    if not isinstance(text, str):
        raise _not_text(text, "a task name")
    name = text.strip()
    match = _COMPUTE_RE.fullmatch(name)
    if match:
        stage, pass_, microbatch = match.groups()
        return ComputeTask(int(stage), _PASSES[pass_], int(microbatch))
    match = _TRANSFER_RE.fullmatch(name)
    if match:
        src, dst, pass_, microbatch = match.groups()
        try:
            return TransferTask(int(src), int(dst), _PASSES[pass_], int(microbatch))
        except OpplanError as error:   # well formed, but not a transfer (1>1F0)
            raise OpplanError(f"{_quoted(text)}: {error}") from None
    if name.startswith("(") and name.endswith(")"):
        raise OpplanError(f"{_quoted(text)} is a block of tasks, not one task name")
    raise OpplanError(f"{_quoted(text)} is not a task name ({_EXAMPLES})")


def parse_entry(text: str | Entry) -> Entry:
    """The record an order entry stands for: a task, or a block ``(a;b;...)`` of compute tasks.

    A group of one, ``(2F0)``, is that task, as it has always run. A record passes through.
    """
    if isinstance(text, (ComputeTask, TransferTask, Block)):
        return text
    if not isinstance(text, str):
        raise _not_text(text, "an order entry")
    entry = text.strip()
    if not (entry.startswith("(") and entry.endswith(")")):
        return parse_task(text)
    members = []
    for part in entry[1:-1].split(";"):
        try:
            members.append(parse_task(part))
        except OpplanError as error:
            raise OpplanError(f"in block {_quoted(text)}: {error}") from None
    if len(members) == 1:
        return members[0]
    try:
        return Block(tuple(members))
    except OpplanError as error:
        raise OpplanError(f"in block {_quoted(text)}: {error}") from None


def entry_names(entry: str | Entry, split_backward: bool = False) -> tuple[str, ...]:
    """The names of the tasks an order entry stands for: the task, or a block's members; with
    ``split_backward`` a full backward stands for its input and weight gradients (``2BW0`` is
    ``2B0``, ``2W0``).

    The simulator reads every entry its lookup misses through here, so an entry of compute names
    only, the common case, is checked and split as text, accepting exactly what ``parse_entry``
    accepts; anything else (a transfer, a mistake) goes through the records, which word the error.
    """
    if isinstance(entry, str):
        text = entry.strip()
        if text.startswith("(") and text.endswith(")"):
            parts = [part.strip() for part in text[1:-1].split(";")]
            if len(set(parts)) == len(parts):          # a block lists no task twice
                names = _compute_names_as_text(parts, split_backward)
                if names is not None:
                    return names
        else:
            names = _compute_names_as_text((text,), split_backward)
            if names is not None:
                return names
    parsed = parse_entry(entry)
    tasks: tuple[Task, ...] = parsed.members if isinstance(parsed, Block) else (parsed,)
    if split_backward:
        tasks = tuple(half for task in tasks for half in (task.halves() if isinstance(task, ComputeTask) else (task,)))
    return tuple(map(str, tasks))


def _compute_names_as_text(parts: Sequence[str], split_backward: bool) -> tuple[str, ...] | None:
    """``entry_names`` of parts that are all compute names, or None if one is not."""
    names: list[str] = []
    for part in parts:
        match = _COMPUTE_RE.fullmatch(part)
        if match is None:
            return None
        stage, pass_, microbatch = match.groups()
        if split_backward and pass_ == "BW":
            names += (compute_name(stage, "B", microbatch), compute_name(stage, "W", microbatch))
        else:
            names.append(part)
    return tuple(names)
