"""Small comparison charts: bubbles per device, the bubble/memory trade-off, solver progress."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from opplan.schedule import Plan
from opplan.viz.memory import schedule_color


def bubble_figure(plans: Sequence[Plan], names: Sequence[str] | None = None, time_label: str = "ms") -> go.Figure:
    """Idle time per device, one bar group per device and one colour per schedule."""
    plans = list(plans)
    names = list(names) if names is not None else [p.schedule_name for p in plans]
    fig = go.Figure()
    for k, (plan, name) in enumerate(zip(plans, names)):
        bubble = plan.metrics.bubble
        fig.add_trace(go.Bar(x=[f"device {d}" for d in range(len(bubble))], y=bubble, name=name,
                             marker_color=schedule_color(name, k),
                             hovertemplate=f"{name}<br>%{{x}}: idle %{{y:.4g}}<extra></extra>"))
    fig.update_layout(barmode="group", height=320, plot_bgcolor="white", margin=dict(l=60, r=10, t=40, b=40),
                      yaxis=dict(title=f"idle time per iteration ({time_label})", gridcolor="#F0F0F0"),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def pareto_figure(points: Sequence[Mapping[str, Any]], unit_label: str = "activation units") -> go.Figure:
    """Bubble ratio against peak memory per device: lower-left is better.

    ``points``: dicts with ``schedule``, ``peak`` (in the unit), ``bubble_ratio``, ``makespan`` and
    optionally ``cap``. A schedule with several points (a sweep) is drawn as a line.
    """
    fig = go.Figure()
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for p in points:
        by_name.setdefault(str(p["schedule"]), []).append(p)
    for k, (name, pts) in enumerate(by_name.items()):
        pts = sorted(pts, key=lambda p: (p["peak"], p["bubble_ratio"]))
        caps = [p.get("cap") for p in pts]
        fig.add_trace(go.Scatter(
            x=[p["peak"] for p in pts], y=[100 * p["bubble_ratio"] for p in pts],
            mode="lines+markers+text" if len(pts) == 1 else "lines+markers", name=name,
            text=[name] if len(pts) == 1 else None, textposition="top right",
            marker=dict(size=11 if len(pts) == 1 else 9, color=schedule_color(name, k),
                        symbol="star" if name == "opplan" else "circle"),
            line=dict(color=schedule_color(name, k), shape="hv" if len(pts) > 1 else "linear"),
            customdata=[[p["makespan"], "–" if c is None or not math.isfinite(c) else f"{c:.4g}"]
                        for p, c in zip(pts, caps)],
            hovertemplate=(f"<b>{name}</b><br>peak memory %{{x:.4g}} {unit_label}<br>bubble ratio %{{y:.1f}}%"
                           "<br>iteration %{customdata[0]:.4g}<br>cap %{customdata[1]}<extra></extra>"),
        ))
    fig.update_layout(height=420, plot_bgcolor="white", margin=dict(l=60, r=10, t=40, b=40),
                      xaxis=dict(title=f"peak memory per device ({unit_label})", gridcolor="#F0F0F0"),
                      yaxis=dict(title="bubble ratio (%)", gridcolor="#F0F0F0", rangemode="tozero"),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def progress_figure(history: Sequence[tuple[float, float, float]], time_unit: str = "",
                    now: float | None = None) -> go.Figure:
    """The solver's best plan (incumbent) and proven bound over wall-clock seconds: one marker per
    report (every improvement the planner reports), and, while it runs, the lines carried on to
    ``now`` so the chart keeps moving between improvements."""
    xs = [h[0] for h in history]
    inc = [h[1] if math.isfinite(h[1]) else None for h in history]
    bound = [h[2] if math.isfinite(h[2]) else None for h in history]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=inc, mode="lines+markers", name="best plan so far (all placements)",
                             line=dict(shape="hv", color="#4C78A8", width=2)))
    fig.add_trace(go.Scatter(x=xs, y=bound, mode="lines+markers", name="proven lower bound (placement being solved)",
                             line=dict(shape="hv", color="#E45756", width=2, dash="dash")))
    if now is not None and xs and now > xs[-1]:
        last_inc = next((v for v in reversed(inc) if v is not None), None)
        last_bound = next((v for v in reversed(bound) if v is not None), None)
        for value, color in ((last_inc, "#4C78A8"), (last_bound, "#E45756")):
            if value is not None:
                fig.add_trace(go.Scatter(x=[xs[-1], now], y=[value, value], mode="lines", showlegend=False,
                                         hoverinfo="skip", line=dict(color=color, width=1, dash="dot")))
    unit = f" ({time_unit})" if time_unit else ""
    fig.update_layout(height=300, plot_bgcolor="white", margin=dict(l=60, r=10, t=30, b=40),
                      xaxis=dict(title="planner wall-clock (s)", gridcolor="#F0F0F0", rangemode="tozero"),
                      yaxis=dict(title=f"objective{unit}", gridcolor="#F0F0F0"),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig
