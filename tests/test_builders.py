"""Model builders: the defaults rebuild the committed samples, other hyperparameters give valid
graphs of the expected size, and bad hyperparameters give one line naming the parameter."""
import ast
import importlib.util
import json
import math
from pathlib import Path

import networkx as nx
import pytest

from opplan.builders import FAMILIES, ModelBuilder, build_model
from opplan.builders.costs import passes
from opplan.errors import OpplanError
from opplan.graph import ModelGraph, parse_model_text

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_models"
SAMPLE_OF = {
    "uniform": "uniform_pipeline_8.json",
    "dense_transformer": "llama2_7b.json",
    "moe_transformer": "deepseek_v3_moe.json",
    "multimodal": "multimodal_vlm.json",
    "inception": "inception_dag.json",
    "uniform_moe": "uniform_moe_8.json",
}
VARIANTS = ["deepseek_v3_moe_8l_h20.json"]  # make_samples.py's non-default builds


@pytest.mark.parametrize("family, filename", SAMPLE_OF.items())
def test_defaults_rebuild_the_committed_sample(family, filename):
    committed = json.loads((SAMPLES / filename).read_text(encoding="utf-8"))
    committed.pop("scenario")   # make_samples.py adds the suggested scenario; the builder makes the model
    model = FAMILIES[family]()
    assert model == committed
    assert json.dumps(model, indent=1) == json.dumps(committed, indent=1)  # integers stay integers


def test_make_samples_writes_the_committed_files(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.HERE = tmp_path
    assert script.main() == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*SAMPLE_OF.values(), *VARIANTS])
    for filename in [*SAMPLE_OF.values(), *VARIANTS]:
        assert (tmp_path / filename).read_bytes() == (SAMPLES / filename).read_bytes(), filename
    out = capsys.readouterr().out
    assert "llama2-7b-like" in out and "MoE layer on H100 at 50 GB/s expert-parallel" in out


def moe_edges(layers, groups):
    # into each attn (1 from embed, then combine + shared), 3 + 2*groups inside a layer, 2 into head
    return 1 + 2 * (layers - 1) + layers * (3 + 2 * groups) + 2


SMALL_DENSE = dict(hidden=256, heads=4, ffn=688, vocab=1000, seq=128)
SMALL_MOE = dict(hidden=512, heads=8, q_lora=128, kv_lora=64, d_nope=32, d_rope=16, d_v=32, expert_ffn=256,
                 vocab=1000, seq=256)


@pytest.mark.parametrize("family, kwargs, n_ops, n_edges", [
    ("uniform", dict(stages=1), 1, 0),
    ("uniform", dict(stages=5, forward=2.5, input_grad=0, weight_grad=1), 5, 4),
    ("dense_transformer", dict(layers=1, **SMALL_DENSE), 2 * 1 + 2, 2 * 1 + 1),
    ("dense_transformer", dict(layers=7, **SMALL_DENSE), 2 * 7 + 2, 2 * 7 + 1),
    ("dense_transformer", dict(layers=80, hidden=8192, heads=64, ffn=28672), 2 * 80 + 2, 2 * 80 + 1),
    ("moe_transformer", dict(layers=1, experts=8, top_k=2, expert_groups=1, expert_parallel=1, **SMALL_MOE),
     1 * (5 + 1) + 2, moe_edges(1, 1)),
    ("moe_transformer", dict(layers=3, experts=64, top_k=6, expert_groups=8, expert_parallel=4, **SMALL_MOE),
     3 * (5 + 8) + 2, moe_edges(3, 8)),
    ("moe_transformer", dict(layers=61), 61 * (5 + 4) + 2, moe_edges(61, 4)),
    ("multimodal", dict(vision_layers=1, text_layers=1, decoder_layers=1), 1 + 1 + 1 + 4, 1 + 1 + 1 + 3),
    ("multimodal", dict(vision_layers=12, vision_hidden=768, vision_heads=12, vision_ffn=3072, image_size=224,
                        patch=16, text_layers=6, text_seq=256, decoder_layers=8), 12 + 6 + 8 + 4, 12 + 6 + 8 + 3),
    ("inception", dict(blocks=1), 8 * 1 + 2, 11 * 1 + 1),
    ("inception", dict(blocks=9, batch=4, classes=10), 8 * 9 + 2, 11 * 9 + 1),
])
def test_hyperparameters_give_a_valid_graph_of_the_expected_size(family, kwargs, n_ops, n_edges):
    model = FAMILIES[family](**kwargs)
    graph = parse_model_text(json.dumps(model), family)
    assert isinstance(graph, ModelGraph)
    assert (len(graph.operators), len(graph.edges)) == (n_ops, n_edges)
    assert nx.is_directed_acyclic_graph(graph.digraph)
    assert len(graph.topological_order()) == n_ops
    sources = [op.id for op in graph.operators if not graph.predecessors(op.id)]
    sinks = [op.id for op in graph.operators if not graph.successors(op.id)]
    assert len(sinks) == 1  # one loss at the end
    assert len(sources) == (2 if family == "multimodal" else 1)  # the two towers start apart
    assert build_model(family, **kwargs) == graph


