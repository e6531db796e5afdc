"""Lower bounds on uniform_moe_8 at operator level, DualPipe's mirrored layout, P = 8, M = 20, cap 9 activation units.

    python bench/uniform_moe_bound.py                          # device 3 alone: makespan <= 147? <= 156?
    python bench/uniform_moe_bound.py --horizons 140 147 --devices 3 4 --cpsat-seconds 30

Every device computes 120 units, so compute idle = makespan - 120. Rows: the analytic bound
(``bounds.py``); CP-SAT minimising one device's relaxation (others as pure delays) for
``--cpsat-seconds``; and the time-indexed feasibility MIP of that relaxation asked "a plan of length
<= T?" for each horizon T: "infeasible" proves every plan of the problem is longer than T.

Measured (2026-11-25, 2 cores shared with other work, HiGHS, device 3): T = 140, 147, 150, 154, 155
and 156 infeasible in 92, 209-358, 352, 147, 189 and 429 s; T = 158 feasible in 21 s (as it must be:
CP-SAT and the LNS have plans of 158). So every plan takes at least 157 (compute idle 37), and the
LNS (``bench/cpsat_operator_level.py --engine lns``) finds valid plans of 157: optimal.
CP-SAT minimising the same relaxation proved only 104 in 30 s: its interval model's bound is weak.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from opplan import baselines
from opplan.graph import load_model
from opplan.planner.bounds import problem_lower_bound
from opplan.planner.relaxation import device_bound, device_fits_mip
from opplan.scenario import Scenario
from opplan.units import MemoryCap

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizons", type=float, nargs="*", default=[147.0, 156.0])
    parser.add_argument("--devices", type=int, nargs="*", default=[3])
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds per MIP decision")
    parser.add_argument("--cpsat-seconds", type=float, default=0.0, help="0: skip the CP-SAT minimisation rows")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = load_model(ROOT / "sample_models" / "uniform_moe_8.json")
    scenario = Scenario.from_options(model, devices=8, microbatches=20, granularity="operator",
                                     memory_cap=MemoryCap((9,), "activations"))
    problem = baselines.run_on(scenario, "dualpipe").problem
    began = time.perf_counter()
    analytic = problem_lower_bound(problem)
    print("| relaxation | question | answer | bound (idle) | seconds |")
    print("|---|---|---|---|---|")
    print(f"| analytic (heads, tails, one machine) | - | - | {analytic:g} ({analytic - 120:g}) | "
          f"{time.perf_counter() - began:.1f} |")
    best = analytic
    for d in args.devices:
        if args.cpsat_seconds > 0:
            found = device_bound(problem, d, args.cpsat_seconds, horizon=160, workers=args.threads)
            print(f"| device {d} alone, CP-SAT minimisation | least makespan | {found.status} | "
                  f"{found.value:g} ({found.value - 120:g}) | {found.seconds:.1f} |")
            best = max(best, found.value)
        for T in args.horizons:
            answer, seconds = device_fits_mip(problem, d, T, args.time_limit, args.threads)
            proven = T + 1 if answer == "infeasible" else None
            if proven is not None:
                best = max(best, proven)
            print(f"| device {d} alone, time-indexed MIP | plan of length <= {T:g}? | {answer} | "
                  f"{'-' if proven is None else f'{proven:g} ({proven - 120:g})'} | {seconds:.1f} |", flush=True)
    print(f"proven: every plan has makespan >= {best:g}, compute idle >= {best - 120:g} per device")


if __name__ == "__main__":
    main()
