"""DualPipe (DeepSeek-V3, arXiv 2412.19437; github.com/deepseek-ai/DualPipe): a bidirectional
pipeline. The model's P stages are held twice: device r runs stage r for the micro-batches that
enter at device 0 and stage P−1−r for those that enter at device P−1 (2× parameters), half of the
M micro-batches each way. The steady state overlaps the forward chunk of one micro-batch with the
full backward chunk of another (F&B), hiding the MoE all-to-all behind computation.

In the problem, stages 0..P−1 carry the forward direction (stage j on device j) and stages
P..2P−1 the reverse one (stage P+j, a copy of model stage j, on device P−1−j); each problem
micro-batch index stands for one micro-batch in each direction, so the problem has M/2 of them.

Every device runs the eight phases below, with "phase 0" its chunk nearer the input of its own
direction (for the first half of the devices the forward direction, for the second half the
reverse) and h = min(r, P−1−r) its distance from the nearer end:

    1  F0 × 2(P/2−1−h)            warm-up on the near chunk
    2  (F0, F1) × (h+1)            paired forwards
    3  (B1, W, F1) × (P/2−1−h)     zero bubble: input grad, the oldest deferred W, a forward
    4  (F0&B1, F1&B0) × (M/2−P+h+1)   main step, overlapped pairs (the two middle devices run
                                   their very first pair unoverlapped)
    5  (B1, F1&B0) × (P/2−1−h)
    6  (B1, B0) × (h+1)            from the middle on, backwards split off their W
    7  (W, B0) × (P/2−1−h)
    8  W × (h+1)                   the deferred W's, oldest first

Requires even P and even M ≥ 2P (DualPipe asserts num_ranks % 2 == 0 and num_chunks % 2 == 0,
num_chunks >= num_ranks * 2). Bubble (P/2−1)(F&B+B−2W) with B the input gradient (the README
writes (P/2−1)(F&B+B−3W) with B the full backward); P+1 activations on every device.
"""
from __future__ import annotations

from collections import defaultdict

from opplan.actions import Block, ComputeTask, Entry, Pass
from opplan.baselines.base import Baseline, Published, WeightQueue
from opplan.layout import MIRRORED


def eight_phases(num_ranks: int, rank: int, num_chunks: int, near_stage: int,
                 far_stage: int) -> list[ComputeTask | Block]:
    """The per-rank action list of DualPipe's ``step`` (and PyTorch's ScheduleDualPipeV).

    ``num_ranks``/``rank``/``num_chunks`` are in the generator's own terms: for DualPipe the half
    pipeline (P/2, h, M/2), for DualPipeV the devices (P, r, M). ``near_stage`` is phase 0.
    """
    stage = (near_stage, far_stage)
    next_f: dict[int, int] = defaultdict(int)
    next_b: dict[int, int] = defaultdict(int)
    weights = WeightQueue()
    ops: list[ComputeTask | Block] = []

    def forward(phase: int) -> ComputeTask:
        s = stage[phase]
        next_f[s] += 1
        return ComputeTask(s, Pass.FORWARD, next_f[s] - 1)

    def backward(phase: int, zero_bubble: bool = False) -> ComputeTask:
        """Full backward, or the input gradient alone with its W queued (zero bubble)."""
        s = stage[phase]
        next_b[s] += 1
        if zero_bubble:
            weights.push(s, next_b[s] - 1)
            return ComputeTask(s, Pass.INPUT_GRAD, next_b[s] - 1)
        return ComputeTask(s, Pass.FULL_BACKWARD, next_b[s] - 1)

    def weight() -> None:
        w = weights.pop()
        if w is not None:
            ops.append(w)

    def overlapped(f_phase: int, b_phase: int) -> Block:
        return Block((forward(f_phase), backward(b_phase)))

    # Phase 1: nF0, forwards on the near chunk
    ops += [forward(0) for _ in range(2 * (num_ranks - rank - 1))]
    # Phase 2: nF0F1, paired forwards
    for _ in range(rank + 1):
        ops += [forward(0), forward(1)]
    # Phase 3: nB1W1F1, zero bubble on the far chunk
    for _ in range(num_ranks - rank - 1):
        ops.append(backward(1, zero_bubble=True))
        weight()
        ops.append(forward(1))
    # Phase 4: main step, nF0B1F1B0 as overlapped pairs
    for i in range(num_chunks - 2 * num_ranks + rank + 1):
        if i == 0 and rank == num_ranks - 1:
            # the middle: not overlapped, which shortens the bubble
            ops += [forward(0), backward(1)]
        else:
            ops.append(overlapped(0, 1))
        ops.append(overlapped(1, 0))
    # Phase 5: nB1F1B0
    for _ in range(num_ranks - rank - 1):
        ops.append(backward(1))
        ops.append(overlapped(1, 0))
    # Phase 6: nB1B0, the second half uses zero bubble
    zero_bubble = False
    half = (rank + 1) // 2
    for i in range(rank + 1):
        if i == half and rank % 2 == 1:
            zero_bubble = True
        ops.append(backward(1, zero_bubble))
        if i == half and rank % 2 == 0:
            zero_bubble = True
        ops.append(backward(0, zero_bubble))
    # Phase 7: nWB0, zero bubble
    for _ in range(num_ranks - rank - 1):
        weight()
        ops.append(backward(0, zero_bubble=True))
    # Phase 8: nW, the deferred weight gradients
    for _ in range(rank + 1):
        weight()
    return ops


class DualPipe(Baseline):
    name = "dualpipe"
    title = "DualPipe"
    layout = MIRRORED
    published = Published("(P/2−1)(F&B+B−2W)", "P+1", "2×")
    min_microbatches_per_device = 2

    def rank_order(self, devices: int, microbatches: int, rank: int) -> list[Entry]:
        forward_stage, reverse_stage = rank, 2 * devices - 1 - rank
        near, far = (forward_stage, reverse_stage) if rank < devices // 2 else (reverse_stage, forward_stage)
        return eight_phases(devices // 2, min(rank, devices - 1 - rank), microbatches // 2, near, far)
