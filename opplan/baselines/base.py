"""What every baseline schedule shares: its layout, shape checks, order assembly.

A baseline is a generator of per-device action lists for P devices and M micro-batches, plus the
``Layout`` it runs on (``opplan.layout``: which stage sits on which device, how the model's work is
split into chunks, and for DualPipe the two directions). ``fb`` is the time of one forward
overlapped with one full backward of a full stage; it becomes the problem's overlap factor
fb / (F+B+W), the same for chunks of any size.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from opplan.actions import ComputeTask, Entry, Pass
from opplan.baselines.operator_level import unit_order
from opplan.cluster import Cluster
from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.layout import CONTIGUOUS, Layout
from opplan.problem import Problem
from opplan.schedule import Order, order_from_lists


def _positive_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OpplanError(f"{field} must be a positive integer, got {value!r}", field=field)
    return value


@dataclass(frozen=True)
class Published:
    """A schedule's published figures, as text for tables: bubble per device, peak activations
    per device (in micro-batches of one full stage), parameters held per device."""

    bubble: str
    memory: str
    params: str = "1×"


class Baseline:
    """One schedule family. Subclasses set the class attributes and implement ``rank_order``."""

    name: str = ""
    title: str = ""
    layout: Layout = CONTIGUOUS
    published: Published = Published("", "")
    min_microbatches_per_device: int = 1     # the pattern needs M >= this × P to fill the pipeline

    # --- preconditions ---------------------------------------------------------------------
    def check(self, devices: int, microbatches: int) -> None:
        """Raise OpplanError when the schedule is not defined for P devices and M micro-batches."""
        _positive_int(devices, "devices")
        _positive_int(microbatches, "microbatches")
        k = self.min_microbatches_per_device
        if microbatches < k * devices:
            raise OpplanError(f"{self.name} needs M >= {k}P = {k * devices} micro-batches to fill its pipeline, "
                              f"got M={microbatches}", field="microbatches")
        self.layout.check(devices, microbatches, who=self.name)

    # --- the generator -----------------------------------------------------------------------
    def rank_order(self, devices: int, microbatches: int, rank: int) -> list[Entry]:
        """What device ``rank`` runs, in order (stage numbering of ``layout``), as records."""
        raise NotImplementedError

    def lists(self, devices: int, microbatches: int) -> list[list[str]]:
        """Per-device entry lists in the compact notation (``2F0``, ``2B0``, ``2W0``, ``2BW0``,
        ``(0F7;7BW3)``): the wire format of orders and of PyTorch's schedule CSV."""
        self.check(devices, microbatches)
        return [[str(entry) for entry in self.rank_order(devices, microbatches, rank)] for rank in range(devices)]

    # --- problems ---------------------------------------------------------------------------
    def uniform_problem(self, devices: int, microbatches: int, forward: float = 1.0, input_grad: float = 1.0,
                        weight_grad: float = 1.0, fb: float | None = None,
                        memory_units: Sequence[float] | float | None = None, param_units: float = 0.0) -> Problem:
        """The synthetic pipeline of the published formulas, laid out for this schedule."""
        self.check(devices, microbatches)
        problem = self.layout.uniform_problem(devices, microbatches, forward, input_grad, weight_grad, fb,
                                              memory_units, param_units)
        return replace(problem, name=f"{self.name} uniform P={devices} M={microbatches}")

    def model_problem(self, model: ModelGraph, cluster: Cluster, microbatches: int,
                      overlap_factor: float = 1.0) -> Problem:
        """``model`` cut into balanced contiguous stages laid out on every device of ``cluster``."""
        self.check(cluster.size, microbatches)
        return self.layout.model_problem(model, cluster, microbatches, overlap_factor)

    # --- orders -------------------------------------------------------------------------------
    def check_problem(self, problem: Problem) -> tuple[int, int]:
        """(P, M) of a problem laid out for this schedule, or a clear error if it is not."""
        devices = problem.num_devices
        if not self.layout.matches(problem):
            want = self.layout.placement(devices)
            raise OpplanError(f"{self.name} needs {len(want)} stages in a {self.layout.name} layout on {devices} "
                              f"devices (devices {want}); the problem has {problem.num_stages} stages on devices "
                              f"{[s.device for s in problem.stages]}")
        microbatches = self.layout.schedule_microbatches(problem)
        self.check(devices, microbatches)
        return devices, microbatches

    def order(self, problem: Problem) -> Order:
        devices, microbatches = self.check_problem(problem)
        if problem.is_unit_level:   # the same program, each stage's pass run as its chain of units
            return unit_order(problem, [self.rank_order(devices, microbatches, r) for r in range(devices)])
        return order_from_lists(problem, self.lists(devices, microbatches), backward="split")

    def __repr__(self) -> str:
        return f"<baseline {self.name}>"


class WeightQueue:
    """Deferred weight-gradient passes, run oldest first (DualPipe's WeightGradStore)."""

    def __init__(self) -> None:
        self._items: list[ComputeTask] = []

    def push(self, stage: int, mb: int) -> None:
        self._items.append(ComputeTask(stage, Pass.WEIGHT_GRAD, mb))

    def pop(self) -> ComputeTask | None:
        return self._items.pop(0) if self._items else None

    def __len__(self) -> int:
        return len(self._items)

