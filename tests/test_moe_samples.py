"""The samples operator-level scheduling is checked against: the exact uniform MoE case, the
expert-parallel bandwidth that times all-to-all, and the DeepSeek-V3 sample's ~1:1 balance of
MoE compute and communication."""
import json
import math
from pathlib import Path

import pytest

from opplan import baselines
from opplan.builders import build_model
from opplan.builders.moe import moe_balance
from opplan.cli import main
from opplan.cluster import ACCELERATORS, DEFAULT_EP_GBYTES_PER_S, Cluster, Device, Link, uniform_cluster
from opplan.errors import OpplanError
from opplan.graph import load_model, parse_model
from opplan.layout import MIRRORED
from opplan.partition import balanced_partition
from opplan.scenario import Scenario

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
P, M = 8, 20


# --- uniform_moe_8: the exact case ----------------------------------------------------------------
def test_uniform_moe_8_is_compute_all_to_all_compute_all_to_all_per_stage():
    model = load_model(SAMPLES / "uniform_moe_8.json")
    assert model.name == "uniform-moe-8" and len(model.operators) == 32
    assert model.topological_order() == [f"s{i}.{part}" for i in range(P)
                                         for part in ("attn", "dispatch", "mlp", "combine")]
    for op in model.operators:
        comm = op.id.endswith(("dispatch", "combine"))
        assert op.kind == ("communication" if comm else "compute"), op.id
        assert op.costs.unit == "time"
        assert (op.costs.forward, op.costs.input_grad, op.costs.weight_grad) == ((1, 1, 0) if comm else (1, 1, 1))
        assert (op.activation_bytes, op.param_bytes) == ((0 if comm else 1), 0)
        assert op.layer == int(op.id[1:op.id.index(".")])
    assert [(e.src, e.dst) for e in model.edges] == list(zip(model.topological_order(), model.topological_order()[1:]))


def test_uniform_moe_8_cuts_one_block_per_device_in_dualpipes_layout():
    model = load_model(SAMPLES / "uniform_moe_8.json")
    blocks = [[f"s{i}.attn", f"s{i}.dispatch", f"s{i}.mlp", f"s{i}.combine"] for i in range(P)]
    assert balanced_partition(model, P) == blocks
    problem = MIRRORED.model_problem(model, uniform_cluster(P), M)
    assert problem.activation_unit_bytes == 2            # one unit = one block's activation
    assert len(problem.stages) == 2 * P
    for j, stage in enumerate(problem.stages):
        block = j if j < P else j - P
        assert stage.device == (block if j < P else P - 1 - block)
        assert list(stage.operators) == blocks[block]
        assert (stage.forward, stage.input_grad, stage.weight_grad, stage.activation_bytes) == (4, 4, 2, 2)
    plan = baselines.run_on(Scenario.from_options(model, devices=P, microbatches=M).with_caps(9 * 2), "dualpipe")
    assert plan.valid


def test_uniform_moe_8_splits_into_compute_and_communication_units_of_unit_cost():
    model = load_model(SAMPLES / "uniform_moe_8.json")
    units = MIRRORED.model_problem(model, uniform_cluster(P), M, granularity="operator")
    assert len(units.stages) == 2 * P * 4
    for k, unit in enumerate(units.stages):
        comm = k % 2 == 1
        assert unit.stream == ("communication" if comm else "compute")
        assert (unit.forward, unit.input_grad, unit.weight_grad, unit.activation_bytes) == \
            ((1, 1, 0, 0) if comm else (1, 1, 1, 1))


# --- the expert-parallel bandwidth ---------------------------------------------------------------
def comm_model(unit):
    costs = {"forward": 1e9, "input_grad": 5e8, "weight_grad": 0}
    return parse_model({"format": "opplan-model/1", "name": "a2a", "operators": [
        {"id": "a2a", "kind": "communication", unit: costs}], "edges": []}, "a2a")


def test_bytes_move_at_the_expert_parallel_bandwidth_not_the_pipeline_link():
    op = comm_model("bytes").operator("a2a")
    for link in (Link(900.0), Link(1.0, latency_ms=3.0)):
        cluster = Cluster((Device("d"),), link, ep_bandwidth_gbytes_per_s=25.0)
        assert cluster.operator_times(op, 0) == pytest.approx((40.0, 20.0, 0.0))   # 1 GB at 25 GB/s = 40 ms
    timed = comm_model("time").operator("a2a")
    assert Cluster((Device("d"),), ep_bandwidth_gbytes_per_s=25.0).operator_times(timed, 0) == (1e9, 5e8, 0)


def test_expert_parallel_bandwidth_defaults_and_round_trip():
    assert Cluster((Device("d"),)).ep_bandwidth_gbytes_per_s == DEFAULT_EP_GBYTES_PER_S == 50.0
    for name, acc in ACCELERATORS.items():
        assert uniform_cluster(2, accelerator=name).ep_bandwidth_gbytes_per_s == acc.ep_gbytes_per_s > 0
        assert acc.ep_source
    assert uniform_cluster(2, accelerator="A100", ep_bandwidth=12.5).ep_bandwidth_gbytes_per_s == 12.5
    cluster = uniform_cluster(2, accelerator="H20", ep_bandwidth=12.5).with_memory(1e9)
    assert cluster.ep_bandwidth_gbytes_per_s == 12.5
    assert cluster.to_dict()["ep_bandwidth_gbytes_per_s"] == 12.5
    assert Cluster.from_dict(json.loads(json.dumps(cluster.to_dict()))) == cluster


