"""Fences: waits across a device's streams that an order declares. Hand-designed schedules at
operator level run their chunks one after another, so a chunk's all-to-all holds up the next
chunk, except inside DualPipe's overlapped pairs; the simulator honours fences, the validator
checks them, plan files keep them, and the planner may lift them."""
from __future__ import annotations

from pathlib import Path

import pytest

from opplan import baselines
from opplan.errors import OpplanError
from opplan.graph import load_model
from opplan.planner.api import _without_fences
from opplan.scenario import Scenario
from opplan.schedule import Order, Plan
from opplan.simulate import DeadlockError, make_plan
from opplan.validate import validate

UNIFORM_MOE = load_model(Path(__file__).resolve().parents[1] / "sample_models" / "uniform_moe_8.json")
COMPUTE_PER_DEVICE = 120          # 20 micro-batches x (F + B + W) of two compute units


@pytest.fixture(scope="module")
def dualpipe() -> Plan:
    scenario = Scenario.from_options(UNIFORM_MOE, devices=8, microbatches=20, granularity="operator")
    return baselines.run_on(scenario, "dualpipe")


def test_dualpipe_as_implemented_leaves_54_idle_on_the_uniform_moe(dualpipe):
    """The exact figure for DualPipe whose all-to-all overlaps only inside its F&B pairs (each pair
    interleaved at its best) is 54 units of compute idle per device, at a peak of 9 activations."""
    assert dualpipe.valid, dualpipe.violations[:3]
    assert dualpipe.order.fences
    assert dualpipe.metrics.makespan == 174
    assert max(dualpipe.metrics.bubble) == 174 - COMPUTE_PER_DEVICE == 54
    assert max(dualpipe.metrics.peak_activations) == 9


def test_every_chunk_waits_for_the_one_before_it(dualpipe):
    by_name = {t.task: t for t in dualpipe.tasks}
    assert all(by_name[after].start >= by_name[before].end for before, after in dualpipe.order.fences)
    # a fence is binding somewhere: a chunk starts exactly when its predecessor's all-to-all ends
    assert any(by_name[after].start == by_name[before].end and by_name[before].resource.endswith(".comm")
               for before, after in dualpipe.order.fences)


def test_lifting_the_fences_overlaps_all_to_all_everywhere(dualpipe):
    freed = _without_fences(dualpipe)
    assert freed is not None and freed.valid and not freed.order.fences
    assert freed.metrics.makespan == 169 < dualpipe.metrics.makespan
    assert sum(freed.metrics.exposed_communication) < sum(dualpipe.metrics.exposed_communication)


def test_a_plan_that_breaks_a_fence_is_invalid(dualpipe):
    freed = _without_fences(dualpipe)
    claimed = Plan(dualpipe.problem, dualpipe.order, freed.tasks, freed.metrics)   # fenced order, freer times
    broken = [v for v in validate(claimed) if v.rule == 3]
    assert broken and "fence" in broken[0].message


def test_fences_survive_plan_files_and_order_text(dualpipe):
    again = Plan.from_dict(dualpipe.to_dict())
    assert again.order.fences == dualpipe.order.fences
    assert Order.from_text(dualpipe.order.to_text()) == dualpipe.order
    assert "fences" not in Order({"dev0": ("0F0",)}).to_dict()   # plans without fences keep their old form


@pytest.mark.parametrize("fences, message", [
    ([["0F0"]], r"fences\[0\] must be a \[before, after\] pair"),
    ("0F0<1F0", "must be a list of"),
    ([["0F0", ""]], "the task after"),
])
def test_malformed_fences_in_a_plan_file_name_the_field(fences, message):
    with pytest.raises(OpplanError, match=message):
        Order.from_dict({"sequences": {"dev0": ["0F0"]}, "fences": fences})


def test_a_fence_against_the_sequence_deadlocks_with_its_name():
    plan = baselines.run_on(Scenario.from_options(None, stages=2, microbatches=2), "1f1b")
    order = Order(plan.order.sequences, plan.order.backward, fences=(("0F1", "0F0"),))
    with pytest.raises(DeadlockError, match=r"0F1 \(fence\)"):
        make_plan(plan.problem, order)


def test_a_fence_naming_an_unknown_task_is_refused():
    plan = baselines.run_on(Scenario.from_options(None, stages=2, microbatches=2), "1f1b")
    with pytest.raises(OpplanError, match="unknown task '7F0'"):
        make_plan(plan.problem, Order(plan.order.sequences, plan.order.backward, fences=(("7F0", "0F0"),)))


def test_a_fence_inside_one_block_is_refused():
    plan = baselines.run_on(Scenario.from_options(None, stages=2, microbatches=2), "1f1b")
    with pytest.raises(OpplanError, match="two tasks of one block"):
        make_plan(plan.problem, Order(plan.order.sequences, "split", fences=(("0B0", "0W0"),)))
