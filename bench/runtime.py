"""Predicted against measured iteration time on PyTorch's pipeline runtime (2 gloo CPU ranks, one
thread each), for 1F1B, ZB-H1 and opplan's plan on the same synthetic model.

    python bench/runtime.py [--runs 5] [--microbatches 8] [--hidden 512] [--rows 64] [--layers 4]

Each run calibrates first (task times and link latency measured while running the schedule),
predicts (the simulator re-times the plan's own order with those times), then times one iteration;
a schedule's prediction and measurement are the medians of ``--runs`` such runs. Targets: every
prediction within 15 % of the measurement, and the ranking by prediction equal to the ranking by
measurement. Needs the torch extra.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from opplan import baselines
from opplan.io.torch_export import export_blocker
from opplan.planner.api import PlannerOptions, solve
from opplan.runtime import RunConfig, run_plans
from opplan.scenario import Scenario

TARGET = 0.15


def opplan_plan(scenario: Scenario):
    """The planner's best plan among the placements PyTorch's runtime can hold."""
    plans = [solve(scenario, PlannerOptions(placement=p, time_limit=20, threads=1)) for p in ("contiguous", "v")]
    plans = [p for p in plans if p.valid and export_blocker(p) is None]
    return min(plans, key=lambda p: p.makespan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--microbatches", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--layers", type=float, default=4.0, help="Linear layers per device's share of the model")
    args = parser.parse_args()

    scenario = Scenario(devices=2, microbatches=args.microbatches)
    plans = [baselines.run_on(scenario, "1f1b"), baselines.run_on(scenario, "zb-h1"), opplan_plan(scenario)]
    config = RunConfig(ranks=2, hidden=args.hidden, rows=args.rows, layers_per_unit=args.layers,
                       calibration_iterations=2, iterations=1)
    predicted: dict[int, list[float]] = {i: [] for i in range(len(plans))}
    measured: dict[int, list[float]] = {i: [] for i in range(len(plans))}
    worst_grad = 0.0
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    for run in range(args.runs):
        # each run starts with a different schedule, so none is always timed first or last
        turn = [(run + k) % len(plans) for k in range(len(plans))]
        for i, result in zip(turn, run_plans([plans[i] for i in turn], config)):
            predicted[i].append(result.predicted_ms)
            measured[i].append(result.measured_ms)
            worst_grad = max(worst_grad, result.max_grad_diff)
    print(f"2 ranks (gloo, CPU, 1 thread each), M={args.microbatches}, hidden {args.hidden}, {args.rows} rows per "
          f"micro-batch, {args.layers:g} Linear layers per device share, float64; medians of {args.runs} runs "
          f"({time.perf_counter() - began:.0f} s; 1-minute load average {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores)\n")
    print("| schedule | layout | planned makespan (F=B=W=1) | predicted ms | measured ms | error | within 15 % |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for i, plan in enumerate(plans):
        p, m = statistics.median(predicted[i]), statistics.median(measured[i])
        error = (p - m) / m
        rows.append((plan.provenance.schedule, p, m))
        layout = plan.provenance.placement or baselines.get(plan.provenance.schedule).layout.name
        print(f"| {plan.provenance.schedule} | {layout} | {plan.makespan:g} | {p:.1f} | {m:.1f} | {error:+.1%} | "
              f"{'yes' if abs(error) <= TARGET else 'no'} |")
    by_prediction = [name for name, _, _ in sorted(rows, key=lambda r: r[1])]
    by_measurement = [name for name, _, _ in sorted(rows, key=lambda r: r[2])]
    print(f"\nranking by prediction:  {' < '.join(by_prediction)}")
    verdict = "matches" if by_prediction == by_measurement else "DIFFERS"
    print(f"ranking by measurement: {' < '.join(by_measurement)}  ({verdict})")
    print(f"max |gradient - single-process reference| over every run: {worst_grad:.3g}")


if __name__ == "__main__":
    main()