def test_moe_all_to_all_carries_tokens_times_top_k_times_hidden_in_bf16_without_node_limit():
    model = FAMILIES["moe_transformer"](layers=2, experts=64, top_k=6, expert_groups=8, expert_parallel=4,
                                       dispatch_bytes=2, combine_bytes=2, max_nodes=None, **SMALL_MOE)
    volume = SMALL_MOE["seq"] * 6 * SMALL_MOE["hidden"] * 2
    comm = [op for op in model["operators"] if op["kind"] == "communication"]
    assert [op["id"] for op in comm] == ["L0.dispatch", "L0.combine", "L1.dispatch", "L1.combine"]
    assert all(op["bytes"] == passes(volume, volume, 0) for op in comm)


def test_moe_all_to_all_by_default_is_v3s_node_limited_fp8_dispatch_and_bf16_combine():
    model = FAMILIES["moe_transformer"](layers=1, experts=64, top_k=6, expert_groups=8, expert_parallel=4,
                                       **SMALL_MOE)
    copies = SMALL_MOE["seq"] * min(6, 4) * SMALL_MOE["hidden"]  # a token crosses to at most 4 nodes
    ops = {op["id"]: op for op in model["operators"]}
    assert ops["L0.dispatch"]["bytes"] == passes(copies * 1, copies * 2, 0)   # FP8 out, BF16 gradient back
    assert ops["L0.combine"]["bytes"] == passes(copies * 2, copies * 1, 0)


@pytest.mark.parametrize("family, kwargs, name, phrase", [
    ("dense_transformer", dict(layers=4), "dense-4l-4096h", "dense Llama-2-like decoder: 4 layers"),
    ("dense_transformer", dict(seq=2048), "llama2-7b-like", "dense Llama-2-7B-like decoder"),
    ("moe_transformer", dict(hidden=4096), "moe-16l-4096h-256e-top8", "DeepSeek-V3-like MoE, 16 layers:"),
    ("moe_transformer", dict(layers=3), "deepseek-v3-moe-3l", "DeepSeek-V3-like MoE, 3 of V3's 61 layers"),
    ("multimodal", dict(vision_layers=4), "vlm-4x1024-12x2048-16x4096", "multimodal: ViT/14 vision tower (4x1024"),
    ("multimodal", dict(vision_layers=12, vision_hidden=768, patch=16, image_size=224), "vlm-12x768-12x2048-16x4096",
     "ViT-B/16 vision tower (12x768, 196 patches)"),
    ("inception", dict(blocks=1), "inception-1-googlenet", "Inception blocks 3a (4 parallel"),
    ("uniform", dict(stages=3, forward=0.5), "uniform-3", "3 stages, F=0.5 B=1 W=1"),
    ("dense_transformer", dict(name="mine"), "mine", "Llama-2-7B-like"),
])
def test_names_and_descriptions_say_a_published_model_only_when_it_is_one(family, kwargs, name, phrase):
    model = FAMILIES[family](**kwargs)
    assert model["name"] == name
    assert phrase in model["description"]


def test_a_model_may_name_no_accelerator():
    assert "accelerator" not in FAMILIES["dense_transformer"](accelerator=None)
    assert build_model("inception", accelerator=None).accelerator is None


