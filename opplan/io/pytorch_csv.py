"""PyTorch's pipeline CSV (``torch.distributed.pipelining``, ``_dump_csv``/``_load_csv`` in the
"compute_only" format) to and from our per-device entry lists.

One row per rank, one action per cell: ``{stage}{type}{micro-batch}`` with F forward, I input
gradient (our B), W weight gradient, B full backward (our BW), and ``(a;b)OVERLAP_F_B`` a forward
and a backward overlapped (our block ``(a;b)``). Empty cells are idle steps and are skipped.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from opplan.actions import Block, ComputeTask, Entry, Pass, TransferTask, parse_entry
from opplan.errors import OpplanError, read_user_file

_TORCH_ACTION = re.compile(r"^(\d+)(F|I|W|B)(\d+)$")
_TO_OURS = {"F": Pass.FORWARD, "I": Pass.INPUT_GRAD, "W": Pass.WEIGHT_GRAD, "B": Pass.FULL_BACKWARD}
_TO_TORCH = {v: k for k, v in _TO_OURS.items()}
_OVERLAP = "OVERLAP_F_B"


def _task_from_torch(cell: str, where: str) -> ComputeTask:
    text = cell.strip()
    m = _TORCH_ACTION.match(text)
    if not m:
        raise OpplanError(f"{where}: {text!r} is not a compute action like 2F0, 2I0, 2W0, 2B0 "
                          "(communication actions are not supported in compute_only CSVs)")
    return ComputeTask(int(m.group(1)), _TO_OURS[m.group(2)], int(m.group(3)))


def _entry_from_torch(cell: str, where: str) -> ComputeTask | Block:
    text = cell.strip()
    if not text.startswith("("):
        return _task_from_torch(text, where)
    if not text.endswith(")" + _OVERLAP):
        raise OpplanError(f"{where}: {text!r} is not an overlapped action '(a;b){_OVERLAP}'")
    members = text[1:-len(_OVERLAP) - 1].split(";")
    if len(members) < 2:
        raise OpplanError(f"{where}: overlapped action {text!r} needs two sub-actions")
    tasks = tuple(_task_from_torch(m, where) for m in members)
    try:
        return Block(tasks)
    except OpplanError as error:
        raise OpplanError(f"{where}: {error}") from None


def action_from_torch(cell: str, where: str = "cell") -> str:
    """One PyTorch action string as our order entry (``7I0`` -> ``7B0``, ``7B3`` -> ``7BW3``)."""
    return str(_entry_from_torch(cell, where))


def _torch_name(task: ComputeTask) -> str:
    return f"{task.stage}{_TO_TORCH[task.pass_]}{task.microbatch}"


def action_to_torch(entry: str | Entry) -> str:
    """One of our order entries (text or record) as a PyTorch action string."""
    text = str(entry).strip()
    try:
        parsed = parse_entry(entry)
    except OpplanError as error:
        raise OpplanError(f"cannot write {text!r} as a PyTorch action: {error}") from None
    if isinstance(parsed, ComputeTask):
        return _torch_name(parsed)
    if isinstance(parsed, TransferTask):
        raise OpplanError(f"cannot write {text!r} as a PyTorch action: not a compute task like 2F0")
    members = parsed.members
    first = members[0]
    full = ComputeTask(first.stage, Pass.FULL_BACKWARD, first.microbatch)
    if members == full.halves():
        return _torch_name(full)                                   # (2B0;2W0) is a full backward
    if len(members) == 2 and first.pass_ is Pass.FORWARD and members[1].pass_ in (Pass.INPUT_GRAD,
                                                                                  Pass.FULL_BACKWARD):
        return f"({_torch_name(first)};{_torch_name(members[1])}){_OVERLAP}"
    raise OpplanError(f"cannot write block {text!r} as a PyTorch action: only a forward overlapped with a "
                      "backward, (aF;bBW), has a PyTorch form")


def lists_from_csv_text(text: str, source: str = "csv") -> list[list[str]]:
    """Per-rank entry lists from PyTorch CSV text."""
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    if not rows:
        raise OpplanError(f"{source}: no schedule rows")
    return [[action_from_torch(cell, f"{source} row {r + 1} column {c + 1}")
             for c, cell in enumerate(row) if cell.strip()] for r, row in enumerate(rows)]


def lists_to_csv_text(lists: Sequence[Iterable[str | Entry]]) -> str:
    """PyTorch CSV text (one row per rank) from per-device entry lists."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for entries in lists:
        writer.writerow([action_to_torch(e) for e in entries])
    return out.getvalue()


def read_csv(path: str | Path) -> list[list[str]]:
    return lists_from_csv_text(read_user_file(path, "CSV file"), str(path))


def write_csv(lists: Sequence[Iterable[str | Entry]], path: str | Path) -> None:
    Path(path).write_text(lists_to_csv_text(lists), encoding="utf-8")
