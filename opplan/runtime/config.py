"""What a run is asked to do and what it reports: plain records, no torch, so the CLI and tests can
build and print them without the optional dependency."""
from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any

from opplan.errors import OpplanError
from opplan.problem import Problem

GRAD_TOLERANCE = 1e-6     # max |gradient − reference| a run may show and still count as equal


def torch_available() -> bool:
    """True when the optional ``torch`` extra is installed (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


@dataclass(frozen=True)
class RunConfig:
    """How to run a plan: ranks, the synthetic model's size, and how many iterations to time.

    The model is a chain of ``Linear(hidden, hidden) + ReLU`` layers; stage ``s`` gets
    ``max(1, round(layers_per_unit × forward time of s))`` of them, so stage costs follow the plan's.
    """

    ranks: int | None = None         # None: the plan's number of devices
    hidden: int = 64
    rows: int = 8                    # rows of one micro-batch
    layers_per_unit: float = 2.0      # 2: a V or 2-chunk interleaved stage (half a device share) gets one layer
    calibration_iterations: int = 2
    iterations: int = 3
    seed: int = 0
    dtype: str = "float64"           # float64: gradients match the reference to ~1e-15, not ~1e-6
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        for name in ("hidden", "rows", "iterations", "calibration_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OpplanError(f"{name} must be a positive integer, got {value!r}", field=name)
        if self.ranks is not None and (isinstance(self.ranks, bool) or not isinstance(self.ranks, int)
                                       or self.ranks < 1):
            raise OpplanError(f"ranks must be a positive integer, got {self.ranks!r}", field="ranks")
        if not (isinstance(self.layers_per_unit, (int, float)) and 0 < self.layers_per_unit < 1e4):
            raise OpplanError(f"layers_per_unit must be a positive number, got {self.layers_per_unit!r}",
                              field="layers_per_unit")
        if self.dtype not in ("float32", "float64"):
            raise OpplanError(f"dtype must be float32 or float64, got {self.dtype!r}", field="dtype")
        if not self.timeout_s > 0:
            raise OpplanError(f"timeout_s must be positive, got {self.timeout_s!r}", field="timeout_s")


def layers_per_stage(problem: Problem, layers_per_unit: float) -> list[int]:
    """Linear layers of every stage of the synthetic model, proportional to the stage's forward
    time (at least one each), so that stage costs follow the plan's."""
    return [max(1, round(layers_per_unit * stage.forward)) for stage in problem.stages]


@dataclass
class RunResult:
    """What a run measured, beside what the simulator predicted from the calibrated task times."""

    schedule: str
    ranks: int
    stages: int
    microbatches: int
    layers: list[int]                      # Linear layers of every stage
    max_grad_diff: float                   # max |grad − single-process reference grad| over every parameter
    loss_diff: float                       # |mean micro-batch loss − reference loss|
    predicted_ms: float                    # simulator, on the calibrated F/I/W/B times and link latency
    measured_ms: float                     # median of the timed iterations
    iterations_ms: list[float]
    calibration_ms: dict[str, float]       # mean time of each calibrated action kind, e.g. "2F": 1.3
    link_ms: float                         # one send of a micro-batch's activation between two ranks
    action_overhead_ms: float              # runtime time per action: mean gap before one that waits for nothing
    spans: list[list[Any]] = field(default_factory=list)   # [task, rank, start_ms, end_ms] of the median iteration

    @property
    def error(self) -> float:
        """(predicted − measured) / measured."""
        return (self.predicted_ms - self.measured_ms) / self.measured_ms if self.measured_ms > 0 else float("nan")

    @property
    def gradients_match(self) -> bool:
        return self.max_grad_diff <= GRAD_TOLERANCE

    def text(self) -> str:
        """What the CLI prints: the checks first, then predicted beside measured."""
        verdict = "equal" if self.gradients_match else f"DIFFER (tolerance {GRAD_TOLERANCE:g})"
        return "\n".join([
            f"{self.schedule} on {self.ranks} ranks (PyTorch pipeline runtime, gloo, CPU): {self.stages} stages, "
            f"{self.microbatches} micro-batches, Linear layers per stage {' '.join(map(str, self.layers))}",
            f"  gradients   {verdict} to the single-process reference (max |diff| {self.max_grad_diff:.3g})",
            f"  predicted   {self.predicted_ms:.3f} ms  (simulator, on calibrated task times, link {self.link_ms:.3f} ms, "
            f"{self.action_overhead_ms:.3f} ms per action)",
            f"  measured    {self.measured_ms:.3f} ms  (median of {len(self.iterations_ms)} iterations; "
            f"error {self.error:+.1%})",
        ])

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("spans")
        data["prediction_error"] = self.error
        return data
