"""The ``opplan`` command. Bad input of any kind ends in one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from opplan.errors import OpplanError

EXIT_INVALID = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error; we print the error alone, on one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"opplan: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


# --- shared option groups -------------------------------------------------------------------
def _add_model_args(p: argparse.ArgumentParser, microbatches: bool = True) -> None:
    p.add_argument("model", nargs="?", help="model file (JSON or YAML); omit it and give --stages for a uniform pipeline")
    p.add_argument("--stages", type=int, help="uniform pipeline: number of pipeline devices P")
    p.add_argument("--devices", type=int, help="devices to place a model file on (default: --stages, or 4)")
    p.add_argument("--f", type=float, default=1.0, help="uniform pipeline: forward time (default 1)")
    p.add_argument("--b", type=float, default=1.0, help="uniform pipeline: input-gradient time (default 1)")
    p.add_argument("--w", type=float, default=1.0, help="uniform pipeline: weight-gradient time (default 1)")
    p.add_argument("--accelerator", help="accelerator preset for a model file (default: the model's own, else H100)")
    if microbatches:
        p.add_argument("--microbatches", "-m", type=int, default=None, help="micro-batches per iteration")


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(_jsonable(payload)))
    else:
        print(text)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _fmt_bytes(n: float) -> str:
    if math.isinf(n):
        return "no cap"
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:g} B"


def _fmt_list(values: Sequence[float], digits: int = 3) -> str:
    return " ".join(f"{v:.{digits}g}" for v in values)


# --- commands --------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    from opplan.cluster import uniform_cluster
    from opplan.graph import load_model, uniform_chain

    if args.model:
        model = load_model(args.model)
    elif args.stages:
        model = uniform_chain(args.stages, args.f, args.b, args.w)
    else:
        raise OpplanError("give a MODEL file or --stages P")
    cluster = uniform_cluster(1, accelerator=args.accelerator or model.accelerator)
    rows = []
    for op in model.operators:
        f, b, w = cluster.operator_times(op, 0)
        rows.append({"id": op.id, "kind": op.kind, "forward_ms": f, "input_grad_ms": b, "weight_grad_ms": w,
                     "activation_bytes": op.activation_bytes, "param_bytes": op.param_bytes,
                     "predecessors": model.predecessors(op.id)})
    totals = {k: sum(r[k] for r in rows) for k in ("forward_ms", "input_grad_ms", "weight_grad_ms",
                                                    "activation_bytes", "param_bytes")}
    payload = {"name": model.name, "description": model.description,
               "accelerator": args.accelerator or model.accelerator, "operators": rows,
               "edges": [{"src": e.src, "dst": e.dst, "bytes": e.bytes} for e in model.edges],
               "num_operators": len(rows), "num_edges": len(model.edges), "totals": totals}
    lines = [f"model {model.name}: {len(rows)} operators, {len(model.edges)} edges"
             + (f" (times on {payload['accelerator']})" if payload["accelerator"] else ""),
             f"{'operator':<24} {'kind':<13} {'F ms':>9} {'B ms':>9} {'W ms':>9} {'activ.':>10} {'params':>10}"]
    for r in rows:
        lines.append(f"{r['id']:<24} {r['kind']:<13} {r['forward_ms']:>9.4g} {r['input_grad_ms']:>9.4g} "
                     f"{r['weight_grad_ms']:>9.4g} {_fmt_bytes(r['activation_bytes']):>10} {_fmt_bytes(r['param_bytes']):>10}")
    lines.append(f"{'total':<24} {'':<13} {totals['forward_ms']:>9.4g} {totals['input_grad_ms']:>9.4g} "
                 f"{totals['weight_grad_ms']:>9.4g} {_fmt_bytes(totals['activation_bytes']):>10} "
                 f"{_fmt_bytes(totals['param_bytes']):>10}")
    _emit(args, payload, "\n".join(lines))
    return 0


def plan_summary(plan: Any) -> dict[str, Any]:
    """The JSON every plan-producing command prints (keys fixed by the issues)."""
    m = plan.metrics
    prov = plan.provenance
    return {
        "schedule": plan.schedule_name,
        "devices": plan.problem.num_devices,
        "stages": plan.problem.num_stages,
        "microbatches": prov.microbatches or plan.problem.microbatches,
        "makespan": m.makespan,
        "bubble": m.bubble,
        "bubble_ratio": m.bubble_ratio,
        "peak_activations": m.peak_activations,
        "peak_activation_bytes": m.peak_activation_bytes,
        "peak_memory_bytes": m.peak_memory_bytes,
        "param_bytes": m.param_bytes,
        "memory_cap_bytes": m.memory_cap_bytes,
        "lower_bound": m.lower_bound if prov.lower_bound is None else prov.lower_bound,
        "valid": plan.valid,
        "violations": [v.to_dict() for v in plan.violations],
        **{k: v for k, v in prov.to_dict().items()
           if k in ("solver", "solver_reason", "status", "gap", "solve_seconds", "placement")},
    }


def plan_text(plan: Any) -> str:
    s = plan_summary(plan)
    lines = [f"{s['schedule']}: {s['devices']} devices, {s['stages']} stages, {s['microbatches']} micro-batches",
             f"  makespan      {s['makespan']:.6g}   (lower bound {s['lower_bound']:.6g})",
             f"  bubble ratio  {s['bubble_ratio']:.4f}",
             f"  bubble        {_fmt_list(s['bubble'], 6)}"]
    if s["peak_activations"] is not None:
        lines.append(f"  peak activ.   {_fmt_list(s['peak_activations'], 6)}  (activation units)")
    if s["peak_activations"] is None or max(s["peak_memory_bytes"], default=0) >= 1e3:   # not the unit pipeline
        lines.append(f"  peak memory   {' '.join(_fmt_bytes(x) for x in s['peak_memory_bytes'])}"
                     f"  (params + activations; cap {' '.join(_fmt_bytes(x) for x in s['memory_cap_bytes'])})")
    if "solver" in s:
        lines.append(f"  solver        {s['solver']} ({s.get('solver_reason', '')})")
    if "status" in s:
        lines.append(f"  status        {s['status']}, gap {s.get('gap', 0):.4f}, {s.get('solve_seconds', 0):.2f} s")
    lines.append("  valid         yes" if s["valid"] else
                 "  valid         NO\n" + "\n".join(f"    {v}" for v in plan.violations[:20]))
    return "\n".join(lines)


def cmd_simulate(args: argparse.Namespace) -> int:
    from opplan.outputs import Provenance
    from opplan.schedule import Order, save_plan
    from opplan.simulate import make_plan

    problem = build_problem(args)
    if args.order:
        try:
            text = Path(args.order).read_text(encoding="utf-8")
        except OSError:
            raise OpplanError(f"{args.order}: cannot read the order file") from None
        order = Order.from_text(text, "split")
        name = Path(args.order).stem
    else:
        raise OpplanError("give --order FILE (lines 'dev0: 0F0 0F1 ...') or use 'opplan baseline NAME'")
    plan = make_plan(problem, order, Provenance(producer="order-file", schedule=name))
    if args.out:
        save_plan(plan, args.out)
    _emit(args, plan_summary(plan), plan_text(plan))
    return 0 if plan.valid else EXIT_INVALID


def cmd_validate(args: argparse.Namespace) -> int:
    from opplan.schedule import load_plan
    from opplan.validate import validate

    plan = load_plan(args.plan)
    violations = validate(plan)
    payload = {"valid": not violations, "violations": [v.to_dict() for v in violations],
               "tasks": len(plan.tasks), "makespan": plan.makespan}
    text = (f"{args.plan}: valid ({len(plan.tasks)} tasks, makespan {plan.makespan:g})" if not violations else
            f"{args.plan}: INVALID, {len(violations)} violation(s)\n" + "\n".join(f"  {v}" for v in violations))
    _emit(args, payload, text)
    return 0 if not violations else EXIT_INVALID


# --- problem construction from options --------------------------------------------------------
def build_problem(args: argparse.Namespace, placement: Sequence[int] | None = None):
    """A Problem from either --stages (uniform chain) or a MODEL file placed on --devices."""
    from opplan.problem import uniform_problem

    microbatches = args.microbatches
    if microbatches is None:
        raise OpplanError("--microbatches M is required")
    if args.model:
        from opplan.cluster import uniform_cluster
        from opplan.graph import load_model
        from opplan.partition import partitioned_problem

        model = load_model(args.model)
        devices = args.devices or args.stages or 4
        cluster = uniform_cluster(devices, accelerator=args.accelerator or model.accelerator or "H100")
        return partitioned_problem(model, cluster, "contiguous", microbatches)
    if not args.stages:
        raise OpplanError("give a MODEL file or --stages P")
    return uniform_problem(args.stages, microbatches, args.f, args.b, args.w, placement=placement)


def _scenario(args: argparse.Namespace):
    """A Scenario from the shared options of baseline / solve / compare."""
    from opplan.graph import load_model
    from opplan.scenario import Scenario

    if args.microbatches is None:
        raise OpplanError("--microbatches M is required")
    model = load_model(args.model) if args.model else None
    devices = args.devices or args.stages
    if not devices:
        raise OpplanError("give --stages P (uniform pipeline) or --devices P (model file)")
    caps = None
    cap_bytes = getattr(args, "memory_cap", None)
    cap_units = getattr(args, "memory_cap_activations", None)
    if cap_bytes and cap_units:
        raise OpplanError("give either --memory-cap or --memory-cap-activations, not both")
    if cap_units:
        caps = _parse_caps(cap_units, "--memory-cap-activations")
        if model is not None:
            caps = None if caps is None else tuple(c * _unit_bytes(model, devices) for c in caps)
    elif cap_bytes:
        caps = _parse_caps(cap_bytes, "--memory-cap")
        if model is None:
            raise OpplanError("--memory-cap is in bytes and needs a model file; use --memory-cap-activations K "
                              "for a uniform pipeline")
    fb = getattr(args, "fb", None)
    overlap = 1.0
    if fb is not None and model is not None:
        raise OpplanError("--fb is the F&B time of a uniform pipeline; it does not apply to a model file")
    return Scenario(devices=devices, microbatches=args.microbatches, model=model, f=args.f, b=args.b, w=args.w,
                    fb=fb, overlap_factor=overlap, memory_caps=caps, accelerator=args.accelerator)


def _unit_bytes(model, devices: int) -> float:
    """Activation unit of a model: one micro-batch of one of P equal stages."""
    return sum(op.activation_bytes for op in model.operators) / devices


def _parse_caps(text: str, flag: str) -> tuple[float, ...]:
    values = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = float(_suffix(part))
        except ValueError:
            raise OpplanError(f"{flag}: {part!r} is not a number (one value, or a comma list per device)") from None
        if not value > 0 or math.isinf(value):
            raise OpplanError(f"{flag}: caps must be positive and finite, got {part!r}")
        values.append(value)
    return tuple(values)


def _suffix(text: str) -> str:
    """Accept 80GB / 80G / 512MB style byte sizes."""
    units = {"TB": 1e12, "GB": 1e9, "MB": 1e6, "KB": 1e3, "T": 1e12, "G": 1e9, "M": 1e6, "K": 1e3,
             "GIB": 2**30, "MIB": 2**20}
    upper = text.upper()
    for suffix, factor in sorted(units.items(), key=lambda kv: -len(kv[0])):
        if upper.endswith(suffix) and upper[: -len(suffix)].strip():
            return str(float(upper[: -len(suffix)]) * factor)
    return text


def _add_scenario_args(p: argparse.ArgumentParser) -> None:
    _add_model_args(p)
    p.add_argument("--fb", type=float, help="uniform pipeline: time of one forward overlapped with one full "
                                            "backward (default F+B+W: no gain from overlap)")
    p.add_argument("--memory-cap", help="memory cap per device in bytes (80GB style allowed); one value or a comma "
                                        "list per device")
    p.add_argument("--memory-cap-activations", help="memory cap in activation units (one micro-batch of one stage); "
                                                    "one value or a comma list per device")
    p.add_argument("--out", help="write the plan JSON here")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def cmd_baseline(args: argparse.Namespace) -> int:
    from opplan import baselines
    from opplan.schedule import save_plan

    scenario = _scenario(args)
    plan = baselines.run_on(scenario, baselines.get(args.name).name)
    if args.out:
        save_plan(plan, args.out)
    _emit(args, plan_summary(plan), plan_text(plan))
    return 0 if plan.valid else EXIT_INVALID


def _progress_printer(args: argparse.Namespace):
    """A one-line progress display on stderr (stdout stays clean for --json)."""
    if getattr(args, "quiet", False):
        return None, None

    live = sys.stderr.isatty()

    def progress(p) -> None:
        if math.isfinite(p.incumbent):
            line = f"  {p.seconds:6.1f}s  incumbent {p.incumbent:.6g}  bound {p.bound:.6g}"
            sys.stderr.write(f"\r{line}\x1b[K" if live else line + "\n")
            sys.stderr.flush()

    def log(message: str) -> None:
        sys.stderr.write(f"\r{message}\x1b[K\n" if live else message + "\n")
        sys.stderr.flush()

    return progress, log


def _planner_options(args: argparse.Namespace):
    from opplan.planner.api import PlannerOptions

    progress, log = _progress_printer(args)
    return PlannerOptions(solver=args.solver, objective=args.objective, time_limit=args.time_limit,
                          mip_gap=args.gap, threads=args.threads, placement=args.placement,
                          makespan_limit=args.makespan_limit, progress=progress, log=log,
                          should_stop=_first_ctrl_c_stops())


def _first_ctrl_c_stops():
    """The first Ctrl-C asks the solver to stop and keep its best plan; a second one quits."""
    import signal

    stop = {"asked": False}

    def handler(signum: int, frame: Any) -> None:
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        sys.stderr.write("\nstopping: the best plan so far will be returned (Ctrl-C again to quit)\n")

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:   # not the main thread (e.g. called from a server): no signal handling
        pass
    return lambda: stop["asked"]


def cmd_solve(args: argparse.Namespace) -> int:
    from opplan.planner.api import solve as run_planner
    from opplan.schedule import save_plan

    scenario = _scenario(args)
    plan = run_planner(scenario, _planner_options(args))
    if args.out:
        save_plan(plan, args.out)
    _emit(args, plan_summary(plan), plan_text(plan))
    return 0 if plan.valid else EXIT_INVALID


def cmd_compare(args: argparse.Namespace) -> int:
    from opplan import baselines
    from opplan.planner.api import solve as run_planner

    scenario = _scenario(args)
    rows = []
    for name in [s.strip() for s in args.schedules.split(",") if s.strip()]:
        try:
            if name == "opplan":
                plan = run_planner(scenario, _planner_options(args))
            else:
                plan = baselines.run_on(scenario, baselines.get(name).name)
            rows.append(plan_summary(plan))
        except OpplanError as error:
            if name != "opplan" and "unknown" in str(error):
                raise
            rows.append({"schedule": name, "error": str(error), "valid": False})
    lines = [f"{'schedule':<18} {'makespan':>10} {'bubble ratio':>13} {'max bubble':>11} {'peak activ.':>12} "
             f"{'peak mem':>10} {'valid':>6}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['schedule']:<18} not applicable: {r['error']}")
            continue
        peak = max(r["peak_activations"]) if r["peak_activations"] else float("nan")
        lines.append(f"{r['schedule']:<18} {r['makespan']:>10.6g} {r['bubble_ratio']:>13.4f} {max(r['bubble']):>11.6g} "
                     f"{peak:>12.4g} {_fmt_bytes(max(r['peak_memory_bytes'])):>10} {'yes' if r['valid'] else 'NO':>6}")
    _emit(args, {"scenario": scenario.name, "rows": rows}, "\n".join(lines))
    return 0


def _add_planner_args(p: argparse.ArgumentParser) -> None:
    from opplan.planner.api import OBJECTIVES, PLACEMENTS
    from opplan.planner.solvers import SOLVERS

    p.add_argument("--solver", default="auto", choices=SOLVERS)
    p.add_argument("--objective", default="makespan", choices=OBJECTIVES)
    p.add_argument("--placement", default="auto", choices=PLACEMENTS)
    p.add_argument("--time-limit", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("--gap", type=float, default=0.0, help="relative MIP gap to stop at (default 0)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--makespan-limit", type=float, help="objective memory: iteration time to stay within")
    p.add_argument("--quiet", action="store_true", help="no progress display on stderr")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="opplan", description="Automatic operator-level parallelism planning.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help="operators, edges, cost per pass and parameter bytes of a model")
    _add_model_args(p, microbatches=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("simulate", help="time an order (per-device sequences) and check it")
    _add_model_args(p)
    p.add_argument("--order", help="order file: one line per device, 'dev0: 0F0 0F1 ... 0B0 0W0 ...'")
    p.add_argument("--out", help="write the plan JSON here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("validate", help="check a saved plan; exit 0 when valid, 1 with the violations")
    p.add_argument("plan", help="plan JSON written by --out")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("baseline", help="a hand-designed schedule (1f1b, zb-h1, dualpipe, ...), timed and checked")
    p.add_argument("name", help="gpipe, 1f1b, interleaved-1f1b, zb-h1, zb-h2, zb-v, dualpipe, dualpipev")
    _add_scenario_args(p)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("solve", help="plan placement and schedule with the bi-level MIP planner")
    _add_scenario_args(p)
    _add_planner_args(p)
    p.set_defaults(func=cmd_solve)

    p = sub.add_parser("compare", help="one row per schedule under the same caps")
    _add_scenario_args(p)
    _add_planner_args(p)
    p.add_argument("--schedules", default="1f1b,zb-h1,dualpipe,opplan", help="comma list (default %(default)s)")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except OpplanError as error:
        sys.stderr.write(f"opplan: error: {error}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("opplan: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
