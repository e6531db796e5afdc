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

from opplan.actions import Entry
from opplan.baselines.base import Baseline, Published
from opplan.baselines.dualpipe import eight_phases
from opplan.layout import V_SHAPE


class DualPipeV(Baseline):
    name = "dualpipev"
    title = "DualPipeV"
    layout = V_SHAPE
    published = Published("(P−1)(F&B+B−2W)/2 (DualPipe on 2P half-size ranks)",
                          "P+½ (2P+1 half-stage chunks)", "1× (2 half-stage chunks)")
    min_microbatches_per_device = 2          # as many micro-batches as stages

    def rank_order(self, devices: int, microbatches: int, rank: int) -> list[Entry]:
        return eight_phases(devices, rank, microbatches, rank, 2 * devices - 1 - rank)
