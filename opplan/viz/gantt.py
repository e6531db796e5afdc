"""Gantt charts of plans: one row per device (and per busy link), bars coloured by pass.

A device with a communication stream (all-to-all) gets a second row directly under its own,
``dev0 · comm``, so the overlap of one micro-batch's all-to-all with another's compute shows.

Bars are ``go.Bar(orientation="h", base=start, x=duration)`` on a numeric axis (``px.timeline``
would read numbers as dates). Several plans share one time axis so their lengths compare at a
glance; idle stretches are drawn as pale bars so the bubbles are visible, not just implied.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from opplan.actions import ComputeTask, Pass, parse_task
from opplan.errors import OpplanError
from opplan.problem import comm_resource
from opplan.schedule import Plan, TimedTask

# Colour-blind-safe (Tableau 10 subset); order is the legend order.
PASS_COLORS: dict[str, str] = {
    "F": "#4C78A8",
    "B": "#F58518",
    "W": "#54A24B",
    "B+W": "#B279A2",
    "F&B": "#72B7B2",
    "comm": "#8C8C8C",
    "a2a": "#E45756",
    "idle": "#E6E6E6",
}
PASS_LABELS: dict[str, str] = {
    "F": "F forward",
    "B": "B input grad",
    "W": "W weight grad",
    "B+W": "B+W full backward",
    "F&B": "F&B overlapped",
    "comm": "communication",
    "a2a": "all-to-all (comm stream)",
    "idle": "idle (bubble)",
}
ROW_PX = 26          # height of one resource row
PANEL_EXTRA_PX = 70  # title and gap per schedule panel


@dataclass(frozen=True)
class _Bar:
    row: str
    start: float
    end: float
    category: str
    label: str     # short text inside the bar (micro-batch)
    what: str      # hover: tasks and stages/operators
    mb: str        # hover: micro-batch(es)


def _pretty_resource(resource: str) -> str:
    return resource.replace("->", "→")


def _comm_rows(plan: Plan) -> dict[str, str]:
    """Each device's comm-stream resource -> its row label, drawn under the device's row."""
    return {comm_resource(d.name): f"{_pretty_resource(d.name)} · comm" for d in plan.problem.devices}


def _task_parts(plan: Plan, task: str) -> tuple[str, str, str]:
    """(pass, micro-batch, description naming the stage and its operators)."""
    try:
        parsed = parse_task(task)
    except OpplanError:   # not in the notation (a hand-edited plan file): draw it plainly
        return "?", "", task
    if isinstance(parsed, ComputeTask):
        stage = plan.problem.stages[parsed.stage]
        ops = ", ".join(stage.operators[:4]) + (f", … (+{len(stage.operators) - 4})" if len(stage.operators) > 4 else "")
        desc = f"{task}: stage {stage.name}" + (f" [{ops}]" if ops and ops != stage.name else "")
        return parsed.pass_.value, str(parsed.microbatch), desc
    src, dst = plan.problem.stages[parsed.src].name, plan.problem.stages[parsed.dst].name
    kind = "activation" if parsed.pass_ is Pass.FORWARD else "gradient"
    return "T", str(parsed.microbatch), f"{task}: {kind} {src} → {dst}"


def _category(passes: Sequence[str]) -> str:
    kinds = set(passes)
    if kinds == {"T"}:
        return "comm"
    if "F" in kinds and kinds & {"B", "W", "BW"}:
        return "F&B"
    if kinds == {"BW"} or kinds == {"B", "W"}:
        return "B+W"
    if len(kinds) == 1:
        return next(iter(kinds))
    return "F&B"


def plan_bars(plan: Plan) -> list[_Bar]:
    """One bar per task, or per block for tasks that ran together (a group)."""
    groups: dict[int, list[TimedTask]] = {}
    singles: list[list[TimedTask]] = []
    for t in plan.tasks:
        if t.group >= 0:
            groups.setdefault(t.group, []).append(t)
        else:
            singles.append([t])
    bars = []
    comm_rows = _comm_rows(plan)
    for members in singles + list(groups.values()):
        parts = [_task_parts(plan, t.task) for t in members]
        passes = [p for p, _, _ in parts]
        comm_row = comm_rows.get(members[0].resource)
        cat = "a2a" if comm_row is not None else _category(passes)
        mbs = [mb for _, mb, _ in parts]
        if cat == "F&B":
            label = "/".join(dict.fromkeys(mbs))
        else:
            label = mbs[0]
        bars.append(_Bar(comm_row or _pretty_resource(members[0].resource), members[0].start, members[0].end, cat, label,
                         "<br>".join(d for _, _, d in parts), ", ".join(dict.fromkeys(mbs))))
    return bars


def _rows(plan: Plan, bars: Sequence[_Bar]) -> list[str]:
    used = {b.row for b in bars}
    comm_rows = _comm_rows(plan)
    devices = []
    for d in plan.problem.devices:
        devices.append(_pretty_resource(d.name))
        if comm_rows[comm_resource(d.name)] in used:
            devices.append(comm_rows[comm_resource(d.name)])
    links = sorted(used - set(devices))
    return devices + links


def _idle_bars(plan: Plan, bars: Sequence[_Bar], makespan: float) -> list[_Bar]:
    """The gaps on each device between time 0 and the plan's makespan."""
    out = []
    by_row: dict[str, list[tuple[float, float]]] = {}
    for b in bars:
        by_row.setdefault(b.row, []).append((b.start, b.end))
    tol = 1e-9 * max(1.0, makespan)
    for d in plan.problem.devices:
        row = _pretty_resource(d.name)
        t = 0.0
        for s, e in sorted(by_row.get(row, [])) + [(makespan, makespan)]:
            if s > t + tol:
                out.append(_Bar(row, t, s, "idle", "", "idle", "–"))
            t = max(t, e)
    return out


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def gantt_figure(plans: Sequence[Plan], titles: Sequence[str] | None = None, time_label: str = "time (ms)",
                 show_idle: bool = True, bar_text: bool = True, show_links: bool = True) -> go.Figure:
    """One panel per plan, stacked on a shared time axis, rows = devices then links.

    ``show_links=False`` keeps the device rows only: a compact chart for a projector, since a
    model on P devices has up to 2(P-1) link rows.

    ``titles`` default to each plan's schedule name with its makespan and bubble ratio.
    """
    plans = list(plans)
    if not plans:
        fig = go.Figure()
        fig.update_layout(title="no plan to draw", height=200)
        return fig
    all_bars = [plan_bars(p) for p in plans]
    if not show_links:
        all_bars = [[b for b in bars if b.category != "comm"] for bars in all_bars]
    rows = [_rows(p, b) for p, b in zip(plans, all_bars)]
    if titles is None:
        titles = [_default_title(p) for p in plans]
    heights = [max(len(r), 1) for r in rows]
    fig = make_subplots(rows=len(plans), cols=1, shared_xaxes=True, subplot_titles=list(titles),
                        row_heights=heights, vertical_spacing=min(0.12, 0.35 / len(plans)) if len(plans) > 1 else 0.05)
    x_max = max(p.makespan for p in plans)
    present = {b.category for bars in all_bars for b in bars} | ({"idle"} if show_idle else set())
    for cat in PASS_COLORS:  # legend entries first, in a fixed order, whatever panel uses them first
        if cat in present:
            fig.add_trace(go.Bar(orientation="h", x=[None], y=[rows[0][0]], name=PASS_LABELS[cat], legendgroup=cat,
                                 marker=dict(color=PASS_COLORS[cat]), hoverinfo="skip"), row=1, col=1)
    for i, (plan, bars, row_names) in enumerate(zip(plans, all_bars, rows), start=1):
        shown = list(bars) + (_idle_bars(plan, bars, plan.makespan) if show_idle else [])
        for cat in PASS_COLORS:
            sel = [b for b in shown if b.category == cat]
            if not sel:
                continue
            fig.add_trace(go.Bar(
                orientation="h", base=[b.start for b in sel], x=[b.end - b.start for b in sel],
                y=[b.row for b in sel], name=PASS_LABELS[cat], legendgroup=cat, showlegend=False,
                # transfers are often far shorter than a pixel: an outline in their own colour keeps them visible
                marker=dict(color=PASS_COLORS[cat], line=dict(color=PASS_COLORS[cat] if cat == "comm" else "white",
                                                              width=1.5 if cat == "comm" else 0.5 if cat != "idle" else 0)),
                text=[b.label for b in sel] if bar_text and cat != "idle" else None,
                textposition="inside", insidetextanchor="middle", textfont=dict(color="white", size=10),
                customdata=[[b.what, b.mb, _fmt(b.start), _fmt(b.end), _fmt(b.end - b.start)] for b in sel],
                hovertemplate=("<b>%{customdata[0]}</b><br>micro-batch %{customdata[1]}<br>"
                               "start %{customdata[2]} · end %{customdata[3]} · takes %{customdata[4]}"
                               f"<extra>{PASS_LABELS[cat]}</extra>"),
            ), row=i, col=1)
        fig.update_yaxes(type="category", categoryorder="array", categoryarray=row_names, autorange="reversed",
                         range=[len(row_names) - 0.5, -0.5], row=i, col=1, tickfont=dict(size=11),
                         automargin=True)
        fig.add_vline(x=plan.makespan, line=dict(color="#333", width=1, dash="dot"), row=i, col=1)
    fig.update_xaxes(range=[0, x_max * 1.01], showgrid=True, gridcolor="#F0F0F0", zeroline=False)
    fig.update_xaxes(title_text=time_label, row=len(plans), col=1)
    fig.update_layout(
        barmode="overlay", bargap=0.15, height=sum(ROW_PX * h + PANEL_EXTRA_PX for h in heights) + 90,
        margin=dict(l=70, r=10, t=70, b=50), plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="top", y=1.0, xanchor="left", x=0, yref="container",
                    traceorder="normal"),
        uniformtext=dict(minsize=8, mode="hide"), hoverlabel=dict(align="left"),
    )
    for ann in fig.layout.annotations:  # subplot titles: left-aligned, readable
        ann.update(x=0, xanchor="left", font=dict(size=13))
    return fig


def _default_title(plan: Plan) -> str:
    m = plan.metrics
    name = plan.schedule_name
    ratio = m.bubble_ratio
    extra = f" · bubble ratio {ratio:.1%}" if isinstance(ratio, (int, float)) else ""
    flag = "" if plan.valid else " · ⚠ invalid"
    return f"<b>{name}</b> · iteration {plan.makespan:.4g}{extra}{flag}"
