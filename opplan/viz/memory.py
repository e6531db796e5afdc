"""Memory over time per device: parameters plus live activations, with the device's cap drawn.

Schedules are overlaid per device so a reader sees which one presses against the cap and when.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from opplan.metrics import memory_timeline
from opplan.schedule import Plan

SCHEDULE_COLORS = ["#4C78A8", "#F58518", "#54A24B", "#B279A2", "#72B7B2", "#FF9DA6", "#9D755D", "#BAB0AC",
                   "#EECA3B"]
# fixed per schedule, so a schedule has the same colour on every chart; opplan is the one in red
NAMED_COLORS = {"opplan": "#E45756", "1f1b": "#4C78A8", "dualpipe": "#F58518", "zb-h1": "#54A24B",
                "zb-h2": "#B279A2", "zb-v": "#72B7B2", "gpipe": "#9D755D", "interleaved-1f1b": "#EECA3B",
                "interleaved 1f1b": "#EECA3B", "dualpipev": "#FF9DA6"}


def schedule_color(name: str, index: int = 0) -> str:
    """The schedule's own colour (by name or title), else one from the palette by position."""
    return NAMED_COLORS.get(str(name).strip().lower(), SCHEDULE_COLORS[index % len(SCHEDULE_COLORS)])


def memory_figure(plans: Sequence[Plan], names: Sequence[str] | None = None, unit_bytes: float = 1.0,
                  unit_label: str = "activation units", time_label: str = "time (ms)", columns: int = 4) -> go.Figure:
    """A small chart per device; one step line per plan; the cap as a dashed red line.

    Memory is ``unit_bytes``-scaled (1 for activation units, 1e9 for GB).
    """
    plans = list(plans)
    names = list(names) if names is not None else [p.schedule_name for p in plans]
    n_dev = max((p.problem.num_devices for p in plans), default=0)
    if n_dev == 0:
        return go.Figure(layout=dict(title="no plan to draw", height=200))
    cols = min(columns, n_dev)
    rows = math.ceil(n_dev / cols)
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes="all", shared_yaxes="all",
                        subplot_titles=[f"device {d}" for d in range(n_dev)],
                        horizontal_spacing=0.04, vertical_spacing=0.12 if rows > 1 else 0.1)
    cap_shown = False
    y_top = 0.0
    for k, (plan, name) in enumerate(zip(plans, names)):
        timelines = memory_timeline(plan.problem, plan.tasks)
        for d, points in enumerate(timelines):
            params = plan.problem.param_bytes(d)
            xs = [t for t, _ in points] + [plan.makespan]
            ys = [(params + v) / unit_bytes for _, v in points]
            ys.append(ys[-1])
            y_top = max(y_top, max(ys))
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines", line=dict(shape="hv", color=schedule_color(name, k), width=2),
                name=name, legendgroup=name, showlegend=d == 0,
                hovertemplate=f"{name}<br>device {d}<br>t = %{{x:.4g}}<br>memory %{{y:.4g}} {unit_label}<extra></extra>",
            ), row=d // cols + 1, col=d % cols + 1)
    for d in range(n_dev):
        caps = {p.problem.devices[d].memory_bytes for p in plans if d < p.problem.num_devices}
        caps = {c for c in caps if math.isfinite(c)}
        for cap in sorted(caps):
            y = cap / unit_bytes
            y_top = max(y_top, y)
            fig.add_trace(go.Scatter(
                x=[0, max(p.makespan for p in plans)], y=[y, y], mode="lines",
                line=dict(color="#C00000", dash="dash", width=1.5), name="memory cap", legendgroup="cap",
                showlegend=not cap_shown, hovertemplate=f"cap {y:.4g} {unit_label}<extra></extra>",
            ), row=d // cols + 1, col=d % cols + 1)
            cap_shown = True
    fig.update_yaxes(range=[0, y_top * 1.1 if y_top > 0 else 1], gridcolor="#F0F0F0", zeroline=False)
    for c in range(1, cols + 1):
        fig.update_xaxes(title_text=time_label, row=rows, col=c, title_font=dict(size=11))
    for r in range(1, rows + 1):
        fig.update_yaxes(title_text=unit_label, row=r, col=1, title_font=dict(size=11))
    fig.update_xaxes(gridcolor="#F0F0F0", zeroline=False)
    fig.update_layout(height=230 * rows + 130, plot_bgcolor="white", margin=dict(l=60, r=10, t=80, b=40),
                      legend=dict(orientation="h", yanchor="top", y=1.0, yref="container", x=0, xanchor="left"))
    for ann in fig.layout.annotations:
        ann.update(font=dict(size=12))
    return fig
