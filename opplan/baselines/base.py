"""What every baseline schedule shares: problem builders, shape checks, order assembly.

A baseline is a generator of per-device action lists for P devices and M micro-batches, plus
the stage layout it needs (placement kind, stages per device). Units, so that every baseline on
the same ``(P, M, F, B, W)`` does the same work per device:

* F, B, W are what one device computes per micro-batch in a one-stage-per-device pipeline
  (a 1F1B stage). Schedules that cut the model finer split that work evenly: interleaved 1F1B
  with v chunks gives each chunk F/v, B/v, W/v; ZB-V and DualPipeV give each of their 2P chunks
  F/2, B/2, W/2. DualPipe keeps P full stages but holds every one twice (2x parameters) and sends
  half the micro-batches each way.
* ``fb`` is the time of one forward overlapped with one full backward of a full stage; it becomes
  the problem's overlap factor fb / (F+B+W), which is the same for chunks of any size.
* one activation unit = one micro-batch of one full stage (1 byte); a chunk of 1/c of a stage
  allocates 1/c unit. Peak activations come out in the units of the published formulas.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from opplan.actions import ComputeTask, Pass
from opplan.cluster import Cluster
from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.partition import partitioned_problem, placement_for, stages_for
from opplan.problem import Problem, uniform_problem
from opplan.schedule import Order, order_from_lists


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OpplanError(f"{what} must be a positive integer, got {value!r}")
    return value


class Baseline:
    """One schedule family. Subclasses set the class attributes and implement ``lists``."""

    name: str = ""
    title: str = ""
    placement: str = "contiguous"     # see opplan.partition.PLACEMENTS
    chunks: int = 1                    # problem stages per device
    # published figures, as text, for tables (DESIGN.md §1)
    bubble_formula: str = ""
    memory_formula: str = ""
    param_formula: str = "1×"

    # --- preconditions ---------------------------------------------------------------------
    def check(self, devices: int, microbatches: int) -> None:
        """Raise OpplanError when the schedule is not defined for P devices and M micro-batches."""
        _positive_int(devices, "number of devices (--stages)")
        _positive_int(microbatches, "--microbatches")

    # --- the generator -----------------------------------------------------------------------
    def lists(self, devices: int, microbatches: int) -> list[list[str]]:
        """Per-device entry lists in the compact notation (``2F0``, ``2B0``, ``2W0``, ``2BW0``,
        ``(0F7;7BW3)``), for the stage numbering of ``placement``."""
        raise NotImplementedError

    # --- problems ---------------------------------------------------------------------------
    @property
    def stage_fraction(self) -> float:
        """Share of a full (1F1B) stage one problem stage carries."""
        return 1.0 / self.chunks if self.placement in ("interleaved", "v") else 1.0

    def problem_microbatches(self, microbatches: int) -> int:
        """Micro-batch indices of the problem (DualPipe: per direction)."""
        return microbatches

    def microbatches_of(self, problem: Problem) -> int:
        """The schedule's M for a problem built by this baseline."""
        return problem.microbatches

    def uniform_problem(self, devices: int, microbatches: int, forward: float = 1.0, input_grad: float = 1.0,
                        weight_grad: float = 1.0, fb: float | None = None,
                        memory_units: Sequence[float] | float | None = None, param_units: float = 0.0) -> Problem:
        """The synthetic pipeline of the published formulas, laid out for this schedule."""
        self.check(devices, microbatches)
        n_stages = stages_for(self.placement, devices, self.chunks)
        k = self.stage_fraction
        problem = uniform_problem(n_stages, self.problem_microbatches(microbatches), forward * k, input_grad * k,
                                  weight_grad * k, placement=placement_for(self.placement, devices, self.chunks),
                                  devices=devices, memory_units=memory_units,
                                  fb_overlap=None if fb is None else fb * k, param_units=param_units * k)
        if k != 1.0:
            problem = replace(problem, stages=tuple(replace(s, activation_bytes=k) for s in problem.stages))
        if self.placement == "mirrored":  # two independent chains, one per direction
            problem = replace(problem, edges=tuple(e for e in problem.edges if e.src != devices - 1))
        return replace(problem, name=f"{self.name} uniform P={devices} M={microbatches}")

    def model_problem(self, model: ModelGraph, cluster: Cluster, microbatches: int,
                      overlap_factor: float = 1.0) -> Problem:
        """``model`` cut into balanced contiguous stages laid out on every device of ``cluster``."""
        self.check(cluster.size, microbatches)
        return partitioned_problem(model, cluster, self.placement, self.problem_microbatches(microbatches),
                                   self.chunks, overlap_factor)

    # --- orders -------------------------------------------------------------------------------
    def check_problem(self, problem: Problem) -> tuple[int, int]:
        """(P, M) of a problem laid out for this schedule, or a clear error if it is not."""
        devices = problem.num_devices
        want = placement_for(self.placement, devices, self.chunks)
        got = [s.device for s in problem.stages]
        if got != want:
            raise OpplanError(f"{self.name} needs {len(want)} stages placed {self.placement} on {devices} devices "
                              f"(devices {want}); the problem has {len(got)} stages on devices {got}")
        microbatches = self.microbatches_of(problem)
        self.check(devices, microbatches)
        return devices, microbatches

    def order(self, problem: Problem) -> Order:
        devices, microbatches = self.check_problem(problem)
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

