"""A drawing of the model graph: operators in topological layers, left to right.

A layered layout (networkx topological generations) reads like a network diagram and needs no
graphviz; it stays legible for a few hundred operators.
"""
from __future__ import annotations

import networkx as nx
import plotly.graph_objects as go

from opplan.graph import ModelGraph

KIND_COLORS = {"compute": "#4C78A8", "communication": "#F58518"}
LABEL_LIMIT = 60     # above this many operators, ids only show on hover
ARROW_LIMIT = 150    # above this many edges, edges are plain lines (annotations get slow)


def _layout(model: ModelGraph) -> dict[str, tuple[float, float]]:
    order = {op_id: i for i, op_id in enumerate(model.topological_order())}
    pos: dict[str, tuple[float, float]] = {}
    for x, layer in enumerate(nx.topological_generations(model.digraph)):
        layer = sorted(layer, key=order.__getitem__)
        for k, op_id in enumerate(layer):
            pos[op_id] = (float(x), (len(layer) - 1) / 2.0 - k)
    return pos


def dag_figure(model: ModelGraph) -> go.Figure:
    """Nodes coloured by kind (compute / communication), hover with costs and memory."""
    pos = _layout(model)
    fig = go.Figure()
    show_arrows = len(model.edges) <= ARROW_LIMIT
    ex: list[float | None] = []
    ey: list[float | None] = []
    for e in model.edges:
        (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
        ex += [x0, x1, None]
        ey += [y0, y1, None]
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(color="#B0B0B0", width=1),
                             hoverinfo="skip", showlegend=False))
    if show_arrows:
        for e in model.edges:
            (x0, y0), (x1, y1) = pos[e.src], pos[e.dst]
            fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y",
                               showarrow=True, arrowhead=2, arrowsize=1, arrowwidth=1, arrowcolor="#B0B0B0",
                               standoff=9, text="")
    labels = len(model.operators) <= LABEL_LIMIT
    for kind, color in KIND_COLORS.items():
        ops = [op for op in model.operators if op.kind == kind]
        if not ops:
            continue
        unit = {"time": "ms", "flops": "FLOPs", "bytes": "bytes"}
        fig.add_trace(go.Scatter(
            x=[pos[op.id][0] for op in ops], y=[pos[op.id][1] for op in ops],
            mode="markers+text" if labels else "markers", name=kind,
            text=[op.id for op in ops] if labels else None, textposition="top center", textfont=dict(size=10),
            marker=dict(size=14, color=color, line=dict(color="white", width=1),
                        symbol="circle" if kind == "compute" else "diamond"),
            customdata=[[op.id, op.group or "–", f"{op.costs.forward:.4g}", f"{op.costs.input_grad:.4g}",
                         f"{op.costs.weight_grad:.4g}", unit[op.costs.unit], f"{op.activation_bytes:.4g}",
                         f"{op.param_bytes:.4g}"] for op in ops],
            hovertemplate=("<b>%{customdata[0]}</b> (group %{customdata[1]})<br>F %{customdata[2]} · "
                           "B %{customdata[3]} · W %{customdata[4]} %{customdata[5]}<br>activations "
                           "%{customdata[6]} B · params %{customdata[7]} B<extra>" + kind + "</extra>"),
        ))
    n_layers = max((p[0] for p in pos.values()), default=0) + 1
    width_layers = max(1, n_layers)
    tallest = max((sum(1 for p in pos.values() if p[0] == x) for x in range(int(width_layers))), default=1)
    fig.update_layout(
        height=max(260, min(900, 60 * tallest + 140)), plot_bgcolor="white", showlegend=True,
        margin=dict(l=10, r=10, t=30, b=30), legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        xaxis=dict(visible=True, showgrid=False, zeroline=False, showticklabels=False,
                   title="data flows left to right (one column per topological layer)",
                   range=[-0.6, width_layers - 0.4]),
        yaxis=dict(visible=False, showgrid=False, zeroline=False),
    )
    return fig
