"""GPipe (Huang et al., 2019): every forward, then every backward.

    device r:  F0 F1 ... F(M-1)  BW0 BW1 ... BW(M-1)

Bubble (P-1)(F+B+W) on every device; all M micro-batches are in flight at the turn.
"""
from __future__ import annotations

from opplan.actions import ComputeTask, Pass
from opplan.baselines.base import Baseline


class GPipe(Baseline):
    name = "gpipe"
    title = "GPipe"
    bubble_formula = "(P−1)(F+B+W)"
    memory_formula = "M"

    def lists(self, devices: int, microbatches: int) -> list[list[str]]:
        self.check(devices, microbatches)
        orders = []
        for rank in range(devices):
            ops: list[ComputeTask] = []
            # Phase 1: all forwards (fill)
            ops += [ComputeTask(rank, Pass.FORWARD, m) for m in range(microbatches)]
            # Phase 2: all full backwards, in micro-batch order (drain)
            ops += [ComputeTask(rank, Pass.FULL_BACKWARD, m) for m in range(microbatches)]
            orders.append([str(op) for op in ops])
        return orders
