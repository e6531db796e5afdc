"""Stages split into units: compute runs merge, every communication operator is its own unit on
the communication stream; hand-designed programs expand to unit chains; pairs interleave best."""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from opplan.actions import ComputeTask, Pass
from opplan.baselines.operator_level import _merge, _pair_length, best_interleaving, unit_steps
from opplan.cluster import uniform_cluster
from opplan.errors import OpplanError
from opplan.granularity import split_units
from opplan.graph import load_model
from opplan.layout import CONTIGUOUS, MIRRORED
from opplan.problem import COMM_STREAM, COMPUTE_STREAM
from opplan.scenario import Scenario

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"
DEEPSEEK = load_model(SAMPLES / "deepseek_v3_moe.json")


def test_an_moe_layer_becomes_compute_dispatch_compute_combine():
    """Attention and router, dispatch, the routed experts, combine; the shared expert is a branch
    beside the routed path, so it comes last and merges with the next layer's attention."""
    layer = [op.id for op in DEEPSEEK.operators if op.layer == 1]
    units = split_units(DEEPSEEK, layer, "operator")
    streams = [stream for _, stream in units]
    assert streams == [COMPUTE_STREAM, COMM_STREAM, COMPUTE_STREAM, COMM_STREAM, COMPUTE_STREAM]
    two_layers = split_units(DEEPSEEK, layer + [op.id for op in DEEPSEEK.operators if op.layer == 2], "operator")
    assert len(two_layers) == 9
    assert sorted(op for ops, _ in units for op in ops) == sorted(layer)
    assert all(DEEPSEEK.operator(ops[0]).kind == "communication" for ops, s in units if s == COMM_STREAM)


def test_stage_granularity_is_one_unit_and_layer_granularity_cuts_at_layers():
    ops = [op.id for op in DEEPSEEK.operators if op.layer in (1, 2)]
    assert split_units(DEEPSEEK, ops, "stage") == [(sorted(ops, key=DEEPSEEK.topological_order().index),
                                                    COMPUTE_STREAM)]
    by_operator = split_units(DEEPSEEK, ops, "operator")
    by_layer = split_units(DEEPSEEK, ops, "layer")
    assert len(by_layer) >= len(by_operator)
    for unit_ops, _ in by_layer:
        assert len({DEEPSEEK.operator(o).layer for o in unit_ops}) == 1


@pytest.mark.parametrize("layout", [CONTIGUOUS, MIRRORED], ids=["contiguous", "mirrored"])
def test_unit_problems_keep_the_work_and_the_layout(layout):
    cluster = uniform_cluster(8, accelerator="H20")
    stage = layout.model_problem(DEEPSEEK, cluster, 20)
    units = layout.model_problem(DEEPSEEK, cluster, 20, granularity="operator")
    assert units.is_unit_level and not stage.is_unit_level
    assert units.num_layout_stages == stage.num_stages and layout.matches(units)
    for s, st in enumerate(stage.stages):
        members = [units.stages[u] for u in units.units_of(s)]
        assert {m.device for m in members} == {st.device}
        for field in ("forward", "input_grad", "weight_grad", "activation_bytes", "param_bytes"):
            assert sum(getattr(m, field) for m in members) == pytest.approx(getattr(st, field))
    graph = nx.DiGraph([(e.src, e.dst) for e in units.edges])
    assert nx.is_directed_acyclic_graph(graph)
    assert sum(s.stream == COMM_STREAM for s in units.stages) == sum(
        op.kind == "communication" for op in DEEPSEEK.operators) * (2 if layout == MIRRORED else 1)


def test_granularity_is_checked():
    with pytest.raises(OpplanError, match="granularity must be one of"):
        Scenario.from_options(DEEPSEEK, devices=8, microbatches=20, granularity="atoms")
    with pytest.raises(OpplanError, match="uniform pipeline") as error:
        Scenario.from_options(None, stages=8, microbatches=20, granularity="operator")
    assert error.value.field == "granularity"


def test_a_stage_pass_expands_to_its_unit_chain():
    problem = CONTIGUOUS.model_problem(DEEPSEEK, uniform_cluster(8, accelerator="H20"), 4, granularity="operator")
    units = problem.units_of(0)
    forward = unit_steps(problem, ComputeTask(0, Pass.FORWARD, 3))
    backward = unit_steps(problem, ComputeTask(0, Pass.FULL_BACKWARD, 3))
    assert [t.stage for _, t, _ in forward] == list(units)
    assert [t.stage for _, t, _ in backward] == list(reversed(units))
    assert all(t.microbatch == 3 for _, t, _ in forward + backward)
    assert {r for r, _, _ in forward} == {"dev0", "dev0.comm"}


