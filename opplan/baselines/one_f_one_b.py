"""1F1B / PipeDream-flush (Narayanan et al., 2021): warm up, alternate one forward and one full
backward, drain.

    device r:  F × (P-1-r)  |  (F, BW) × (M-P+1+r)  |  BW × (P-1-r)

Bubble (P-1)(F+B+W) on every device, like GPipe, but device r holds at most P-r micro-batches.
"""
from __future__ import annotations

from opplan.actions import ComputeTask, Entry, Pass
from opplan.baselines.base import Baseline, Published


def one_f_one_b_warmup(devices: int, microbatches: int, rank: int) -> int:
    """Forwards device ``rank`` runs before its first backward: P−1−r, so that the first
    gradient arrives just as the warm-up ends (ZB-H1 keeps the same warm-up)."""
    return min(devices - 1 - rank, microbatches)


class OneFOneB(Baseline):
    name = "1f1b"
    title = "1F1B"
    published = Published("(P−1)(F+B+W)", "P (rank r: P−r)")

    def rank_order(self, devices: int, microbatches: int, rank: int) -> list[Entry]:
        warmup = one_f_one_b_warmup(devices, microbatches, rank)
        ops: list[ComputeTask] = []
        # Phase 1: warm-up forwards
        ops += [ComputeTask(rank, Pass.FORWARD, m) for m in range(warmup)]
        # Phase 2: steady state, one forward then the oldest full backward
        for k in range(microbatches - warmup):
            ops += [ComputeTask(rank, Pass.FORWARD, warmup + k), ComputeTask(rank, Pass.FULL_BACKWARD, k)]
        # Phase 3: cool-down, the remaining full backwards
        ops += [ComputeTask(rank, Pass.FULL_BACKWARD, m) for m in range(microbatches - warmup, microbatches)]
        return ops
