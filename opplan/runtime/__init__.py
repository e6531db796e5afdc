"""Runs a plan on PyTorch's pipeline runtime (``torch.distributed.pipelining``) across CPU ranks.

Optional: needs the ``torch`` extra (``pip install 'opplan[torch]'``). Nothing here is imported by
the planner; ``torch`` itself is imported only inside the functions that need it, so importing
this package, and asking whether a run is possible, works without it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from opplan.runtime.config import RunConfig, RunResult, torch_available

if TYPE_CHECKING:
    from opplan.schedule import Plan

__all__ = ["RunConfig", "RunResult", "run_plan", "run_plans", "torch_available"]


def run_plan(plan: Plan, config: RunConfig | None = None) -> RunResult:
    """Export ``plan``, run it on ``config.ranks`` processes, check gradients, time it."""
    from opplan.runtime.launch import run_plan as _run

    return _run(plan, config or RunConfig())


def run_plans(plans: Sequence[Plan], config: RunConfig | None = None) -> list[RunResult]:
    """Several plans on the same devices, run one after another in the same rank processes."""
    from opplan.runtime.launch import run_plans as _run

    return _run(plans, config or RunConfig())