def test_the_best_interleaving_hides_one_chains_communication_under_the_others_compute():
    """F: compute 2, all-to-all 2, compute 2; B: all-to-all 2, compute 2, all-to-all 2. With F's
    units first on both streams the pair takes 10; interleaved, each all-to-all hides under the
    other's compute and the pair takes 6, the compute stream's own load."""
    f = [("d", ComputeTask(0, Pass.FORWARD, 0), 2.0), ("c", ComputeTask(1, Pass.FORWARD, 0), 2.0),
         ("d", ComputeTask(2, Pass.FORWARD, 0), 2.0)]
    b = [("c", ComputeTask(5, Pass.INPUT_GRAD, 1), 2.0), ("d", ComputeTask(4, Pass.INPUT_GRAD, 1), 2.0),
         ("c", ComputeTask(3, Pass.INPUT_GRAD, 1), 2.0)]
    assert _pair_length(_merge(f, b, (0,) * 3 + (1,) * 3)) == 10
    best = best_interleaving(f, b)
    assert _pair_length(_merge(f, b, best)) == 6


UNIFORM_MOE = load_model(SAMPLES / "uniform_moe_8.json")


@pytest.mark.parametrize("name", ["gpipe", "1f1b", "zb-h1", "zb-h2", "dualpipe", "interleaved-1f1b", "zb-v",
                                  "dualpipev"])
def test_every_baseline_runs_at_operator_level_and_validates(name):
    from opplan import baselines

    scenario = Scenario.from_options(UNIFORM_MOE, devices=4, microbatches=8, granularity="operator")
    plan = baselines.run_on(scenario, name)
    assert plan.valid, plan.violations[:3]
    assert plan.problem.is_unit_level and plan.problem.has_comm_streams
    assert any(t.resource.endswith(".comm") for t in plan.tasks)


def test_dualpipe_gains_from_its_overlapped_pairs_at_operator_level():
    """At stage level an all-to-all blocks its device; at operator level DualPipe's pairs hide
    some of it, so the same program finishes sooner."""
    from opplan import baselines

    stage = baselines.run_on(Scenario.from_options(UNIFORM_MOE, devices=8, microbatches=20), "dualpipe")
    unit = baselines.run_on(Scenario.from_options(UNIFORM_MOE, devices=8, microbatches=20,
                                                  granularity="operator"), "dualpipe")
    assert unit.valid and unit.metrics.makespan < stage.metrics.makespan
    assert max(unit.metrics.exposed_communication) > 0


@pytest.mark.solver
def test_operator_level_planning_is_never_worse_than_stage_level():
    from opplan.planner.api import PlannerOptions, solve

    results = {}
    for granularity in ("stage", "operator"):
        scenario = Scenario.from_options(UNIFORM_MOE, devices=4, microbatches=8, granularity=granularity)
        results[granularity] = solve(scenario, PlannerOptions(time_limit=10))
        assert results[granularity].valid
    assert results["operator"].metrics.makespan <= results["stage"].metrics.makespan + 1e-9


def test_no_stage_level_plan_beats_the_whole_stage_floor():
    """The uniform MoE: 8 stages of 10 units of work each (all-to-all included) and 20
    micro-batches on 8 devices, so some device carries at least 200 at stage level."""
    from opplan import baselines
    from opplan.planner.api import whole_stage_floor

    scenario = Scenario.from_options(UNIFORM_MOE, devices=8, microbatches=20)
    assert whole_stage_floor(scenario) == 200
    for name in ("1f1b", "zb-h1", "dualpipe"):
        assert baselines.run_on(scenario, name).metrics.makespan >= 200
    small = Scenario.from_options(DEEPSEEK, devices=4, microbatches=8)
    for name in ("1f1b", "zb-h1", "dualpipe", "zb-v"):
        assert baselines.run_on(small, name).metrics.makespan >= whole_stage_floor(small) - 1e-9


@pytest.mark.solver
def test_operator_level_skips_whole_stages_when_they_cannot_win():
    """On the uniform MoE, DualPipe at operator level (169 with its all-to-all overlapped) already
    beats every whole-stage plan (at least 200), so the time goes to the units."""
    from opplan import baselines
    from opplan.planner.api import PlannerOptions, solve

    scenario = Scenario.from_options(UNIFORM_MOE, devices=8, microbatches=20, granularity="operator")
    scenario = scenario.with_caps(max(baselines.run_on(scenario, "dualpipe").metrics.peak_memory_bytes))
    said: list[str] = []
    plan = solve(scenario, PlannerOptions(time_limit=6, placement="mirrored", log=said.append))
    assert any(line.startswith("stage level: skipped") for line in said), said[:5]
    assert plan.valid and plan.metrics.makespan <= 169
