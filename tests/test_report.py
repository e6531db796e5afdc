"""What runs report: the plan summary's keys and text, the comparison and operator tables, and
infinity written as JSON null. The text is what users read and scripts parse: it must not drift."""
import json
import math
from pathlib import Path

from opplan import baselines, report
from opplan.graph import load_model, uniform_chain
from opplan.outputs import Provenance
from opplan.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
LLAMA = ROOT / "sample_models" / "llama2_7b.json"

SUMMARY_KEYS = ["schedule", "devices", "stages", "microbatches", "makespan", "bubble", "bubble_ratio", "exposed_communication",
                "peak_activations", "peak_activation_bytes", "peak_memory_bytes", "param_bytes", "memory_cap_bytes",
                "lower_bound", "valid", "violations"]


def test_summary_keys_and_null_for_no_cap():
    plan = baselines.run_on(Scenario(4, 8), "1f1b")
    summary = report.plan_summary(plan)
    assert list(summary) == SUMMARY_KEYS
    assert summary["memory_cap_bytes"] == [None] * 4            # no cap: JSON null, not Infinity
    assert json.loads(report.to_json(summary)) == summary
    assert "Infinity" not in report.to_json(summary)


def test_summary_carries_the_planners_verdict():
    plan = baselines.run_on(Scenario(4, 8), "1f1b")
    plan.provenance = Provenance(producer="mip", schedule="opplan", solver="highs", solver_reason="asked",
                                 status="optimal", gap=0.0, solve_seconds=1.5, placement="contiguous",
                                 lower_bound=math.inf, warm_start="1f1b")
    summary = report.plan_summary(plan)
    assert list(summary) == [*SUMMARY_KEYS, "placement", "status", "solver", "solver_reason", "gap", "solve_seconds"]
    assert summary["lower_bound"] is None and summary["status"] == "optimal" and "warm_start" not in summary
    text = report.plan_text(plan)
    assert "  solver        highs (asked)" in text and "  status        optimal, gap 0.0000, 1.50 s" in text
    assert "(lower bound inf)" in text


def test_plan_text_uniform_and_invalid():
    assert report.plan_text(baselines.run_on(Scenario(4, 8), "1f1b")) == (
        "1f1b: 4 devices, 4 stages, 8 micro-batches\n"
        "  makespan      33   (lower bound 27)\n"
        "  bubble ratio  0.2727\n"
        "  bubble        9 9 9 9\n"
        "  peak activ.   4 3 2 1  (activation units)\n"
        "  valid         yes")
    capped = report.plan_text(baselines.run_on(Scenario(4, 8, memory_caps=(3,)), "1f1b"))
    assert capped.endswith("  valid         NO\n    rule 6 (memory within each device's cap): "
                           "dev0 holds 4 B at time 3 (after 0F3 starts), cap 3 B")


def test_plan_text_on_a_model_shows_bytes_against_caps():
    text = report.plan_text(baselines.run_on(Scenario(4, 8, model=load_model(LLAMA)), "1f1b"))
    assert text.splitlines()[0] == "1f1b: 4 devices, 4 stages, 8 micro-batches"
    assert ("  peak memory   46.26 GB 39.60 GB 36.54 GB 31.87 GB  (params + activations; "
            "cap 80.00 GB 80.00 GB 80.00 GB 80.00 GB)") in text


def test_compare_table_with_a_schedule_that_does_not_apply():
    scenario = Scenario(3, 5)
    rows = [report.plan_summary(baselines.run_on(scenario, "1f1b")), report.not_applicable("dualpipe", "needs even P"),
            report.plan_summary(baselines.run_on(scenario, "interleaved-1f1b"))]
    assert report.compare_text(rows) == (
        "schedule             makespan  bubble ratio  max bubble  peak activ.   peak mem  valid\n"
        "1f1b                       21        0.2857           6            3     3 act.    yes\n"
        "dualpipe           not applicable: needs even P\n"
        "interleaved-1f1b           18        0.1667           3            5     5 act.    yes")


def test_info_table_and_totals():
    info = report.model_info(uniform_chain(3))
    assert info["num_operators"] == 3 and info["totals"]["forward_ms"] == 3 and info["accelerator"] is None
    assert report.info_text(info) == (
        "model uniform-3: 3 operators, 2 edges\n"
        "operator                 kind               F ms      B ms      W ms     activ.     params\n"
        "s0                       compute               1         1         1        1 B        0 B\n"
        "s1                       compute               1         1         1        1 B        0 B\n"
        "s2                       compute               1         1         1        1 B        0 B\n"
        "total                                          3         3         3        3 B        0 B")
    assert report.model_info(load_model(LLAMA), "A100")["accelerator"] == "A100"


def test_jsonable_replaces_every_infinity():
    value = {"a": math.inf, "b": [1.0, -math.inf, (2, math.inf)], "c": {"d": "inf"}}
    assert report.jsonable(value) == {"a": None, "b": [1.0, None, [2, None]], "c": {"d": "inf"}}


def test_models_in_abstract_units_read_in_activation_units_in_the_cli():
    """The uniform MoE stores 2 bytes per activation unit: its memory column reads "9 act.", not
    "18 B"; a real model stays in bytes, and an impossible cap is worded in the same units."""
    import pytest

    from opplan.errors import OpplanError
    from opplan.planner.api import PlannerOptions, solve
    from opplan.units import MemoryCap

    samples = Path(__file__).resolve().parents[1] / "sample_models"
    moe = Scenario.from_options(load_model(samples / "uniform_moe_8.json"), devices=8, microbatches=20,
                                granularity="operator")
    text = report.compare_text([report.plan_summary(baselines.run_on(moe, "dualpipe"))])
    assert "9 act." in text and " B " not in text
    deepseek = Scenario.from_options(load_model(samples / "deepseek_v3_moe.json"), devices=8, microbatches=20)
    assert "GB" in report.compare_text([report.plan_summary(baselines.run_on(deepseek, "1f1b"))])
    tiny = Scenario.from_options(load_model(samples / "uniform_moe_8.json"), devices=8, microbatches=20,
                                 memory_cap=MemoryCap((0.5,)))
    with pytest.raises(OpplanError, match=r"cap 0\.5 activation units but one micro-batch alone needs 1 activation unit"):
        solve(tiny, PlannerOptions(time_limit=2, placement="contiguous"))
