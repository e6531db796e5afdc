"""The model graph view (issue 12.7): a layered Graphviz drawing that groups repeated layers,
labels every node once, puts costs in tooltips, and colours operators by device once a plan exists."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from opplan import baselines
from opplan.graph import load_model, uniform_chain
from opplan.scenario import Scenario
from opplan.ui.plans import device_of_operators
from opplan.viz.dag import DEVICE_COLORS, dag_dot, unit_name

SAMPLES = Path(__file__).resolve().parents[1] / "sample_models"


def nodes(dot: str) -> list[str]:
    return re.findall(r"^\s*(n\d+|fold\d+) \[", dot, flags=re.M)


def labels(dot: str) -> list[str]:
    return re.findall(r'\[label="([^"]*)"', dot)


def test_unit_names_group_operators_by_layer():
    assert unit_name("L3.attn") == "L3" and unit_name("vision.L3") == "vision.L3"
    assert unit_name("inc3a.b2.3x3") == "inc3a" and unit_name("embed") == "embed"


def test_llama_folds_32_identical_layers_into_a_few_nodes_with_costs_on_hover():
    model = load_model(SAMPLES / "llama2_7b.json")
    dot = dag_dot(model)
    assert len(nodes(dot)) < 10, "66 operators in a line became a handful of nodes"
    assert "subgraph cluster_" in dot and 'label="L0"' in dot, "the first layer is shown in full, boxed"
    assert "L1 … L31\\n31 layers" in dot
    assert re.search(r'tooltip="L0\.attn \(compute\)&#10;F [\d.e+]+ · B', dot), "costs in the tooltip"


def test_small_dag_keeps_every_operator_and_its_branches():
    model = load_model(SAMPLES / "inception_dag.json")
    dot = dag_dot(model)
    assert len(nodes(dot)) == len(model.operators)
    assert dot.count("->") == len(model.edges)
    assert dot.count("subgraph cluster_") == 6, "one box per Inception block"


@pytest.mark.parametrize("sample", ["multimodal_vlm", "deepseek_v3_moe", "llama2_7b"])
def test_labels_inside_one_box_never_repeat(sample):
    dot = dag_dot(load_model(SAMPLES / f"{sample}.json"))
    for block in re.findall(r"subgraph cluster_\d+ \{(.*?)\n  \}", dot, flags=re.S):
        inside = labels(block)
        assert len(inside) == len(set(inside)), inside


def test_plan_colours_operators_by_device_and_folds_per_device():
    model = load_model(SAMPLES / "llama2_7b.json")
    plan = baselines.run_on(Scenario.from_options(model, devices=4, microbatches=8), "1f1b")
    device_of = device_of_operators(plan)
    assert set(device_of) == {op.id for op in model.operators} and set(device_of.values()) == {0, 1, 2, 3}
    dot = dag_dot(model, device_of)
    for d in range(4):
        assert f'fillcolor="{DEVICE_COLORS[d]}"' in dot
    assert len(nodes(dot)) < 14, "one folded run per device"
    assert "· dev0" in dot, "the tooltip names the device"


def test_uniform_chain_under_dualpipe_is_coloured_by_its_mirrored_placement():
    chain = uniform_chain(4)
    plan = baselines.run_on(Scenario(4, 8), "dualpipe")
    dot = dag_dot(chain, device_of_operators(plan))
    assert len(nodes(dot)) == 4 and f'fillcolor="{DEVICE_COLORS[0]}"' in dot
