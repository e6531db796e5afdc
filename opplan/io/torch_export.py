"""A plan as the schedule CSV that PyTorch's pipeline runtime executes (``torch.distributed.pipelining``,
``_PipelineScheduleRuntime._load_csv`` in the "compute_only" format, as torchtitan's
``pipeline_parallel_schedule_csv`` option loads it).

The runtime holds each stage on exactly one rank, passes data only from stage i to stage i+1 and
inserts the sends and receives itself, so a plan exports when its devices are the ranks, its stages
form that one chain, and its compute order names whole stages. Everything else gets one line saying
why not, instead of a file the runtime would reject or run wrongly.
"""
from __future__ import annotations

import csv
import io

from opplan.errors import OpplanError
from opplan.io.pytorch_csv import action_to_torch
from opplan.layout import MIRRORED
from opplan.schedule import Plan
from opplan.validate import validate


class NotExportable(OpplanError):
    """The plan is fine, but PyTorch's runtime cannot run it as it stands."""


def export_blocker(plan: Plan) -> str | None:
    """Why PyTorch's runtime cannot run ``plan`` (one line), or None when it can."""
    problem = plan.problem
    n_stages, n_devices = problem.num_stages, problem.num_devices
    if problem.is_unit_level:
        return ("it is an operator-level plan (stages split into units on compute and communication streams); "
                "PyTorch's runtime schedules whole stages, so export the stage-level plan")
    edges = {(e.src, e.dst) for e in problem.edges}
    chain = {(s, s + 1) for s in range(n_stages - 1)}
    if MIRRORED.matches(problem) and n_devices > 1 and (n_devices - 1, n_devices) not in edges:
        return ("DualPipe's mirrored layout holds every model stage on two devices (one copy per direction); "
                "PyTorch's runtime holds each stage on exactly one rank")
    extra = sorted(edges - chain)
    if extra:
        src, dst = extra[0]
        return (f"stage {src} sends to stage {dst}: PyTorch's runtime passes data only from stage i to stage i+1 "
                "(no skip or branch between stages)")
    missing = sorted(chain - edges)
    if missing:
        src, dst = missing[0]
        return (f"stages {src} and {dst} are not connected: PyTorch's runtime runs the stages as one chain "
                f"0 -> 1 -> ... -> {n_stages - 1}")
    held = {s.device for s in problem.stages}
    idle = [problem.devices[d].name for d in range(n_devices) if d not in held]
    if idle:
        return f"device {idle[0]} holds no stage: every rank of PyTorch's runtime needs one"
    names = {d.name for d in problem.devices}
    strays = sorted(r for r in plan.order.sequences if r not in names and "->" not in r)
    if strays:
        return f"its order sequences resource {strays[0]!r}, which PyTorch's runtime does not have"
    return None


def torch_action_lists(plan: Plan) -> list[list[str]]:
    """Per rank (device index), the PyTorch actions it runs in order: ``2F0``, ``2I0``, ``2W0``,
    ``2B0`` (full backward) and ``(aF;bB)OVERLAP_F_B``.

    The plan is re-validated first: only a plan that passes the independent checker is exported.
    Links in the order are left out, as the runtime inserts its own sends and receives.
    """
    reason = export_blocker(plan)
    if reason is not None:
        raise NotExportable(f"cannot export to PyTorch's pipeline runtime: {reason}")
    violations = validate(plan)
    if violations:
        raise OpplanError(f"the plan breaks a rule, so it is not exported: {violations[0]}")
    return [[action_to_torch(entry) for entry in plan.order.sequences.get(device.name, ())]
            for device in plan.problem.devices]


def plan_to_torch_csv(plan: Plan) -> str:
    """The CSV text PyTorch's ``_PipelineScheduleRuntime._load_csv`` reads: one row per rank."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(torch_action_lists(plan))
    return out.getvalue()
