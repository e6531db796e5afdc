"""The dashboard's exports of one plan to other tools: PyTorch's schedule CSV and a Chrome trace.
Pure functions; the buttons live in ``components``. A plan PyTorch's runtime cannot hold has no
CSV, only the one-line reason, which the page shows on a disabled button."""
from __future__ import annotations

from opplan.io.chrome_trace import plan_trace, trace_json
from opplan.io.torch_export import export_blocker, plan_to_torch_csv
from opplan.schedule import Plan


def torch_csv_reason(plan: Plan) -> str | None:
    """Why the plan has no PyTorch CSV, or None when it has one."""
    return export_blocker(plan)


def torch_csv(plan: Plan) -> str:
    """The CSV ``torch.distributed.pipelining``'s ``_load_csv`` reads (one row per rank)."""
    return plan_to_torch_csv(plan)


def chrome_trace(plan: Plan) -> str:
    """The planned schedule for chrome://tracing or Perfetto: one process per device."""
    return trace_json(plan_trace(plan))
