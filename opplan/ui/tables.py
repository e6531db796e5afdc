"""Tables and exports: the metrics table every comparison shows, the accelerator presets, which
expert schedule fits the cap, and the files the export buttons hand out (CSV, plan JSON, figures)."""
from __future__ import annotations

import io
import json
import math
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from opplan.cluster import ACCELERATORS
from opplan.schedule import Plan
from opplan.ui.config import peak_of
from opplan.ui.display import schedule_title, units_for
from opplan.ui.plans import baseline_names, baseline_plan


def metrics_table(plans: dict[str, Plan], config: dict[str, Any], titled: bool = False) -> pd.DataFrame:
    """One row per schedule: the numbers every comparison reports, in the scenario's units.
    ``titled``: schedules by their display titles instead of their names."""
    units = units_for(config)
    scale = units.scale
    rows = []
    for name, plan in plans.items():
        m = plan.metrics
        caps = [c for c in m.memory_cap_bytes if c is not None and math.isfinite(c)]
        rows.append({
            "schedule": schedule_title(name) if titled else name,
            f"iteration{units.time_suffix}": m.makespan,
            "bubble ratio (%)": 100 * m.bubble_ratio,
            f"total idle{units.time_suffix}": sum(m.bubble),
            f"max idle per device{units.time_suffix}": max(m.bubble),
            f"peak memory ({units.mem_label})": scale.to_display(peak_of(plan, config)),
            f"cap ({units.mem_label})": scale.to_display(min(caps)) if caps else None,
            "lower bound": m.lower_bound,
            "valid": plan.valid,
        })
    return pd.DataFrame(rows)


def home_table(plans: dict[str, Plan], config: dict[str, Any]) -> Styler:
    """Home's comparison table: by schedule title, no lower bound, numbers to 4 digits (large ones grouped)."""
    table = metrics_table(plans, config, titled=True).set_index("schedule").drop(columns=["lower bound"])
    return table.style.format(_number, subset=[c for c in table.columns if c != "valid"])


def _number(x: Any) -> str:
    """A table number to 4 digits (large ones grouped); a missing one (no cap) as a dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"


def fit_table(config: dict[str, Any]) -> Styler:
    """Per expert schedule: its peak memory on this scenario, whether it fits the cap, and why not."""
    scale = units_for(config).scale
    unit = scale.label
    rows = []
    for name in baseline_names():
        plan, reason = baseline_plan(config, name)
        row: dict[str, Any] = {"schedule": schedule_title(name), f"peak memory ({unit})": None, "fits the cap": None,
                               "note": reason}
        if plan is not None:
            note = "" if plan.valid else "over the cap" if plan.over_cap else str(plan.violations[0])
            row.update({f"peak memory ({unit})": scale.to_display(peak_of(plan, config)),
                        "fits the cap": plan.valid, "note": note})
        rows.append(row)
    return pd.DataFrame(rows).set_index("schedule").style.format(
        {f"peak memory ({unit})": "{:.4g}", "fits the cap": lambda ok: "" if ok is None else "yes" if ok else "no"},
        na_rep="–")


def accelerator_table() -> pd.DataFrame:
    """The accelerator presets: peak throughput, memory, link bandwidth and where the numbers come from."""
    return pd.DataFrame([{"preset": a.name, "peak TFLOP/s (dense BF16)": a.peak_tflops,
                          "memory (GB)": a.memory_bytes / 1e9, "link (GB/s)": a.link_gbytes_per_s, "source": a.source}
                         for a in ACCELERATORS.values()]).set_index("preset")


def metrics_csv(plans: dict[str, Plan], config: dict[str, Any]) -> str:
    """Per schedule and device: bubble, busy time, peak memory — the raw numbers, for spreadsheets.
    Memory columns say their unit: ``*_bytes`` for a model in GB on screen, ``*_units`` (activation
    units) where the screen shows units (the uniform pipeline, a model in abstract units); a device
    without a cap has an empty cap cell."""
    scale = units_for(config).scale
    suffix, unit = ("units", scale.to_display) if scale.in_units else ("bytes", float)
    rows = []
    for name, plan in plans.items():
        m = plan.metrics
        for d, dev in enumerate(plan.problem.devices):
            cap = m.memory_cap_bytes[d]
            rows.append({"schedule": name, "device": dev.name, "makespan": m.makespan,
                         "bubble_ratio": m.bubble_ratio, "busy": m.busy[d], "bubble": m.bubble[d],
                         f"peak_activation_{suffix}": unit(m.peak_activation_bytes[d]),
                         f"param_{suffix}": unit(m.param_bytes[d]), f"peak_memory_{suffix}": unit(m.peak_memory_bytes[d]),
                         f"memory_cap_{suffix}": unit(cap) if cap is not None and math.isfinite(cap) else None,
                         "valid": plan.valid})
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False)
    return buffer.getvalue()


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=1)


def figure_png(fig: Any, width: int = 1400) -> bytes:
    """A static PNG through kaleido (which drives the system Chromium)."""
    return fig.to_image(format="png", width=width, height=int(fig.layout.height or 600), scale=1)


def figure_html(fig: Any) -> str:
    """A self-contained page: plotly.js is embedded (about 4.6 MB), so the file opens offline."""
    return fig.to_html(include_plotlyjs=True, full_html=True)
