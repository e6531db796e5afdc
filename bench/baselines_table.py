"""Published bubble and memory formulas beside our simulated values, in the style of DualPipe's
README table. Usage: python bench/baselines_table.py [P M F B W FB]   (default 8 20 1 1 1 3)."""
from __future__ import annotations

import sys

from opplan import baselines


def fmt(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:g}" if abs(hi - lo) < 1e-9 else f"{hi:g} … {lo:g}"


def table(P: int = 8, M: int = 20, F: float = 1, B: float = 1, W: float = 1, FB: float = 3) -> str:
    rows = [f"P = {P} devices, M = {M} micro-batches, F = {F:g}, B = {B:g}, W = {W:g}, F&B = {FB:g} "
            "(activations in units of one micro-batch of one P-way stage)", "",
            "| schedule | published bubble | simulated bubble per device | published activations | "
            "simulated peak activations | parameters | makespan | bubble ratio | valid |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name in baselines.NAMES:
        schedule = baselines.get(name)
        plan = baselines.run(name, schedule.uniform_problem(P, M, F, B, W, fb=FB))
        m = plan.metrics
        rows.append(f"| {schedule.title} | {schedule.published.bubble} | {fmt(m.bubble)} | "
                    f"{schedule.published.memory} | {fmt(m.peak_activations)} | {schedule.published.params} | "
                    f"{m.makespan:g} | {m.bubble_ratio:.3f} | {'yes' if plan.valid else 'NO'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    args = [float(a) for a in sys.argv[1:]]
    if args:
        print(table(int(args[0]), int(args[1]), *args[2:]))
    else:
        print(table())
