"""GPipe (Huang et al., 2019): every forward, then every backward.

    device r:  F0 F1 ... F(M-1)  BW0 BW1 ... BW(M-1)

Bubble (P-1)(F+B+W) on every device; all M micro-batches are in flight at the turn.
"""
from __future__ import annotations

from opplan.actions import ComputeTask, Entry, Pass
from opplan.baselines.base import Baseline, Published


class GPipe(Baseline):
    name = "gpipe"
    title = "GPipe"
    published = Published("(P−1)(F+B+W)", "M")

    def rank_order(self, devices: int, microbatches: int, rank: int) -> list[Entry]:
        ops: list[ComputeTask] = []
        # Phase 1: all forwards (fill)
        ops += [ComputeTask(rank, Pass.FORWARD, m) for m in range(microbatches)]
        # Phase 2: all full backwards, in micro-batch order (drain)
        ops += [ComputeTask(rank, Pass.FULL_BACKWARD, m) for m in range(microbatches)]
        return ops
