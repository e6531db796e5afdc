"""Zero Bubble pipelines, handcrafted (Qi et al., 2024, arXiv 2401.10241): split the backward into
B (input gradient, on the critical path) and W (weight gradient, deferrable) and use W to fill
the bubbles of 1F1B.

ZB-H1 keeps 1F1B's memory (P micro-batches): device r defers its first r W's, which fills the
drain; its bubble is (P−1)(F+B−W). Same order as PyTorch's ScheduleInterleavedZeroBubble with
one stage per device.

    device r:  F × (P−1−r)
               (F, B) × r                 W deferred
               (F, B, W) × (M−P+1)        W of the oldest deferred micro-batch
               (B, W) × (P−1−r)           drain
               W × r                      the deferred W's

ZB-H2 doubles the warm-up (2P−1 micro-batches in flight on device 0) so that the first B finds
every device busy, and moves the W's the drain no longer needs to the very end (the paper's
"parallelogram"). Its published bubble (P−1)(F+B−2W) — zero when F=B=W — assumes the next
iteration's warm-up fills that end, i.e. no optimizer barrier; within one iteration every device
still waits (P−1)·F for its first input or idles as long at the end (see docs/baselines.md).

    device r:  F × (2P−1−2r)               warm-up, up to the first B
               (B, W, F) × (M−2P+1)        steady state, one of each per micro-batch
               (B, F) × 2r                  W kept back: memory tops up to 2P−1
               (B, W) × (2P−1−2r)           drain
               W × 2r                       the parallelogram tail

Within one iteration this gives max((P−1)(F+B−2W), (P−1)·F) on every device: the published
figure, floored by the wait for the first input.
"""
from __future__ import annotations

from opplan.actions import ComputeTask, Entry, Pass
from opplan.baselines.base import Baseline, Published
from opplan.baselines.one_f_one_b import one_f_one_b_warmup


class ZBH1(Baseline):
    name = "zb-h1"
    title = "ZB-H1"
    published = Published("(P−1)(F+B−W)", "P")

    def rank_order(self, devices: int, microbatches: int, rank: int) -> list[Entry]:
        deferred = rank                      # W's held back to fill the drain
        warmup = one_f_one_b_warmup(devices, microbatches, rank)
        next_w = 0
        ops: list[ComputeTask] = []

        def oldest_w() -> ComputeTask:
            nonlocal next_w
            next_w += 1
            return ComputeTask(rank, Pass.WEIGHT_GRAD, next_w - 1)

        # Phase 1: warm-up forwards (as 1F1B)
        ops += [ComputeTask(rank, Pass.FORWARD, m) for m in range(warmup)]
        # Phase 2: steady state F, B — and W once `deferred` of them are held back
        for k in range(microbatches - warmup):
            ops += [ComputeTask(rank, Pass.FORWARD, warmup + k), ComputeTask(rank, Pass.INPUT_GRAD, k)]
            if k >= deferred:
                ops.append(oldest_w())
        # Phase 3: drain, B of the remaining micro-batches, each followed by a deferred W
        for k in range(microbatches - warmup, microbatches):
            ops.append(ComputeTask(rank, Pass.INPUT_GRAD, k))
            if k >= deferred:
                ops.append(oldest_w())
        # Phase 4: the W's still held back
        while next_w < microbatches:
            ops.append(oldest_w())
        return ops


class ZBH2(Baseline):
    name = "zb-h2"
    title = "ZB-H2"
    published = Published("(P−1)(F+B−2W)", "2P−1")

    def rank_order(self, devices: int, microbatches: int, rank: int) -> list[Entry]:
        warmup = min(2 * (devices - 1 - rank) + 1, microbatches)
        steady = microbatches - warmup
        # W's rank r keeps back for the tail: 2r of them, which tops its memory up to 2P-1
        reserve = min(2 * rank, steady)
        next_b = next_w = 0
        ops: list[ComputeTask] = []

        def b() -> ComputeTask:
            nonlocal next_b
            next_b += 1
            return ComputeTask(rank, Pass.INPUT_GRAD, next_b - 1)

        def w() -> ComputeTask:
            nonlocal next_w
            next_w += 1
            return ComputeTask(rank, Pass.WEIGHT_GRAD, next_w - 1)

        # Phase 1: warm-up, forwards until the first input gradient can arrive
        ops += [ComputeTask(rank, Pass.FORWARD, m) for m in range(warmup)]
        # Phase 2: steady state B, W, F; the last `reserve` cycles skip their W
        for k in range(steady):
            ops.append(b())
            if k < steady - reserve:
                ops.append(w())
            ops.append(ComputeTask(rank, Pass.FORWARD, warmup + k))
        # Phase 3: drain, each B followed by a W while more than `reserve` W's are pending
        while next_b < microbatches:
            ops.append(b())
            if next_b - next_w > reserve:
                ops.append(w())
        # Phase 4: the parallelogram tail, the reserved W's
        while next_w < microbatches:
            ops.append(w())
        return ops
