"""What a run reports, as text for people and as JSON for scripts: a plan's summary, the
comparison table, a model's operator table, a validation verdict.

Kept apart from the CLI so that any front end (or a notebook) prints the same numbers the same
way. JSON has no infinity: an infinite value (no cap, no bound) is written as ``null``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opplan.cluster import uniform_cluster
from opplan.graph import ModelGraph
from opplan.outputs import Violation, json_number
from opplan.schedule import Plan
from opplan.units import counts_in_activation_units, format_bytes, written_in_abstract_units

# the provenance fields a plan summary carries (when the producer set them)
SUMMARY_PROVENANCE = ("solver", "solver_reason", "status", "gap", "solve_seconds", "placement")
_TOTALS = ("forward_ms", "input_grad_ms", "weight_grad_ms", "activation_bytes", "param_bytes")


def jsonable(value: Any) -> Any:
    """``value`` with every infinite float replaced by ``None`` (JSON ``null``), recursively."""
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def to_json(payload: Any) -> str:
    """One line of JSON, infinity as ``null``."""
    return json.dumps(jsonable(payload))


def _numbers(values: Sequence[float], digits: int = 3) -> str:
    return " ".join(f"{v:.{digits}g}" for v in values)


def _lower_bound(plan: Plan) -> float:
    """The producer's proven bound when it has one (the planner), else the problem's own."""
    bound = plan.provenance.lower_bound
    return plan.metrics.lower_bound if bound is None else bound


# --- plans --------------------------------------------------------------------------------------
def plan_summary(plan: Plan) -> dict[str, Any]:
    """The JSON every plan-producing command prints (keys fixed: scripts read them)."""
    m = plan.metrics
    prov = plan.provenance
    summary = {
        "schedule": plan.schedule_name,
        "devices": plan.problem.num_devices,
        "stages": plan.problem.num_stages,
        "microbatches": prov.microbatches or plan.problem.microbatches,
        "makespan": m.makespan,
        "bubble": m.bubble,
        "bubble_ratio": m.bubble_ratio,
        "exposed_communication": m.exposed_communication,
        "peak_activations": m.peak_activations,
        "peak_activation_bytes": m.peak_activation_bytes,
        "peak_memory_bytes": m.peak_memory_bytes,
        "param_bytes": m.param_bytes,
        "memory_cap_bytes": m.memory_cap_bytes,
        "lower_bound": _lower_bound(plan),
        "valid": plan.valid,
        "violations": [v.to_dict() for v in plan.violations],
        **{k: v for k, v in prov.to_dict().items() if k in SUMMARY_PROVENANCE},
    }
    return jsonable(summary)


def plan_text(plan: Plan) -> str:
    """A plan's summary for people: times, bubbles, peaks against caps, solver verdict, validity."""
    m = plan.metrics
    prov = plan.provenance
    microbatches = prov.microbatches or plan.problem.microbatches
    lines = [f"{plan.schedule_name}: {plan.problem.num_devices} devices, {plan.problem.num_stages} stages, "
             f"{microbatches} micro-batches",
             f"  makespan      {m.makespan:.6g}   (lower bound {_lower_bound(plan):.6g})",
             f"  bubble ratio  {m.bubble_ratio:.4f}",
             f"  bubble        {_numbers(m.bubble, 6)}"]
    if any(x > 0 for x in m.exposed_communication):   # only problems with comm streams have any
        lines.append(f"  exposed comm  {_numbers(m.exposed_communication, 6)}  (all-to-all not hidden by compute)")
    if m.peak_activations is not None:
        lines.append(f"  peak activ.   {_numbers(m.peak_activations, 6)}  (activation units)")
    if not counts_in_activation_units(plan.problem):
        lines.append(f"  peak memory   {' '.join(format_bytes(x) for x in m.peak_memory_bytes)}"
                     f"  (params + activations; cap {' '.join(format_bytes(x) for x in m.memory_cap_bytes)})")
    if prov.solver is not None:
        lines.append(f"  solver        {prov.solver} ({prov.solver_reason or ''})")
    if prov.status is not None:
        lines.append(f"  status        {prov.status.value}, gap {prov.gap or 0:.4f}, {prov.solve_seconds or 0:.2f} s")
    lines.append("  valid         yes" if plan.valid else
                 "  valid         NO\n" + "\n".join(f"    {v}" for v in plan.violations[:20]))
    return "\n".join(lines)


# --- comparison ------------------------------------------------------------------------------
def not_applicable(schedule: str, reason: str) -> dict[str, Any]:
    """A comparison row for a schedule that cannot run on the scenario (e.g. DualPipe, odd P)."""
    return {"schedule": schedule, "error": reason, "valid": False}


def _activation_unit_of_row(row: dict[str, Any]) -> float | None:
    """Bytes of one activation unit when a summary row's memory reads best in those units (the
    uniform pipeline, a model in abstract units: see ``units.counts_in_activation_units``), else None."""
    units, stored = max(row.get("peak_activations") or [0.0]), max(row.get("peak_activation_bytes") or [0.0])
    params = row.get("param_bytes") or [0.0]
    if units <= 0:
        return None
    unit = stored / units
    if unit == 1.0 and max(params) < 1e3:
        return unit
    return unit if written_in_abstract_units(unit * len(params), sum(params)) else None


