"""ZB-V (Qi et al., 2024, arXiv 2401.10241 §6): 2P chunks in a V — device r holds chunk r on the way
down and chunk 2P−1−r on the way back — with B and W split, so the last chunk of every micro-batch
sits on device 0 next to its first, and W's fill what is left of the bubbles. Same order as
PyTorch's ScheduleZBVZeroBubble.

    device r:  F0 × (2P−1−2r)                     warm-up on the down chunk
               (F1, F0) × r                        reach the up chunk
               (F1, B1, W1) × (P−r)                the up chunk turns around at once
               (F0, B0, W0, F1, B1, W1) × ...     steady state, both chunks
               (B0, B1) × r                        drain, input gradients first
               (B0, W0) × (P−r)
               W1 ..., W0 ...                      the remaining weight gradients

Peak P (in full-stage units: 2P chunks of half a stage); "zero bubble" when F = B = W and the
next iteration's warm-up fills the end — within one iteration see docs/baselines.md.
"""
from __future__ import annotations

from opplan.actions import ComputeTask, Entry, Pass
from opplan.baselines.base import Baseline, Published
from opplan.layout import V_SHAPE


class ZBV(Baseline):
    name = "zb-v"
    title = "ZB-V"
    layout = V_SHAPE
    published = Published("≈0 when F=B=W", "P")

    def rank_order(self, devices: int, microbatches: int, rank: int) -> list[Entry]:
        # Generate as if there were at least 2P-1 micro-batches, then drop the extra ones
        # (PyTorch does the same: the pattern needs that many to fill the V).
        n = max(2 * devices - 1, microbatches)
        down, up = rank, 2 * devices - 1 - rank
        count = {"F0": 0, "F1": 0, "B0": 0, "B1": 0}
        F, B, W = Pass.FORWARD, Pass.INPUT_GRAD, Pass.WEIGHT_GRAD
        ops: list[ComputeTask] = []

        def act(stage: int, kind: Pass, key: str | None = None, mb: int | None = None) -> None:
            if mb is None:
                mb = count[key]
                count[key] += 1
            ops.append(ComputeTask(stage, kind, mb))

        # Phase 1: forwards on the down chunk
        for _ in range(2 * (devices - rank) - 1):
            act(down, F, "F0")
        # Phase 2: alternate up and down forwards
        for _ in range(rank):
            act(up, F, "F1")
            act(down, F, "F0")
        # Phase 3: up chunk forward, input grad, weight grad at once
        for _ in range(devices - rank):
            mb = count["B1"]
            act(up, F, "F1")
            act(up, B, "B1")
            act(up, W, mb=mb)
        # Phase 4: steady state on both chunks
        while count["F1"] < count["F0"] or count["F0"] < n:
            if count["F0"] < n:
                act(down, F, "F0")
            mb = count["B0"]
            act(down, B, "B0")
            act(down, W, mb=mb)
            act(up, F, "F1")
            mb = count["B1"]
            act(up, B, "B1")
            act(up, W, mb=mb)
        # Phase 5: drain, input gradients of both chunks
        w0, w1 = count["B0"], count["B1"]
        for _ in range(rank):
            act(down, B, "B0")
            act(up, B, "B1")
        # Phase 6: drain the down chunk, each B with the oldest pending W
        for _ in range(devices - rank):
            act(down, B, "B0")
            act(down, W, mb=w0)
            w0 += 1
        # Phase 7: the remaining weight gradients, up chunk first
        ops += [ComputeTask(up, W, m) for m in range(w1, count["B1"])]
        ops += [ComputeTask(down, W, m) for m in range(w0, count["B0"])]
        return [op for op in ops if op.microbatch < microbatches]
