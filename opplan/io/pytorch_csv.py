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
from pathlib import Path
from typing import Iterable, Sequence

from opplan.errors import OpplanError, read_user_file

_TORCH_ACTION = re.compile(r"^(\d+)(F|I|W|B)(\d+)$")
_OUR_ACTION = re.compile(r"^(\d+)(F|BW|B|W)(\d+)$")
_TO_OURS = {"F": "F", "I": "B", "W": "W", "B": "BW"}
_TO_TORCH = {v: k for k, v in _TO_OURS.items()}
_OVERLAP = "OVERLAP_F_B"


def action_from_torch(cell: str, where: str = "cell") -> str:
    """One PyTorch action string as our order entry (``7I0`` -> ``7B0``, ``7B3`` -> ``7BW3``)."""
    text = cell.strip()
    if text.startswith("("):
        if not text.endswith(")" + _OVERLAP):
            raise OpplanError(f"{where}: {text!r} is not an overlapped action '(a;b){_OVERLAP}'")
        members = text[1:-len(_OVERLAP) - 1].split(";")
        if len(members) < 2:
            raise OpplanError(f"{where}: overlapped action {text!r} needs two sub-actions")
        return "(" + ";".join(action_from_torch(m, where) for m in members) + ")"
    m = _TORCH_ACTION.match(text)
    if not m:
        raise OpplanError(f"{where}: {text!r} is not a compute action like 2F0, 2I0, 2W0, 2B0 "
                          "(communication actions are not supported in compute_only CSVs)")
    return f"{m.group(1)}{_TO_OURS[m.group(2)]}{m.group(3)}"


def action_to_torch(entry: str) -> str:
    """One of our order entries as a PyTorch action string."""
    text = entry.strip()
    if text.startswith("(") and text.endswith(")"):
        members = [p.strip() for p in text[1:-1].split(";")]
        kinds = []
        for member in members:
            m = _OUR_ACTION.match(member)
            if not m:
                raise OpplanError(f"cannot write block {text!r} as a PyTorch action: {member!r} is not a compute task")
            kinds.append((m.group(1), m.group(2), m.group(3)))
        if len(kinds) == 2 and kinds[0][1] == "B" and kinds[1][1] == "W" and kinds[0][::2] == kinds[1][::2]:
            return f"{kinds[0][0]}B{kinds[0][2]}"            # (2B0;2W0) is a full backward
        if len(kinds) == 2 and kinds[0][1] == "F" and kinds[1][1] in ("B", "BW"):
            return f"({action_to_torch(members[0])};{action_to_torch(members[1])}){_OVERLAP}"
        raise OpplanError(f"cannot write block {text!r} as a PyTorch action: only a forward overlapped with a "
                          "backward, (aF;bBW), has a PyTorch form")
    m = _OUR_ACTION.match(text)
    if not m:
        raise OpplanError(f"cannot write {text!r} as a PyTorch action: not a compute task like 2F0")
    return f"{m.group(1)}{_TO_TORCH[m.group(2)]}{m.group(3)}"


def lists_from_csv_text(text: str, source: str = "csv") -> list[list[str]]:
    """Per-rank entry lists from PyTorch CSV text."""
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    if not rows:
        raise OpplanError(f"{source}: no schedule rows")
    return [[action_from_torch(cell, f"{source} row {r + 1} column {c + 1}")
             for c, cell in enumerate(row) if cell.strip()] for r, row in enumerate(rows)]


def lists_to_csv_text(lists: Sequence[Iterable[str]]) -> str:
    """PyTorch CSV text (one row per rank) from per-device entry lists."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for entries in lists:
        writer.writerow([action_to_torch(e) for e in entries])
    return out.getvalue()


def read_csv(path: str | Path) -> list[list[str]]:
    return lists_from_csv_text(read_user_file(path, "CSV file"), str(path))


def write_csv(lists: Sequence[Iterable[str]], path: str | Path) -> None:
    Path(path).write_text(lists_to_csv_text(lists), encoding="utf-8")