def compare_text(rows: Sequence[dict[str, Any]]) -> str:
    """One line per schedule: rows are :func:`plan_summary` or :func:`not_applicable` dicts."""
    lines = [f"{'schedule':<18} {'makespan':>10} {'bubble ratio':>13} {'max bubble':>11} {'peak activ.':>12} "
             f"{'peak mem':>10} {'valid':>6}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['schedule']:<18} not applicable: {r['error']}")
            continue
        peak = max(r["peak_activations"]) if r["peak_activations"] else float("nan")
        memory = max(r["peak_memory_bytes"])   # the uniform pipeline counts activation units, not bytes
        unit = _activation_unit_of_row(r)
        memory_text = format_bytes(memory) if unit is None else f"{memory / unit:.4g} act."
        lines.append(f"{r['schedule']:<18} {r['makespan']:>10.6g} {r['bubble_ratio']:>13.4f} "
                     f"{max(r['bubble']):>11.6g} {peak:>12.4g} {memory_text:>10} "
                     f"{'yes' if r['valid'] else 'NO':>6}")
    return "\n".join(lines)


# --- models --------------------------------------------------------------------------------------
def model_info(model: ModelGraph, accelerator: str | None = None) -> dict[str, Any]:
    """Operators, edges, times per pass on one ``accelerator`` (default: the model's own) and totals."""
    accelerator = accelerator or model.accelerator
    cluster = uniform_cluster(1, accelerator=accelerator)
    rows = []
    for op in model.operators:
        f, b, w = cluster.operator_times(op, 0)
        rows.append({"id": op.id, "kind": op.kind, "forward_ms": f, "input_grad_ms": b, "weight_grad_ms": w,
                     "activation_bytes": op.activation_bytes, "param_bytes": op.param_bytes,
                     "predecessors": model.predecessors(op.id)})
    return {"name": model.name, "description": model.description, "accelerator": accelerator, "operators": rows,
            "edges": [{"src": e.src, "dst": e.dst, "bytes": e.bytes} for e in model.edges],
            "num_operators": len(rows), "num_edges": len(model.edges),
            "totals": {k: sum(r[k] for r in rows) for k in _TOTALS}}


def _info_row(name: str, kind: str, r: dict[str, Any]) -> str:
    return (f"{name:<24} {kind:<13} {r['forward_ms']:>9.4g} {r['input_grad_ms']:>9.4g} {r['weight_grad_ms']:>9.4g} "
            f"{format_bytes(r['activation_bytes']):>10} {format_bytes(r['param_bytes']):>10}")


def info_text(info: dict[str, Any]) -> str:
    """The operator table of :func:`model_info`, with a total line."""
    lines = [f"model {info['name']}: {info['num_operators']} operators, {info['num_edges']} edges"
             + (f" (times on {info['accelerator']})" if info["accelerator"] else ""),
             f"{'operator':<24} {'kind':<13} {'F ms':>9} {'B ms':>9} {'W ms':>9} {'activ.':>10} {'params':>10}"]
    lines += [_info_row(r["id"], r["kind"], r) for r in info["operators"]]
    lines.append(_info_row("total", "", info["totals"]))
    return "\n".join(lines)


# --- validation ----------------------------------------------------------------------------------
def validation_summary(plan: Plan, violations: Sequence[Violation]) -> dict[str, Any]:
    """The verdict on a saved plan: valid or not, with every violation."""
    return {"valid": not violations, "violations": [v.to_dict() for v in violations],
            "tasks": len(plan.tasks), "makespan": plan.makespan}


def validation_text(source: str, plan: Plan, violations: Sequence[Violation]) -> str:
    if not violations:
        return f"{source}: valid ({len(plan.tasks)} tasks, makespan {plan.makespan:g})"
    return f"{source}: INVALID, {len(violations)} violation(s)\n" + "\n".join(f"  {v}" for v in violations)


# --- sweeps -------------------------------------------------------------------------------------
def sweep_rows(points: Sequence[Any], unit: str) -> list[dict[str, Any]]:
    """One row per cap of ``opplan sweep``: the cap (in ``unit``) and the plan's summary, or the error."""
    rows = []
    for point in points:
        row: dict[str, Any] = {"cap": point.cap.values[0], "cap_unit": unit}
        row.update(plan_summary(point.plan) if point.plan is not None else {"error": point.error})
        rows.append(row)
    return rows


def sweep_text(rows: Sequence[dict[str, Any]]) -> str:
    """The trade-off as a table: bubble and iteration time per cap, tightest cap first."""
    lines = ["cap              bubble ratio  max bubble   makespan   lower bound  gap     status     placement   seconds"]
    for r in rows:
        cap = format_bytes(r["cap"]) if r["cap_unit"] == "bytes" else f"{r['cap']:g} act."
        if "error" in r:
            lines.append(f"{cap:<16} {r['error']}")
            continue
        bound = "–" if r.get("lower_bound") is None else f"{r['lower_bound']:.6g}"
        gap = "–" if r.get("gap") is None else f"{r['gap']:.3f}"
        lines.append(f"{cap:<16} {r['bubble_ratio']:<13.4f} {max(r['bubble']):<12.6g} {r['makespan']:<10.6g} "
                     f"{bound:<12} {gap:<7} {r.get('status') or '':<10} {r.get('placement') or '':<11} "
                     f"{r.get('solve_seconds') or 0:.1f}")
    return "\n".join(lines)
