"""The planner's targets (issue 4), printed as tables beside 1F1B, ZB-H1 and DualPipe.

    python bench/planner.py            # all cases (a few minutes on 2 cores)
    python bench/planner.py --quick    # the three P=8 targets only
    python bench/planner.py --sweep    # placement × cap × engine at P=8, M=20 (about 36 runs of --limit s)

Uniform F = B = W = 1, P = 8, M = 20, 2 threads, open-source solver (HiGHS; Gurobi's free licence
is far too small for these models), time limit 60 s each; P = 16, M = 64 and the sample models at
120 s. "opplan (MIP only)" warm-starts from the baselines alone, to show what the MIP proves
without the list-scheduling heuristic.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from opplan import baselines
from opplan.errors import OpplanError
from opplan.graph import load_model
from opplan.planner.api import PlannerOptions, solve
from opplan.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("1f1b", "zb-h1", "dualpipe")


def fmt(values, digits=4):
    if values is None:
        return "–"
    uniq = sorted(set(round(v, 6) for v in values))
    return f"{uniq[0]:.{digits}g}" if len(uniq) == 1 else f"{min(values):.{digits}g}…{max(values):.{digits}g}"


def row(name, p, seconds=None):
    m, prov = p.metrics, p.provenance
    gap = prov.gap
    return (f"| {name} | {fmt(m.bubble)} | {m.bubble_ratio:.4f} | {fmt(m.peak_activations)} | "
            f"{m.makespan:.6g} | {'–' if prov.lower_bound is None else f'{prov.lower_bound:g}'} | "
            f"{'–' if gap is None else f'{gap:.3f}'} | {'' if seconds is None else f'{seconds:.1f}'} | "
            f"{prov.placement or ''} {prov.status.value if prov.status else ''} | {'yes' if p.valid else 'NO (over the cap)'} |")


def case(title, scenario, placement, time_limit, mip_only=True):
    print(f"\n### {title}\n")
    print("| schedule | bubble per device | bubble ratio | peak activations | makespan | lower bound | gap | "
          "seconds | placement / status | fits the caps |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for b in BASELINES:
        try:
            print(row(b, baselines.run_on(scenario, b)))
        except OpplanError as error:
            print(f"| {b} | not applicable: {error} |||||||||")
    t = time.perf_counter()
    p = solve(scenario, PlannerOptions(placement=placement, time_limit=time_limit))
    print(row("opplan", p, time.perf_counter() - t))
    print(f"\nopplan: {p.provenance.solver_reason}")
    if mip_only:
        # the lower level alone, started from the placement's own hand-designed order (1F1B or
        # DualPipe), to show what the MIP finds and proves without the other warm starts
        from opplan.planner.lower import improve

        family = {"contiguous": "1f1b", "mirrored": "dualpipe"}[placement]
        warm = baselines.run_on(scenario, family)
        options = PlannerOptions(placement=placement, time_limit=time_limit)
        t = time.perf_counter()
        p = improve(warm.problem, warm, options, time_limit, placement)
        print(row(f"MIP from {family}", p, time.perf_counter() - t))
        print(f"\nMIP from {family}: {p.provenance.solver_reason}")


def cap_sweep(limit: float) -> None:
    """Placement × cap × engine, each run on its own (no seeds between caps), and the monotone
    sweep (each cap seeded with the tighter caps' plans) as the last column."""
    from opplan.planner.sweep import sweep
    from opplan.units import MemoryCap

    caps = [4, 5, 6, 7, 8, 9]
    print(f"\n### Cap sweep: P=8, M=20, F=B=W=1, {limit:g} s per run\n")
    print("| placement | cap | engine | bubble | lower bound (makespan) | gap | status | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for placement in ("mirrored", "contiguous"):
        for cap in caps:
            scenario = Scenario(8, 20, memory_caps=(cap,))
            for engine in ("highs", "cpsat", "auto"):
                t = time.perf_counter()
                try:
                    p = solve(scenario, PlannerOptions(placement=placement, time_limit=limit, solver=engine))
                except OpplanError as error:
                    print(f"| {placement} | {cap} | {engine} | {error} |||||", flush=True)
                    continue
                prov = p.provenance
                print(f"| {placement} | {cap} | {engine} | {max(p.metrics.bubble):g} | {prov.lower_bound:g} | "
                      f"{prov.gap:.3f} | {prov.status.value} | {time.perf_counter() - t:.1f} |", flush=True)
        points = sweep(Scenario(8, 20), [MemoryCap((c,)) for c in caps],
                       PlannerOptions(placement=placement, time_limit=limit))
        print(f"\nmonotone sweep ({placement}, auto, seeded): "
              + ", ".join(f"cap {pt.cap.values[0]:g} → {max(pt.plan.metrics.bubble):g}" if pt.plan else
                          f"cap {pt.cap.values[0]:g} → none" for pt in points) + "\n", flush=True)
        print("| placement | cap | engine | bubble | lower bound (makespan) | gap | status | seconds |")
        print("|---|---|---|---|---|---|---|---|")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sweep", action="store_true", help="the cap sweep table only")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per run in --sweep (default 60)")
    args = parser.parse_args()
    if args.sweep:
        cap_sweep(args.limit)
        return
    case("Target 1: P=8, M=20, DualPipe's placement (device r holds stages r and P-1-r), cap 9 units",
         Scenario(8, 20, memory_caps=(9,)), "mirrored", 60)
    case("Target 2: P=8, M=20, one stage per device, 1F1B's caps 8,7,...,1",
         Scenario(8, 20, memory_caps=(8, 7, 6, 5, 4, 3, 2, 1)), "contiguous", 60)
    case("Target 3: P=8, M=20, one stage per device, cap 8", Scenario(8, 20, memory_caps=(8,)), "contiguous", 60)
    if args.quick:
        return
    case("P=16, M=64, cap 16 units, placement chosen by the planner", Scenario(16, 64, memory_caps=(16,)), "auto",
         120, mip_only=False)
    # sample models at DualPipe's own peak memory (the comparison the product is about)
    for path, devices, micro in [(p, 4, 8) for p in sorted((ROOT / "sample_models").glob("*.json"))] + \
            [(ROOT / "sample_models" / "deepseek_v3_moe.json", 8, 20)]:
        model = load_model(path)
        scenario = Scenario(devices, micro, model=model)
        cap = max(baselines.run_on(scenario, "dualpipe").metrics.peak_memory_bytes)
        scenario = scenario.with_caps(cap)
        accelerator = scenario.accelerator or model.accelerator or "H100"
        case(f"{model.name} on {devices} × {accelerator}, M={micro}, cap = DualPipe's peak "
             f"({cap / 1e9:.4g} GB per device)", scenario, "auto", 120, mip_only=False)


if __name__ == "__main__":
    main()
