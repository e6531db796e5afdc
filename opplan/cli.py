"""The ``opplan`` command: argument parsing and dispatch. Scenarios come from
:meth:`Scenario.from_options` (as in the dashboard), output from :mod:`opplan.report`.
Bad input of any kind ends in one line on stderr, naming the flag to fix, and exit code 2."""
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opplan import baselines, report
from opplan.errors import OpplanError, check_writable, read_user_file
from opplan.granularity import GRANULARITIES
from opplan.graph import load_model, uniform_chain
from opplan.layout import CONTIGUOUS
from opplan.limits import check_threads, cores, shown
from opplan.outputs import Provenance
from opplan.planner.api import OBJECTIVES, PLACEMENTS, PlannerOptions
from opplan.planner.api import solve as run_planner
from opplan.planner.solvers import PLANNER_SOLVERS
from opplan.problem import uniform_problem
from opplan.scenario import Scenario
from opplan.schedule import Order, Plan, load_plan, order_from_lists, save_plan
from opplan.simulate import make_plan
from opplan.units import MemoryCap
from opplan.validate import validate

EXIT_INVALID = 1
EXIT_USAGE = 2

# the flag that sets each field a library error may name (memory_cap, devices: see _flag)
FLAGS = {"stages": "--stages", "devices": "--devices", "microbatches": "--microbatches", "f": "--f", "b": "--b",
         "w": "--w", "fb": "--fb", "accelerator": "--accelerator", "solver": "--solver",
         "ep_bandwidth": "--ep-bandwidth", "granularity": "--granularity", "ranks": "--ranks", "hidden": "--hidden",
         "rows": "--rows", "iterations": "--iterations", "layers_per_unit": "--layers-per-unit"}


MAX_SWEEP_CAPS = 50   # each cap of a sweep is a whole solve


