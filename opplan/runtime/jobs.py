"""What the caller hands the rank processes: plain picklable records, free of torch, so that the
caller can build them without importing it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanJob:
    """One plan to run: its CSV, stage→rank map and the model's layers per stage."""

    csv_path: str
    placement: tuple[int, ...]
    layers: tuple[int, ...]
    microbatches: int
    plan_json: str                    # the plan itself, for rank 0's prediction


@dataclass(frozen=True)
class RankJob:
    """Everything a rank needs, picklable: the plans to run one after another in the same
    processes (so torch is imported once), and the model's shape and the iteration counts."""

    plans: tuple[PlanJob, ...]
    result_dir: str
    port: int
    world: int
    hidden: int
    rows: int
    seed: int
    dtype: str
    calibration_iterations: int
    iterations: int
    timeout_s: float
