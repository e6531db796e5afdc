"""Simulate and validate plans of >= 100,000 tasks; prints tasks per second (goal: < 1 s per 100k).

    python bench/simulate.py

The "+comm" row is a problem with communication streams: every device runs a compute stage then
an all-to-all stage on its comm stream, which the order leaves first come, first served. The
"op-level" row is a real operator-level plan: 1F1B on the DeepSeek-V3 MoE sample at operator
granularity (all-to-alls on comm streams, fences between chunks, every backward a B+W block).
The "simulate+validate" column is build + simulate + validate: what ``make_plan`` pays for them.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from opplan import baselines
from opplan.graph import load_model
from opplan.metrics import compute_metrics
from opplan.problem import COMM_STREAM, DeviceSpec, Problem, Stage, StageEdge, uniform_problem
from opplan.scenario import Scenario
from opplan.schedule import Order, Plan, order_from_lists
from opplan.simulate import simulate
from opplan.tasks import build_task_graph
from opplan.validate import validate


def one_f_one_b_like(P: int, M: int) -> list[list[str]]:
    """A simple valid order: warm-up forwards, then alternate B/W with the remaining forwards."""
    lists = []
    for s in range(P):
        warm = min(P - s, M)
        seq = [f"{s}F{m}" for m in range(warm)]
        for m in range(M):
            seq += [f"{s}B{m}", f"{s}W{m}"]
            if warm + m < M:
                seq.append(f"{s}F{warm + m}")
        lists.append(seq)
    return lists


def streams_problem(P: int, M: int) -> Problem:
    """Stage 2d computes on device d, stage 2d+1 is its all-to-all on d's comm stream; the next
    device's compute receives it over a link."""
    stages = []
    for d in range(P):
        stages += [Stage(f"c{d}", d, 1.0, 1.0, 1.0), Stage(f"a2a{d}", d, 0.5, 0.5, 0.0, stream=COMM_STREAM)]
    edges = [StageEdge(s, s + 1, 1.0, 0.0 if s % 2 == 0 else 0.25) for s in range(2 * P - 1)]
    return Problem(tuple(stages), tuple(edges), tuple(DeviceSpec(f"dev{d}", 4.0 * P) for d in range(P)), M)


def streams_order(P: int, M: int) -> list[list[str]]:
    """1F1B on the compute stages (stage 2d on device d); the all-to-alls go first come, first served."""
    return [[re.sub(r"^\d+", lambda x: str(2 * int(x.group())), e) for e in seq] for seq in one_f_one_b_like(P, M)]


SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


def operator_level(M: int, model: str = "deepseek_v3_moe", schedule: str = "1f1b") -> tuple[Problem, Order]:
    """A baseline's plan at operator granularity on a sample model (8 devices): its problem and order."""
    scenario = Scenario.from_options(load_model(SAMPLES / f"{model}.json"), devices=8, microbatches=M,
                                     granularity="operator")
    plan = baselines.run_on(scenario, schedule)
    return plan.problem, plan.order


def run(P: int, M: int, repeats: int = 3, kind: str = "uniform") -> dict[str, float]:
    if kind == "comm":
        problem = streams_problem(P, M)
        order = order_from_lists(problem, streams_order(P, M))
    elif kind == "op-level":
        problem, order = operator_level(M)
    else:
        problem = uniform_problem(P, M, memory_units=P)   # a finite cap, so the memory rule runs too
        order = order_from_lists(problem, one_f_one_b_like(P, M))
    best = {"build": 1e9, "simulate": 1e9, "metrics": 1e9, "validate": 1e9}
    for _ in range(repeats):
        t0 = time.perf_counter()
        tg = build_task_graph(problem, order.backward)
        t1 = time.perf_counter()
        tasks = simulate(problem, order, tg)
        t2 = time.perf_counter()
        metrics = compute_metrics(problem, tasks)
        t3 = time.perf_counter()
        violations = validate(Plan(problem, order, tasks, metrics))
        t4 = time.perf_counter()
        assert not violations, violations[:3]
        for key, dt in zip(best, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            best[key] = min(best[key], dt)
    best["tasks"] = len(tasks)
    return best


def main() -> None:
    print("| P | M | tasks | build task graph s | simulate s | metrics s | validate s | simulate+validate s | tasks/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for P, M, kind in ((8, 512, "uniform"), (16, 2100, "uniform"), (32, 1100, "uniform"), (8, 1650, "comm"),
                       (8, 410, "op-level")):
        r = run(P, M, kind=kind)
        total = r["build"] + r["simulate"] + r["validate"]
        label = {"comm": f"{P} +comm", "op-level": f"{P} op-level"}.get(kind, str(P))
        print(f"| {label} | {M} | {r['tasks']} | {r['build']:.3f} | {r['simulate']:.3f} | {r['metrics']:.3f} | "
              f"{r['validate']:.3f} | {total:.3f} | {r['tasks'] / total:,.0f} |")


if __name__ == "__main__":
    main()