@pytest.mark.parametrize("family, kwargs, message", [
    ("dense_transformer", dict(layers=0), "layers must be a positive integer, got 0"),
    ("dense_transformer", dict(seq=1.5), "seq must be a positive integer, got 1.5"),
    ("dense_transformer", dict(heads=True), "heads must be a positive integer, got True"),
    ("dense_transformer", dict(vocab="32000"), "vocab must be a positive integer, got '32000'"),
    ("dense_transformer", dict(hidden=4100), "hidden must be a multiple of heads (32), got 4100"),
    ("dense_transformer", dict(accelerator="TPUv5"), "accelerator must be one of H100, A100, H20, Ascend910B"),
    ("dense_transformer", dict(name=""), "name must be a non-empty string"),
    ("moe_transformer", dict(top_k=300), "top_k must be at most experts (256), got 300"),
    ("moe_transformer", dict(experts=250), "experts must be a multiple of expert_groups (4), got 250"),
    ("moe_transformer", dict(seq=4097, top_k=1), "seq * top_k must be a multiple of expert_groups (4)"),
    ("moe_transformer", dict(expert_parallel=128), "expert_parallel must be at most experts / expert_groups (64)"),
    ("moe_transformer", dict(expert_groups=-4), "expert_groups must be a positive integer, got -4"),
    ("moe_transformer", dict(dispatch_bytes=0), "dispatch_bytes must be a positive integer, got 0"),
    ("moe_transformer", dict(combine_bytes=1.5), "combine_bytes must be a positive integer, got 1.5"),
    ("moe_transformer", dict(max_nodes=0), "max_nodes must be a positive integer, got 0"),
    ("uniform_moe", dict(stages=0), "stages must be a positive integer, got 0"),
    ("uniform_moe", dict(name=" "), "name must be a non-empty string"),
    ("multimodal", dict(image_size=330), "image_size must be a multiple of patch (14), got 330"),
    ("multimodal", dict(text_hidden=2050), "text_hidden must be a multiple of text_heads (16), got 2050"),
    ("multimodal", dict(decoder_layers=0), "decoder_layers must be a positive integer, got 0"),
    ("inception", dict(blocks=10), "blocks must be at most GoogLeNet's Inception blocks (9), got 10"),
    ("inception", dict(batch=0), "batch must be a positive integer, got 0"),
    ("uniform", dict(stages=0), "stages must be a positive integer, got 0"),
    ("uniform", dict(forward=-1), "forward must be a finite non-negative number, got -1"),
    ("uniform", dict(weight_grad=math.nan), "weight_grad must be a finite non-negative number, got nan"),
])
def test_bad_hyperparameters_raise_one_line_naming_the_parameter(family, kwargs, message):
    with pytest.raises(OpplanError) as caught:
        FAMILIES[family](**kwargs)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_build_model_names_an_unknown_family_or_hyperparameter():
    with pytest.raises(OpplanError, match="model family must be one of uniform, dense_transformer"):
        build_model("rnn")
    with pytest.raises(OpplanError, match="dense_transformer: unknown hyperparameter 'experts'"):
        build_model("dense_transformer", experts=8)


def test_an_operator_needs_exactly_one_cost():
    m = ModelBuilder("t", "test")
    with pytest.raises(OpplanError, match="operator 'a' needs exactly one of flops, time or comm_bytes"):
        m.op("a", flops=passes(1, 1, 1), time=passes(1, 1, 1))
    m.op("a", time=passes(1, 1, 1))
    m.op("b", comm_bytes=passes(8, 8, 0))
    m.edge("a", "b", 4)
    graph = m.to_graph()
    assert graph.operator("b").kind == "communication" and graph.topological_order() == ["a", "b"]


def test_a_timed_operator_may_be_communication_but_not_one_in_flops():
    m = ModelBuilder("t", "test")
    m.op("a2a", time=passes(1, 1, 0), communication=True)
    assert m.to_graph().operator("a2a").kind == "communication"
    with pytest.raises(OpplanError, match="operator 'x': a communication operator costs time or comm_bytes"):
        m.op("x", flops=passes(1, 1, 1), communication=True)


def test_builders_import_only_the_core_layer():
    forbidden = ("opplan.ui", "opplan.planner", "opplan.baselines", "opplan.viz", "opplan.dashboard", "opplan.cli")
    for path in (ROOT / "opplan" / "builders").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
