"""What a PyTorch schedule CSV says about the problem it runs on: ranks, stages, micro-batches,
and the layout its stage→rank mapping follows (PyTorch infers that mapping from the CSV, so do we).

This is what lets ``opplan simulate --order schedule.csv`` time any CSV the runtime loads,
PyTorch's own generated schedules included, without being told P, M or the layout.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opplan.actions import Block, parse_entry
from opplan.errors import OpplanError
from opplan.io.pytorch_csv import read_csv
from opplan.layout import CONTIGUOUS, V_SHAPE, Layout, interleaved


@dataclass(frozen=True)
class CsvSchedule:
    """Per-rank order entries (our notation) read from a PyTorch CSV, with what they imply."""

    lists: tuple[tuple[str, ...], ...]
    placement: tuple[int, ...]           # rank of every stage, in stage order
    microbatches: int

    @property
    def ranks(self) -> int:
        return len(self.lists)

    @property
    def stages(self) -> int:
        return len(self.placement)

    def layout(self) -> Layout | None:
        """The layout whose stage→device map this CSV follows, or None if it follows none."""
        candidates = [CONTIGUOUS, V_SHAPE] + [interleaved(c) for c in range(2, self.stages // max(self.ranks, 1) + 1)]
        for layout in candidates:
            if layout.stages(self.ranks) == self.stages and tuple(layout.placement(self.ranks)) == self.placement:
                return layout
        return None


def schedule_from_lists(lists: Sequence[Sequence[str]], source: str = "csv") -> CsvSchedule:
    """The schedule a CSV's rows describe; errors name a stage on two ranks or a missing stage."""
    where: dict[int, int] = {}
    last_mb = -1
    for rank, entries in enumerate(lists):
        for entry in entries:
            parsed = parse_entry(entry)
            for task in parsed.members if isinstance(parsed, Block) else (parsed,):
                other = where.setdefault(task.stage, rank)
                if other != rank:
                    raise OpplanError(f"{source}: stage {task.stage} runs on ranks {other} and {rank}; "
                                      "PyTorch's runtime holds a stage on one rank")
                last_mb = max(last_mb, task.microbatch)
    if not where:
        raise OpplanError(f"{source}: no actions")
    absent = [s for s in range(max(where) + 1) if s not in where]
    if absent:
        raise OpplanError(f"{source}: stage {absent[0]} has no actions (stages must be numbered 0, 1, ... "
                          f"{max(where)})")
    return CsvSchedule(tuple(tuple(e) for e in lists), tuple(where[s] for s in range(len(where))), last_mb + 1)


def read_schedule(path: str) -> CsvSchedule:
    return schedule_from_lists(read_csv(path), str(path))
