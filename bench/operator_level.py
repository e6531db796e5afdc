"""Operator-level planning beside the hand-designed schedules, at DualPipe's own memory.

    python bench/operator_level.py                 # MoE and VLM samples, every granularity, 120 s solves
    python bench/operator_level.py --quick         # 20 s solves
    python bench/operator_level.py --models uniform_moe_8

For each sample and granularity: DualPipe as implemented (chunks one after another, its all-to-all
overlapped only inside its F&B pairs, each pair interleaved at its best), the same order with the
all-to-all free to overlap everywhere, ZB-H1, 1F1B and opplan, all capped at DualPipe's peak memory
(as implemented) at that granularity; the freed order may exceed it ("fits" says). Bubble = compute
idle per device (max over devices); exposed communication = time a device's communication stream
is busy while its compute stream idles.
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
from opplan.simulate import make_plan
from opplan.units import counts_in_activation_units

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("uniform_moe_8", "deepseek_v3_moe", "multimodal_vlm")
SCHEDULES = ("dualpipe", "zb-h1", "1f1b")


def _peak(plan) -> str:
    """Peak memory in GB, or in activation units for a model written in abstract units."""
    if counts_in_activation_units(plan.problem):
        return f"{max(plan.metrics.peak_memory_bytes) / plan.problem.activation_unit_bytes:.4g} units"
    return f"{max(plan.metrics.peak_memory_bytes) / 1e9:.4g} GB"


def row(name: str, plan, seconds: float) -> str:
    m, prov = plan.metrics, plan.provenance
    exposed = max(getattr(m, "exposed_communication", None) or [0.0])
    gap = "–" if prov.gap is None else f"{prov.gap:.3f}"
    return (f"| {name} | {m.makespan:.5g} | {max(m.bubble):.5g} | {m.bubble_ratio:.3f} | {exposed:.4g} | "
            f"{_peak(plan)} | {gap} | {seconds:.1f} | {plan.problem.num_stages} | "
            f"{len(plan.tasks)} | {'yes' if plan.valid else 'NO'} |")


def case(model_name: str, granularity: str, devices: int, microbatches: int, time_limit: float) -> None:
    model = load_model(ROOT / "sample_models" / f"{model_name}.json")
    scenario = Scenario.from_options(model, devices=devices, microbatches=microbatches, granularity=granularity)
    try:
        cap = max(baselines.run_on(scenario, "dualpipe").metrics.peak_memory_bytes)
    except OpplanError as error:
        print(f"\n{model_name} at {granularity} level: DualPipe does not apply ({error})")
        return
    scenario = scenario.with_caps(cap)
    print(f"\n### {model_name}, {granularity} level: P={devices}, M={microbatches}, cap = DualPipe's peak "
          f"{_peak(baselines.run_on(scenario, 'dualpipe'))}\n")
    print("| schedule | iteration | max bubble | bubble ratio | max exposed comm | peak | gap | seconds | "
          "units | tasks | fits |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in SCHEDULES:
        began = time.perf_counter()
        try:
            plan = baselines.run_on(scenario, name)
        except OpplanError as error:
            print(f"| {name} | not applicable: {error} |||||||||")
            continue
        print(row(name, plan, time.perf_counter() - began))
        if plan.order.fences:       # the same order with its all-to-all free to overlap everywhere
            freed = make_plan(plan.problem, plan.order.without_fences())
            print(row(f"{name}, overlapped everywhere", freed, time.perf_counter() - began))
    began = time.perf_counter()
    plan = solve(scenario, PlannerOptions(time_limit=time_limit))
    print(row(f"opplan ({plan.provenance.placement})", plan, time.perf_counter() - began))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="20 s solves instead of 120 s")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--granularities", default="stage,layer,operator")
    args = parser.parse_args()
    for model_name in args.models.split(","):
        for granularity in args.granularities.split(","):
            case(model_name, granularity, 8, 20, 20.0 if args.quick else 120.0)


if __name__ == "__main__":
    main()