@pytest.mark.parametrize("value", [0, -50.0, math.inf, math.nan, True, "50"])
def test_a_bad_expert_parallel_bandwidth_is_one_line_naming_it(value):
    with pytest.raises(OpplanError) as caught:
        Cluster((Device("d"),), ep_bandwidth_gbytes_per_s=value)
    assert caught.value.field == "ep_bandwidth" and "\n" not in str(caught.value)
    assert str(caught.value).startswith("ep_bandwidth must be a positive finite number of GB/s")
    model = load_model(SAMPLES / "deepseek_v3_moe.json")
    with pytest.raises(OpplanError) as caught:
        Scenario.from_options(model, devices=P, microbatches=M, ep_bandwidth=value)
    assert caught.value.field == "ep_bandwidth"


def test_scenario_passes_the_expert_parallel_bandwidth_to_its_cluster():
    model = load_model(SAMPLES / "deepseek_v3_moe.json")
    assert Scenario.from_options(model, devices=P, microbatches=M).cluster().ep_bandwidth_gbytes_per_s == 50.0
    slow = Scenario.from_options(model, devices=P, microbatches=M, ep_bandwidth=25, speeds=[1.0] * P)
    assert slow.cluster().ep_bandwidth_gbytes_per_s == 25.0
    assert moe_balance(model, slow.cluster()).comm_forward_ms == pytest.approx(
        2 * moe_balance(model, uniform_cluster(1, accelerator="H100")).comm_forward_ms)
    with pytest.raises(OpplanError, match="ep_bandwidth applies to a model") as caught:
        Scenario.from_options(devices=P, microbatches=M, ep_bandwidth=25)
    assert caught.value.field == "ep_bandwidth"


def test_cli_ep_bandwidth_flag_slows_the_all_to_all(capsys):
    sample = str(SAMPLES / "uniform_moe_8.json")
    times = {}
    for bw in ("25", "100"):
        assert main(["baseline", "1f1b", str(SAMPLES / "deepseek_v3_moe.json"), "--devices", "8", "-m", "8",
                     "--ep-bandwidth", bw, "--json"]) == 0
        times[bw] = json.loads(capsys.readouterr().out)["makespan"]
    assert times["25"] > times["100"]
    assert main(["baseline", "1f1b", sample, "--devices", "8", "-m", "8", "--ep-bandwidth", "10"]) == 0  # timed: no change


@pytest.mark.parametrize("args, needle", [
    (["--ep-bandwidth", "0"], "--ep-bandwidth must be a positive finite number of GB/s, got 0.0"),
    (["--ep-bandwidth", "inf"], "--ep-bandwidth must be a positive finite number of GB/s, got inf"),
    (["--ep-bandwidth", "fast"], "argument --ep-bandwidth: invalid float value: 'fast'"),
])
def test_cli_ep_bandwidth_errors_are_one_line_naming_the_flag(args, needle, capsys):
    try:
        code = main(["compare", str(SAMPLES / "deepseek_v3_moe.json"), "--devices", "8", "-m", "8", *args])
    except SystemExit as exit_:   # argparse's own errors leave through SystemExit
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err


def test_cli_ep_bandwidth_on_the_uniform_pipeline_is_an_error(capsys):
    assert main(["baseline", "1f1b", "--stages", "4", "-m", "8", "--ep-bandwidth", "50"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "opplan: error: --ep-bandwidth applies to a model's communication operators; " \
                  "the uniform pipeline has none"


# --- the DeepSeek-V3 sample ----------------------------------------------------------------------
def test_deepseek_sample_balances_moe_compute_and_all_to_all_about_one_to_one():
    model = load_model(SAMPLES / "deepseek_v3_moe.json")
    assert max(op.layer for op in model.operators if op.layer is not None) + 1 >= 16
    cluster = Scenario.from_options(model, devices=P, microbatches=M).cluster()  # H100, 50 GB/s
    balance = moe_balance(model, cluster)
    assert 0.7 <= balance.ratio <= 1.4, balance
    assert 0.7 <= balance.iteration_ratio <= 1.5, balance
    # every layer the same
    assert all(moe_balance(model, cluster, layer).ratio == pytest.approx(balance.ratio) for layer in range(16))
    # the earlier 8-layer H20 sample was compute-bound: its all-to-all is 3x cheaper per FLOP
    old = load_model(SAMPLES / "deepseek_v3_moe_8l_h20.json")
    assert moe_balance(old, uniform_cluster(1, accelerator="H20")).ratio > 2


def test_moe_balance_names_a_model_without_moe_layers():
    with pytest.raises(OpplanError, match="has no MoE layer 0"):
        moe_balance(build_model("uniform_moe"), uniform_cluster(1))


def test_the_frugal_schedules_fit_the_deepseek_sample_in_h100_memory():
    scenario = Scenario.from_options(load_model(SAMPLES / "deepseek_v3_moe.json"), devices=P, microbatches=M)
    for name in ("1f1b", "zb-h1"):
        assert baselines.run_on(scenario, name).valid, name


# --- every sample with every baseline ------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_every_baseline_gives_a_valid_plan_on_every_sample(path):
    model = load_model(path)
    # caps lifted: a schedule that keeps more activations than 80 GB (GPipe at M = 20) is still a valid order
    scenario = Scenario.from_options(model, devices=P, microbatches=M).with_caps(math.inf)
    ran = []
    for name in baselines.NAMES:
        try:
            plan = baselines.run_on(scenario, name)
        except OpplanError as error:      # not applicable: fewer operators than the layout's stages
            assert len(model.operators) < 2 * P and "too few for" in str(error), (name, str(error))
            continue
        assert plan.valid, (name, plan.violations[:2])
        ran.append(name)
    assert {"gpipe", "1f1b", "zb-h1", "zb-h2"} <= set(ran)
    assert len(model.operators) < 2 * P or ran == list(baselines.NAMES)
