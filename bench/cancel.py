"""How fast a cancel takes effect, per engine: the planner runs in a thread, a stop is requested
after a few seconds, and the table shows how long the planner took to return after it (target
≤ 2 s) and that the plan it returned is valid.

    python bench/cancel.py
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from opplan.graph import load_model
from opplan.planner.api import PlannerOptions, solve
from opplan.scenario import Scenario
from opplan.units import MemoryCap

ROOT = Path(__file__).resolve().parents[1]


def cases():
    moe = load_model(ROOT / "sample_models" / "uniform_moe_8.json")
    deepseek = load_model(ROOT / "sample_models" / "deepseek_v3_moe.json")
    yield "uniform P=16 M=64 cap 16, HiGHS", Scenario.from_options(stages=16, microbatches=64,
                                                                   memory_cap=MemoryCap((16,))), "highs"
    yield "uniform P=8 M=20 mirrored cap 4, CP-SAT", Scenario.from_options(stages=8, microbatches=20,
                                                                          memory_cap=MemoryCap((4,))), "cpsat"
    yield "uniform MoE, operator level, auto", Scenario.from_options(moe, devices=8, microbatches=20,
                                                                     granularity="operator",
                                                                     memory_cap=MemoryCap((9,))), "auto"
    yield "DeepSeek 16 layers, 8 devices, M=20, auto", Scenario.from_options(deepseek, devices=8,
                                                                             microbatches=20), "auto"


def main() -> None:
    print("| case | stop after | returned after the stop | status | valid |")
    print("|---|---|---|---|---|")
    for title, scenario, solver in cases():
        for after in (1.0, 5.0):
            flag = threading.Event()
            asked = [0.0]

            def stop() -> None:
                asked[0] = time.perf_counter()
                flag.set()

            timer = threading.Timer(after, stop)
            timer.start()
            plan = solve(scenario, PlannerOptions(solver=solver, time_limit=120, should_stop=flag.is_set))
            done = time.perf_counter()
            timer.cancel()
            latency = done - asked[0] if flag.is_set() else float("nan")
            print(f"| {title} | {after:g} s | {latency:.2f} s | {plan.provenance.status.value} | "
                  f"{'yes' if plan.valid else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
