"""Simulate and validate plans of >= 100,000 tasks; prints tasks per second (goal: < 1 s per 100k).

    python bench/simulate.py
"""
from __future__ import annotations

import time

from opplan.metrics import compute_metrics
from opplan.problem import uniform_problem
from opplan.schedule import Plan, order_from_lists
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


def run(P: int, M: int, repeats: int = 3) -> dict[str, float]:
    problem = uniform_problem(P, M, memory_units=P)   # a finite cap, so the memory rule runs too
    order = order_from_lists(problem, one_f_one_b_like(P, M))
    best = {"build": 1e9, "simulate": 1e9, "metrics": 1e9, "validate": 1e9}
    for _ in range(repeats):
        t0 = time.perf_counter()
        tg = build_task_graph(problem)
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
    for P, M in ((8, 512), (16, 2100), (32, 1100)):
        r = run(P, M)
        total = r["build"] + r["simulate"] + r["validate"]
        print(f"| {P} | {M} | {r['tasks']} | {r['build']:.3f} | {r['simulate']:.3f} | {r['metrics']:.3f} | "
              f"{r['validate']:.3f} | {total:.3f} | {r['tasks'] / total:,.0f} |")


if __name__ == "__main__":
    main()
