"""DualPipeV (DeepSeek's DualPipe folded into a V; PyTorch's ScheduleDualPipeV): 2P chunks, device
r holds chunk r on the way down (phase 0) and chunk 2P−1−r on the way back (phase 1). All
micro-batches enter at device 0; the steady state overlaps the forward of one chunk with the full
backward of the other (F&B), hiding communication behind computation. Eight phases per device:

    1  F0 × 2(P−1−r)            warm-up on the down chunk
    2  (F0, F1) × (r+1)          paired forwards, reaching the up chunk
    3  (B1, W, F1) × (P−1−r)     zero bubble: input grad, the oldest deferred W, a forward
    4  (F0&B1, F1&B0) × (M−2P+r+1)   main step, overlapped pairs (device P−1 runs its very
                                 first pair unoverlapped: F0 then B1)
    5  (B1, F1&B0) × (P−1−r)
    6  (B1, B0) × (r+1)          from the middle on, backwards split off their W (zero bubble)
    7  (W, B0) × (P−1−r)
    8  W × (r+1)                 the deferred W's, oldest first

Requires M ≥ 2P (PyTorch: at least as many micro-batches as stages). It reproduces PyTorch's
reference CSV for 4 devices and 10 micro-batches action for action.
"""
from __future__ import annotations

from opplan.actions import Block, ComputeTask
from opplan.baselines.base import Baseline
from opplan.baselines.dualpipe import eight_phases
from opplan.errors import OpplanError
from opplan.layout import V_SHAPE


class DualPipeV(Baseline):
    name = "dualpipev"
    title = "DualPipeV"
    layout = V_SHAPE
    bubble_formula = "(P−1)(F&B+B−2W)/2 (DualPipe on 2P half-size ranks)"
    memory_formula = "P+½ (2P+1 half-stage chunks)"
    param_formula = "1× (2 half-stage chunks)"

    def check(self, devices: int, microbatches: int) -> None:
        super().check(devices, microbatches)
        if microbatches < 2 * devices:
            raise OpplanError(f"dualpipev needs at least as many micro-batches as stages: M >= 2P = {2 * devices}, "
                              f"got M={microbatches}", field="microbatches")

    def lists(self, devices: int, microbatches: int) -> list[list[str]]:
        self.check(devices, microbatches)
        return [[str(op) for op in self._rank(devices, microbatches, rank)] for rank in range(devices)]

    @staticmethod
    def _rank(devices: int, microbatches: int, rank: int) -> list[ComputeTask | Block]:
        return eight_phases(devices, rank, microbatches, rank, 2 * devices - 1 - rank)