class _Parser(argparse.ArgumentParser):
    """argparse prints usage plus an error; we print the error alone, on one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"opplan: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


# --- errors in the CLI's terms -----------------------------------------------------------------
def _flag(field: str, args: argparse.Namespace) -> str | None:
    """The flag the user gave (or would give) for ``field``."""
    if field == "memory_cap":
        if getattr(args, "caps", None) is not None or getattr(args, "caps_bytes", None) is not None:
            return "--caps" if args.caps is not None else "--caps-bytes"   # opplan sweep: its caps' own flag
        return "--memory-cap-activations" if getattr(args, "memory_cap_activations", None) is not None \
            else "--memory-cap"
    if field in ("devices", "stages"):    # one number, set by either flag: name the one the user gave
        given = [f for f in (field, "stages", "devices") if getattr(args, f, None) is not None]
        return FLAGS[given[0] if given else field]
    return FLAGS.get(field)


def error_line(error: OpplanError, args: argparse.Namespace | None) -> str:
    """A library error as the CLI prints it: the field it names becomes the flag that sets it
    (``stages must be ...`` reads ``--stages must be ...``; other messages get a ``--flag:`` prefix)."""
    message = str(error)
    flag = _flag(error.field, args) if error.field and args is not None else None
    if flag is None:
        return message
    if message.startswith(error.field + " "):
        return flag + message[len(error.field):]
    return f"{flag}: {message}"


# --- option types: argparse reports a bad value as one line naming the flag ------------------------
def _number_type(low: float, low_ok: bool, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not a number") from None
        if not math.isfinite(value) or value < low or (value == low and not low_ok):
            raise argparse.ArgumentTypeError(f"must be {what}, got {shown(text)}")
        return value
    return parse


_NON_NEGATIVE = _number_type(0.0, True, "a finite number >= 0")
_POSITIVE = _number_type(0.0, False, "a finite number > 0")


def _threads(text: str) -> int:
    try:
        return check_threads(int(text))
    except (ValueError, OpplanError):
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to {cores()} (the cores available), "
                                         f"got {shown(text)}") from None


# --- shared options ----------------------------------------------------------------------------
def _add_model_args(p: argparse.ArgumentParser, microbatches: bool = True) -> None:
    p.add_argument("model", nargs="?",
                   help="model file (JSON or YAML); omit it and give --stages for a uniform pipeline")
    p.add_argument("--stages", type=int, help="uniform pipeline: number of pipeline devices P")
    p.add_argument("--devices", type=int, help="devices to place a model file on (or give --stages)")
    p.add_argument("--f", type=float, default=1.0, help="uniform pipeline: forward time (default 1)")
    p.add_argument("--b", type=float, default=1.0, help="uniform pipeline: input-gradient time (default 1)")
    p.add_argument("--w", type=float, default=1.0, help="uniform pipeline: weight-gradient time (default 1)")
    p.add_argument("--accelerator", help="accelerator preset for a model file (default: the model's own, else H100)")
    if microbatches:
        p.add_argument("--microbatches", "-m", type=int, default=None, help="micro-batches per iteration")


def _add_scenario_args(p: argparse.ArgumentParser) -> None:
    _add_model_args(p)
    p.add_argument("--fb", type=float, help="uniform pipeline: time of one forward overlapped with one full "
                                            "backward (default F+B+W: no gain from overlap)")
    p.add_argument("--memory-cap", help="memory cap per device in bytes (80GB style allowed); one value or a comma "
                                        "list per device")
    p.add_argument("--memory-cap-activations", help="memory cap in activation units (one micro-batch of one stage); "
                                                    "one value or a comma list per device")
    p.add_argument("--ep-bandwidth", type=float, metavar="GB/s",
                   help="model file: expert-parallel bandwidth per device for all-to-all (communication "
                        "operators in bytes); default: the accelerator's, e.g. 50 for H100")
    p.add_argument("--granularity", default="stage", choices=GRANULARITIES,
                   help="model file: plan whole stages, or split them into units at each layer or around every "
                        "communication operator, which then overlaps compute on its own stream (default stage)")
    p.add_argument("--out", help="write the plan JSON here")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _add_planner_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--solver", default="auto", choices=PLANNER_SOLVERS)
    p.add_argument("--objective", default="makespan", choices=OBJECTIVES)
    p.add_argument("--placement", default="auto", choices=PLACEMENTS)
    p.add_argument("--time-limit", type=_POSITIVE, default=60.0, help="seconds (default 60)")
    p.add_argument("--gap", type=_NON_NEGATIVE, default=0.0, help="relative MIP gap to stop at (default 0)")
    p.add_argument("--threads", type=_threads, default=min(2, cores()),
                   help="solver threads, 1 to the cores available (default 2)")
    p.add_argument("--makespan-limit", type=_POSITIVE, help="objective memory: iteration time to stay within")
    p.add_argument("--quiet", action="store_true", help="no progress display on stderr")


def _memory_cap(args: argparse.Namespace) -> MemoryCap | None:
    cap_bytes = getattr(args, "memory_cap", None)
    cap_units = getattr(args, "memory_cap_activations", None)
    if cap_bytes is not None and cap_units is not None:
        raise OpplanError("give either --memory-cap or --memory-cap-activations, not both")
    if cap_units is not None:
        return MemoryCap.parse(cap_units, "activations")
    return None if cap_bytes is None else MemoryCap.parse(cap_bytes, "bytes")


def _scenario(args: argparse.Namespace) -> Scenario:
    """The scenario the options describe: a MODEL file on --devices, or a uniform pipeline of --stages."""
    return Scenario.from_options(load_model(args.model) if args.model else None, devices=args.devices,
                                 stages=args.stages, microbatches=args.microbatches, f=args.f, b=args.b, w=args.w,
                                 fb=getattr(args, "fb", None), memory_cap=_memory_cap(args),
                                 accelerator=args.accelerator, granularity=getattr(args, "granularity", "stage"),
                                 ep_bandwidth=getattr(args, "ep_bandwidth", None))


def _emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    print(report.to_json(payload) if getattr(args, "json", False) else text)


def _finish(args: argparse.Namespace, plan: Plan) -> int:
    """Save (--out) and print a plan; exit 1 when it breaks a rule."""
    if args.out:
        save_plan(plan, args.out)     # a one-line error if it cannot be written
    _emit(args, report.plan_summary(plan), report.plan_text(plan))
    return 0 if plan.valid else EXIT_INVALID


# --- commands --------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    if args.model:
        model = load_model(args.model)
    elif args.stages:
        model = uniform_chain(args.stages, args.f, args.b, args.w)
    else:
        raise OpplanError("give a MODEL file or --stages P")
    info = report.model_info(model, args.accelerator)
    _emit(args, info, report.info_text(info))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.order and Path(args.order).suffix.lower() == ".csv":
        return _simulate_torch_csv(args)
    scenario = _scenario(args)
    if not args.order:
        raise OpplanError("give --order FILE (lines 'dev0: 0F0 0F1 ...') or use 'opplan baseline NAME'")
    text = read_user_file(args.order, "order file")
    # an order file numbers stages one per device (stage s on device s); no memory cap applies
    if scenario.is_uniform:
        problem = uniform_problem(scenario.devices, scenario.microbatches, scenario.f, scenario.b, scenario.w)
    else:
        problem = CONTIGUOUS.model_problem(scenario.model, scenario.cluster().with_memory(math.inf),
                                           scenario.microbatches)
    order = Order.from_text(text, "split")
    return _finish(args, make_plan(problem, order, Provenance(producer="order-file", schedule=Path(args.order).stem)))


def _simulate_torch_csv(args: argparse.Namespace) -> int:
    """A PyTorch schedule CSV: ranks, stages, M and the layout come from the file (flags may confirm them)."""
    from opplan.io.torch_order import read_schedule

    csv = read_schedule(args.order)
    for field, given, found in (("stages", args.stages, csv.ranks), ("devices", args.devices, csv.ranks),
                                ("microbatches", args.microbatches, csv.microbatches)):
        if given is not None and given != found:
            raise OpplanError(f"{field} {given} disagrees with {args.order}, which has {found}", field=field)
    layout = csv.layout()
    if layout is None:
        raise OpplanError(f"{args.order}: its stage->rank mapping {list(csv.placement)} follows no layout opplan "
                          "models (contiguous, interleaved, v)")
    if args.model is None:
        args.stages = csv.ranks
    else:
        args.devices = csv.ranks
    args.microbatches = csv.microbatches
    scenario = _scenario(args)
    # like an order file, a CSV is timed without a memory cap
    problem = (layout.uniform_problem(scenario.devices, scenario.microbatches, scenario.f, scenario.b, scenario.w)
               if scenario.is_uniform else
               layout.model_problem(scenario.model, scenario.cluster().with_memory(math.inf), scenario.microbatches))
    order = order_from_lists(problem, csv.lists)
    return _finish(args, make_plan(problem, order, Provenance(producer="torch-csv", schedule=Path(args.order).stem)))


def cmd_export(args: argparse.Namespace) -> int:
    """A saved plan as PyTorch's schedule CSV or as a Chrome trace (stdout, or --out)."""
    from opplan.io.chrome_trace import plan_trace, trace_json
    from opplan.io.torch_export import plan_to_torch_csv

    plan = load_plan(args.plan)
    text = plan_to_torch_csv(plan) if args.format == "torch-csv" else trace_json(plan_trace(plan))
    if args.out:
        _write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def _write_text(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as error:
        raise OpplanError(f"{path}: cannot write ({error.strerror})") from None


def cmd_run(args: argparse.Namespace) -> int:
    """A saved plan on PyTorch's pipeline runtime: gradients checked, predicted beside measured time."""
    from opplan.runtime import RunConfig, run_plan

    plan = load_plan(args.plan)
    config = RunConfig(ranks=args.ranks, hidden=args.hidden, rows=args.rows, layers_per_unit=args.layers_per_unit,
                       iterations=args.iterations)
    result = run_plan(plan, config)
    if args.trace:
        from opplan.io.chrome_trace import run_trace, trace_json

        _write_text(args.trace, trace_json(run_trace(result, [d.name for d in plan.problem.devices])))
    _emit(args, result.summary(), result.text())
    return 0 if result.gradients_match else EXIT_INVALID


def cmd_validate(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan)
    violations = validate(plan)
    _emit(args, report.validation_summary(plan, violations), report.validation_text(args.plan, plan, violations))
    return 0 if not violations else EXIT_INVALID


def cmd_baseline(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    return _finish(args, baselines.run_on(scenario, baselines.get(args.name).name))


def cmd_solve(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    return _finish(args, run_planner(scenario, _planner_options(args)))


def cmd_sweep(args: argparse.Namespace) -> int:
    from opplan.planner.sweep import sweep

    if (args.caps is None) == (args.caps_bytes is None):
        raise OpplanError("give the caps to sweep: --caps 4,5,6 (activation units) or --caps-bytes 40GB,60GB")
    if args.memory_cap is not None or args.memory_cap_activations is not None:
        raise OpplanError("a sweep takes its caps from --caps or --caps-bytes; drop --memory-cap and "
                          "--memory-cap-activations")
    unit, text = ("activations", args.caps) if args.caps is not None else ("bytes", args.caps_bytes)
    parts = [part for part in text.split(",") if part.strip()]
    if len(parts) > MAX_SWEEP_CAPS:
        raise OpplanError(f"a sweep takes at most {MAX_SWEEP_CAPS} caps (each is a full solve), got {len(parts)}",
                          field="memory_cap")
    caps = [MemoryCap.parse(part, unit) for part in parts]
    options = _planner_options(args)

    def show(point: Any) -> None:
        if options.log is not None:
            what = (f"bubble ratio {point.plan.metrics.bubble_ratio:.4f}" if point.plan is not None else point.error)
            options.log(f"cap {point.cap.values[0]:g}: {what}")

    rows = report.sweep_rows(sweep(_scenario(args), caps, options, on_point=show), unit)
    _emit(args, {"points": rows}, report.sweep_text(rows))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    names = [s.strip() for s in args.schedules.split(",") if s.strip()]
    schedules = [(name, None if name == "opplan" else baselines.get(name).name) for name in names]  # unknown: exit 2
    rows = []
    for name, schedule in schedules:
        try:
            plan = run_planner(scenario, _planner_options(args)) if schedule is None \
                else baselines.run_on(scenario, schedule)
            rows.append(report.plan_summary(plan))
        except OpplanError as error:     # e.g. DualPipe on an odd number of devices: a row, not a failure
            rows.append(report.not_applicable(name, str(error)))
    _emit(args, {"scenario": scenario.name, "rows": rows}, report.compare_text(rows))
    return 0


# --- the planner's live display ----------------------------------------------------------------
def _progress_printer(args: argparse.Namespace) -> tuple[Callable | None, Callable | None]:
    """A one-line progress display on stderr (stdout stays clean for --json)."""
    if getattr(args, "quiet", False):
        return None, None

    live = sys.stderr.isatty()

    def progress(p: Any) -> None:
        if math.isfinite(p.incumbent):
            line = f"  {p.seconds:6.1f}s  incumbent {p.incumbent:.6g}  bound {p.bound:.6g}"
            sys.stderr.write(f"\r{line}\x1b[K" if live else line + "\n")
            sys.stderr.flush()

    def log(message: str) -> None:
        sys.stderr.write(f"\r{message}\x1b[K\n" if live else message + "\n")
        sys.stderr.flush()

    return progress, log


def _planner_options(args: argparse.Namespace) -> PlannerOptions:
    progress, log = _progress_printer(args)
    return PlannerOptions(solver=args.solver, objective=args.objective, time_limit=args.time_limit,
                          mip_gap=args.gap, threads=args.threads, placement=args.placement,
                          makespan_limit=args.makespan_limit, progress=progress, log=log,
                          should_stop=_first_ctrl_c_stops())


def _first_ctrl_c_stops() -> Callable[[], bool]:
    """The first Ctrl-C asks the solver to stop and keep its best plan; a second one quits."""
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


# --- the parser ------------------------------------------------------------------------------
def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="opplan", description="Automatic operator-level parallelism planning.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help="operators, edges, cost per pass and parameter bytes of a model")
    _add_model_args(p, microbatches=False)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("simulate", help="time an order (per-device sequences) and check it")
    _add_model_args(p)
    p.add_argument("--order", help="order file: one line per device, 'dev0: 0F0 0F1 ... 0B0 0W0 ...', or a "
                                    "PyTorch schedule CSV (*.csv: one row per rank, P, M and layout read from it)")
    p.add_argument("--out", help="write the plan JSON here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("export", help="a saved plan as PyTorch's pipeline schedule CSV or a Chrome trace")
    p.add_argument("plan", help="plan JSON written by --out")
    p.add_argument("--format", required=True, choices=("torch-csv", "chrome-trace"),
                   help="torch-csv: one row per rank for torch.distributed.pipelining's _load_csv; "
                        "chrome-trace: JSON for chrome://tracing and Perfetto")
    p.add_argument("--out", help="write here (default: stdout)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("run", help="run a saved plan on PyTorch's pipeline runtime (needs opplan[torch]): "
                                   "gradients vs a single process, predicted vs measured time")
    p.add_argument("plan", help="plan JSON written by --out")
    p.add_argument("--ranks", type=int, help="CPU processes to start (default and only choice: the plan's devices)")
    p.add_argument("--hidden", type=int, default=64, help="width of the synthetic model's Linear layers (default 64)")
    p.add_argument("--rows", type=int, default=8, help="rows of one micro-batch (default 8)")
    p.add_argument("--layers-per-unit", type=float, default=2.0,
                   help="Linear layers per unit of a stage's forward time (default 2, so a V-shaped plan's half "
                        "stages get one each; at least one per stage)")
    p.add_argument("--iterations", type=int, default=5, help="timed iterations; the median is reported (default 5)")
    p.add_argument("--trace", help="write the measured median iteration here as a Chrome trace")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=cmd_run)

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

    p = sub.add_parser("sweep", help="opplan at several memory caps, each plan a warm start for the looser caps")
    _add_scenario_args(p)
    _add_planner_args(p)
    p.add_argument("--caps", help="caps in activation units, one per point, e.g. 4,5,6,7,8,9 (each for every device)")
    p.add_argument("--caps-bytes", help="caps in bytes, one per point, e.g. 50GB,60GB,70GB (each for every device)")
    p.set_defaults(func=cmd_sweep)

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
        if getattr(args, "out", None):
            check_writable(args.out, "plan")      # before any work, not after a long solve
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except OpplanError as error:
        sys.stderr.write(f"opplan: error: {error_line(error, args)}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("opplan: interrupted\n")
        return 130
    except BrokenPipeError:
        # the reader went away (``opplan info ... | head -1``): stop quietly, and keep Python
        # from failing again when it flushes stdout at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.stderr.write("opplan: error: output closed before it was all written (broken pipe)\n")
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
