"""Interleaved 1F1B (Megatron-LM, Narayanan et al., 2021, arXiv 2104.04473): each device holds v
chunks (stage i on device i mod P) and runs 1F1B over its chunks, depth first, in rounds of
micro-batches.

    device r:  F × warm-up (chunk 0 for a round, then chunk 1, ...)
               (F, BW) × (v·M − warm-up)       forwards walk the chunks up, backwards down
               BW × warm-up
    warm-up = (v−1)·round + 2(P−1−r)

Like PyTorch's ScheduleInterleaved1F1B, M need not be a multiple of P: micro-batches go in
``rounds = max(1, M // P)`` rounds of M / rounds each, so M must be a multiple of the round count.
Bubble (P−1)(F+B+W)/v; device 0 holds (v−1)·round + 2P − 1 chunks of 1/v stage each.
"""
from __future__ import annotations

from collections import defaultdict

from opplan.actions import ComputeTask, Entry, Pass
from opplan.baselines.base import Baseline, Published
from opplan.errors import OpplanError
from opplan.layout import interleaved


class Interleaved1F1B(Baseline):
    name = "interleaved-1f1b"
    title = "interleaved 1F1B"
    published = Published("(P−1)(F+B+W)/v", "P+(P−1)/v on rank 0 when P divides M")

    def __init__(self, chunks: int = 2) -> None:
        if isinstance(chunks, bool) or not isinstance(chunks, int) or chunks < 1:
            raise OpplanError(f"interleaved 1F1B chunks per device must be a positive integer, got {chunks!r}")
        self.layout = interleaved(chunks)

    def rounds(self, devices: int, microbatches: int) -> tuple[int, int]:
        rounds = max(1, microbatches // devices)
        return rounds, microbatches // rounds

    def check(self, devices: int, microbatches: int) -> None:
        super().check(devices, microbatches)
        rounds, _ = self.rounds(devices, microbatches)
        if microbatches % rounds:
            raise OpplanError(f"interleaved 1F1B runs M={microbatches} micro-batches in max(1, M // P) = {rounds} "
                              f"rounds of equal size, so M must be a multiple of {rounds} "
                              f"(e.g. {microbatches - microbatches % rounds} or "
                              f"{microbatches + rounds - microbatches % rounds})", field="microbatches")

    def rank_order(self, devices: int, microbatches: int, rank: int) -> list[Entry]:
        v = self.layout.chunks
        _, per_round = self.rounds(devices, microbatches)
        total = v * microbatches
        warmup = min((v - 1) * per_round + 2 * (devices - 1 - rank), total)

        def forward_stage(step: int) -> int:        # chunks upward, one round at a time
            return ((step // per_round) % v) * devices + rank

        def backward_stage(step: int) -> int:       # chunks downward, one round at a time
            return (v - 1 - ((step - warmup) // per_round) % v) * devices + rank

        next_f: dict[int, int] = defaultdict(int)
        next_b: dict[int, int] = defaultdict(int)

        def forward(step: int) -> ComputeTask:
            s = forward_stage(step)
            next_f[s] += 1
            return ComputeTask(s, Pass.FORWARD, next_f[s] - 1)

        def backward(step: int) -> ComputeTask:
            s = backward_stage(step)
            next_b[s] += 1
            return ComputeTask(s, Pass.FULL_BACKWARD, next_b[s] - 1)

        ops: list[ComputeTask] = []
        # Phase 1: warm-up forwards, depth first over the local chunks
        ops += [forward(step) for step in range(warmup)]
        # Phase 2: steady state, one forward and one full backward
        for step in range(warmup, total):
            ops += [forward(step), backward(step)]
        # Phase 3: cool-down, the remaining full backwards
        ops += [backward(step) for step in range(total, total + warmup)]
        return ops
