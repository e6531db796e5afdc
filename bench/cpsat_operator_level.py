"""CP-SAT at operator level: uniform_moe_8, DualPipe's mirrored layout, P = 8, M = 20, cap 9 activation units.

    python bench/cpsat_operator_level.py                  # 120 s, 2 workers, checkpoints 30/60/120 s
    python bench/cpsat_operator_level.py --seconds 60 --checkpoints 10 30 60
    python bench/cpsat_operator_level.py --engine lns     # the large-neighbourhood search (lns.py) instead

One CP-SAT run from DualPipe's plan; every solution's order is kept, and at each checkpoint the last
one found is re-timed and validated by ``make_plan``. Compute idle = makespan - a device's compute
busy time (max over devices). The bound is CP-SAT's (with the analytic bound as a floor). With
``--engine lns`` each accepted plan was re-timed and validated when found: a checkpoint shows the
best one by then (the LNS proves no bound).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from opplan import baselines
from opplan.graph import load_model
from opplan.planner.cpsat import solve_cpsat
from opplan.planner.lns import LnsStats, solve_lns
from opplan.scenario import Scenario
from opplan.simulate import make_plan
from opplan.units import MemoryCap

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--checkpoints", type=float, nargs="*", default=[30.0, 60.0, 120.0])
    parser.add_argument("--engine", choices=("cpsat", "lns"), default="cpsat")
    parser.add_argument("--seed", type=int, default=0, help="the LNS's neighbourhood choices")
    args = parser.parse_args()
    model = load_model(ROOT / "sample_models" / "uniform_moe_8.json")
    scenario = Scenario.from_options(model, devices=8, microbatches=20, granularity="operator",
                                     memory_cap=MemoryCap((9,), "activations"))
    warm = baselines.run_on(scenario, "dualpipe")
    if args.engine == "lns":
        _lns(warm, args)
        return
    run = solve_cpsat(warm.problem, warm, args.seconds, workers=args.workers, record=True)
    print(f"DualPipe: makespan {warm.metrics.makespan:g}, compute idle {max(warm.metrics.bubble):g}, "
          f"{len(warm.tasks)} tasks; CP-SAT status {run.status} after {run.seconds:.1f} s, "
          f"durations {'exact' if run.exact else 'rounded'}")
    print("| time (s) | makespan | compute idle (max) | peak activations (max) | valid | bound |")
    print("|---|---|---|---|---|---|")
    for limit in args.checkpoints:
        found = [(t, order) for t, order in run.snapshots if t <= limit]
        bound = max([b for t, _, b in run.trace if t <= limit] + [warm.metrics.lower_bound])
        plan = run.start or warm
        if found:
            candidate = make_plan(warm.problem, found[-1][1])
            if candidate.valid and candidate.metrics.makespan < plan.metrics.makespan:
                plan = candidate
        m = plan.metrics
        print(f"| {limit:g} | {m.makespan:g} | {max(m.bubble):g} | {max(m.peak_activations or [0]):g} | "
              f"{'yes' if plan.valid else 'NO'} | {bound:g} |")
    print(f"final: makespan {run.plan.metrics.makespan:g}, compute idle {max(run.plan.metrics.bubble):g}, "
          f"bound {max(run.bound, warm.metrics.lower_bound):g}")


def _lns(warm, args) -> None:
    stats = LnsStats()
    run = solve_lns(warm.problem, warm, args.seconds, workers=args.workers, seed=args.seed, stats=stats)
    print(f"DualPipe: makespan {warm.metrics.makespan:g}, compute idle {max(warm.metrics.bubble):g}, "
          f"{len(warm.tasks)} tasks; LNS after {run.seconds:.1f} s (steps tried {stats.tried}, "
          f"improving {stats.improved}, ties {stats.ties})")
    print("| time (s) | makespan | compute idle (max) | valid |")
    print("|---|---|---|---|")
    start = run.start or warm
    for limit in args.checkpoints:
        value = min([v for t, v, _ in run.trace if t <= limit] + [start.metrics.makespan])
        print(f"| {limit:g} | {value:g} | {value - max(warm.metrics.busy):g} | yes |")
    m = run.plan.metrics
    print(f"final: makespan {m.makespan:g}, compute idle {max(m.bubble):g}, valid {run.plan.valid}, "
          f"peak activations {max(m.peak_activations or [0]):g}")


if __name__ == "__main__":
    main()
