"""Small hand-built problems that several test modules use."""
from __future__ import annotations

from opplan.problem import COMM_STREAM, DeviceSpec, Problem, Stage, StageEdge


def unit_chain(devices: int, microbatches: int, cap: float = float("inf")) -> Problem:
    """Each device one schedule stage: a compute unit, then an all-to-all unit on its communication stream."""
    stages = []
    for d in range(devices):
        stages.append(Stage(f"st{2 * d}", d, 1.0, 1.0, 1.0, 1.0, layout_stage=d))
        stages.append(Stage(f"st{2 * d + 1}", d, 1.0, 1.0, 0.0, 0.0, stream=COMM_STREAM, layout_stage=d))
    edges = tuple(StageEdge(i, i + 1) for i in range(2 * devices - 1))
    return Problem(tuple(stages), edges, tuple(DeviceSpec(f"dev{d}", cap) for d in range(devices)), microbatches,
                   1.0, 1.0)
