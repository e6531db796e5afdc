"""CP-SAT at operator level: uniform_moe_8, DualPipe's mirrored layout, P = 8, M = 20, cap 9 activation units.

    python bench/cpsat_operator_level.py                  # 120 s, 2 workers, checkpoints 30/60/120 s
    python bench/cpsat_operator_level.py --seconds 60 --checkpoints 10 30 60

One CP-SAT run from DualPipe's plan; every solution's order is kept, and at each checkpoint the last
one found is re-timed and validated by ``make_plan``. Compute idle = makespan - a device's compute
busy time (max over devices). The bound is CP-SAT's (with the analytic bound as a floor).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from opplan import baselines
from opplan.graph import load_model
from opplan.planner.cpsat import solve_cpsat
from opplan.scenario import Scenario
from opplan.simulate import make_plan
from opplan.units import MemoryCap

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--checkpoints", type=float, nargs="*", default=[30.0, 60.0, 120.0])
    args = parser.parse_args()
    model = load_model(ROOT / "sample_models" / "uniform_moe_8.json")
    scenario = Scenario.from_options(model, devices=8, microbatches=20, granularity="operator",
                                     memory_cap=MemoryCap((9,), "activations"))
    warm = baselines.run_on(scenario, "dualpipe")
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


if __name__ == "__main__":
    main()
