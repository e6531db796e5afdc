"""The model graph as Graphviz DOT, for ``st.graphviz_chart`` (laid out in the browser, no system
package), top to bottom at its natural size: operators grouped into one box per layer, runs of
identical layers folded into one node, costs in each node's tooltip, and — once a plan exists —
operators coloured by their device.

Grouping: an operator ``L3.attn`` belongs to the layer unit ``L3``; ``vision.L3`` is its own unit
(the first dotted segment that holds a digit ends the unit's name). A large graph (more than
:data:`FOLD_ABOVE` operators or :data:`MAX_UNITS` units) shows the first layer of each shape in full
(``L0``: attention, router, dispatch, experts, combine) and folds every run of units of the same
shape on the same device into one node (``L1 … L7  (7 layers)``), so Llama's 66 operators become
a handful of nodes, one per device once a plan colours them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from opplan.graph import ModelGraph, Operator
from opplan.units import format_bytes

FOLD_ABOVE = 60        # graphs with more operators than this (or more units than MAX_UNITS) are folded
MAX_UNITS = 12
KIND_COLORS = {"compute": "#DCE6F2", "communication": "#FBE3CC"}
KIND_SHAPES = {"compute": "box", "communication": "hexagon"}
# one colour per device (Tableau 10, light enough for black text); devices beyond ten cycle
DEVICE_COLORS = ("#8FB4DA", "#F9B26E", "#96CC8F", "#F09A9C", "#A9D8D4", "#F3D77A", "#C9A6C2", "#FFC2CE",
                 "#C7B09E", "#CFCBC8")
_UNITS = {"time": "ms", "flops": "FLOP", "bytes": "B"}


def device_color(device: int) -> str:
    return DEVICE_COLORS[device % len(DEVICE_COLORS)]


@dataclass(frozen=True)
class _Unit:
    """A layer unit: its name, its operators in topological order, and its shape signature."""

    name: str
    ops: tuple[Operator, ...]
    signature: tuple


def unit_name(op_id: str) -> str:
    """``L3.attn`` → ``L3``; ``vision.L3`` → ``vision.L3``; ``embed`` → ``embed``."""
    parts = op_id.split(".")
    for k, part in enumerate(parts):
        if any(ch.isdigit() for ch in part):
            return ".".join(parts[:k + 1])
    return op_id


def _shape(name: str) -> str:
    return re.sub(r"\d+", "#", name)


def _units(model: ModelGraph, device_of: Mapping[str, int]) -> list[_Unit]:
    by_name: dict[str, list[Operator]] = {}
    for op_id in model.topological_order():
        by_name.setdefault(unit_name(op_id), []).append(model.operator(op_id))
    units = []
    for name, ops in by_name.items():
        signature = (_shape(name), tuple((op.id[len(name):], op.kind) for op in ops),
                     tuple(sorted({device_of.get(op.id, -1) for op in ops})))
        units.append(_Unit(name, tuple(ops), signature))
    return units


def _runs(units: list[_Unit]) -> list[list[_Unit]]:
    """Maximal runs of consecutive units with the same signature (shape and device)."""
    runs: list[list[_Unit]] = []
    for unit in units:
        if runs and runs[-1][0].signature == unit.signature:
            runs[-1].append(unit)
        else:
            runs.append([unit])
    return runs


def _fold(units: list[_Unit]) -> list[_Unit | list[_Unit]]:
    """What to draw: a small graph as it is; a large one shows the first layer of each shape in
    full and folds the other layers of each run into one node (a list of units)."""
    if sum(len(u.ops) for u in units) <= FOLD_ABOVE and len(units) <= MAX_UNITS:
        return list(units)
    shown: set[tuple] = set()
    out: list[_Unit | list[_Unit]] = []
    for run in _runs(units):
        shape = run[0].signature[:2]
        rest = run
        if shape not in shown:
            shown.add(shape)
            out.append(run[0])
            rest = run[1:]
        if len(rest) == 1 and len(rest[0].ops) == 1:
            out.append(rest[0])
        elif rest:
            out.append(list(rest))
    return out


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _costs(op: Operator) -> str:
    c, unit = op.costs, _UNITS.get(op.costs.unit, op.costs.unit)
    return (f"{op.id} ({op.kind})&#10;F {c.forward:.4g} · B {c.input_grad:.4g} · W {c.weight_grad:.4g} {unit}&#10;"
            f"activations {format_bytes(op.activation_bytes)} · params {format_bytes(op.param_bytes)}")


def _fill(ops: tuple[Operator, ...] | list[Operator], device_of: Mapping[str, int]) -> str:
    devices = sorted({device_of[op.id] for op in ops if op.id in device_of})
    if devices:
        return device_color(devices[0])
    return KIND_COLORS.get(ops[0].kind, "#EEEEEE")


def dag_dot(model: ModelGraph, device_of: Mapping[str, int] | None = None) -> str:
    """DOT text of ``model`` (left to right). ``device_of``: operator id → device of a plan, to
    colour operators by where they run (and fold only layers on one device)."""
    device_of = device_of or {}
    node_of: dict[str, str] = {}      # operator id → drawn node
    lines = ["digraph model {", "  rankdir=TB; newrank=true; nodesep=0.15; ranksep=0.3;",
             '  node [fontname="Helvetica", fontsize=10, style="filled,rounded", margin="0.08,0.03", height=0.3];',
             '  edge [color="#9A9A9A", arrowsize=0.6];']
    for k, item in enumerate(_fold(_units(model, device_of))):
        if isinstance(item, list):      # folded layers: one node
            node = f"fold{k}"
            ops = [op for unit in item for op in unit.ops]
            for op in ops:
                node_of[op.id] = node
            span = item[0].name if len(item) == 1 else f"{item[0].name} … {item[-1].name}"
            size = f"1 layer, {len(ops)} ops" if len(item) == 1 else f"{len(item)} layers"
            tooltip = f"{span}: {size} folded ({len(ops)} operators like {item[0].ops[0].id})"
            lines.append(f"  {node} [label={_quote(span)[:-1]}\\n{size}\", "
                         f"shape=box3d, fillcolor={_quote(_fill(ops, device_of))}, tooltip={_quote(tooltip)}];")
            continue
        cluster = len(item.ops) > 1
        if cluster:
            lines += [f"  subgraph cluster_{k} {{", f"    label={_quote(item.name)}; fontname=Helvetica; fontsize=10;",
                      '    style="rounded"; color="#BBBBBB";']
        for op in item.ops:
            node = f"n{len(node_of)}"
            node_of[op.id] = node
            label = op.id[len(item.name) + 1:] if cluster and op.id.startswith(item.name + ".") else op.id
            device = f"  · dev{device_of[op.id]}" if op.id in device_of else ""
            lines.append(f"  {'  ' if cluster else ''}{node} [label={_quote(label)}, "
                         f"shape={KIND_SHAPES.get(op.kind, 'box')}, fillcolor={_quote(_fill([op], device_of))}, "
                         f"tooltip={_quote(_costs(op) + device)}];")
        if cluster:
            lines.append("  }")
    seen: set[tuple[str, str]] = set()
    for e in model.edges:
        a, b = node_of[e.src], node_of[e.dst]
        if a != b and (a, b) not in seen:
            seen.add((a, b))
            lines.append(f"  {a} -> {b} [tooltip={_quote(f'{e.src} → {e.dst}: {format_bytes(e.bytes)}')}];")
    lines.append("}")
    return "\n".join(lines)


def device_legend(device_of: Mapping[str, int]) -> list[tuple[str, str]]:
    """(device name, colour) of each device that holds operators, for a legend under the graph."""
    return [(f"dev{d}", device_color(d)) for d in sorted(set(device_of.values()))]
