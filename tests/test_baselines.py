"""Baseline schedules against the published formulas (the published bubble and memory figures), PyTorch's golden DualPipeV
order, and the validator on every sample model. docs/baselines.md explains each expected value."""
import glob
import math
import os
from pathlib import Path

import pytest

from opplan import baselines
from opplan.cluster import uniform_cluster
from opplan.errors import OpplanError
from opplan.graph import load_model
from opplan.io.pytorch_csv import action_from_torch, action_to_torch, lists_from_csv_text, lists_to_csv_text, read_csv
from opplan.outputs import Provenance

# shared/ sits beside the checkout (DEVELOPERS.md); OPPLAN_SHARED overrides it
REFERENCE_CSV = Path(os.environ.get("OPPLAN_SHARED", Path(__file__).resolve().parents[2] / "shared")) \
    / "reference" / "dualpipev_4rank_10mb.csv"
SAMPLES = sorted(glob.glob(str(Path(__file__).resolve().parent.parent / "sample_models" / "*.json")))
UNIFORM = (1.0, 1.0, 1.0)
UNEQUAL = (1.0, 1.5, 0.5)


def simulate(name, P, M, costs, fb=None):
    schedule = baselines.get(name)
    problem = schedule.uniform_problem(P, M, *costs, fb=fb)
    plan = baselines.run(name, problem)
    assert plan.valid, plan.violations[:3]
    assert plan.provenance == Provenance(producer="baseline", schedule=name)
    return plan.metrics.bubble, plan.metrics.peak_activations


def interleaved_peak(P, M, r, v=2):
    rounds = max(1, M // P)
    return (min((v - 1) * (M // rounds) + 2 * (P - 1 - r), v * M) + 1) / v


# name -> (micro-batch counts for P, expected bubble(P, F, B, W, r), expected peak(P, M, r))
FORMULAS = {
    "gpipe": (lambda P: [2 * P, 3 * P + 1, 5 * P], lambda P, F, B, W, r: (P - 1) * (F + B + W), lambda P, M, r: M),
    "1f1b": (lambda P: [2 * P, 3 * P + 1, 5 * P], lambda P, F, B, W, r: (P - 1) * (F + B + W),
             lambda P, M, r: P - r),
    "interleaved-1f1b": (lambda P: [2 * P, 2 * P + 2, 4 * P],
                         lambda P, F, B, W, r: (P - 1) * (F + B + W) / 2, interleaved_peak),
    "zb-h1": (lambda P: [2 * P, 3 * P + 1, 5 * P], lambda P, F, B, W, r: (P - 1) * (F + B - W), lambda P, M, r: P),
    # published (P-1)(F+B-2W), floored by the wait for the first input (P-1)F within one iteration
    "zb-h2": (lambda P: [2 * P, 3 * P + 1, 5 * P], lambda P, F, B, W, r: max((P - 1) * (F + B - 2 * W), (P - 1) * F),
              lambda P, M, r: 2 * P - 1),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("P", [4, 8, 16])
@pytest.mark.parametrize("costs", [UNIFORM, UNEQUAL], ids=["F=B=W=1", "F=1,B=1.5,W=0.5"])
def test_single_stage_schedules_match_the_formulas(name, P, costs):
    counts, bubble_of, peak_of = FORMULAS[name]
    F, B, W = costs
    for M in counts(P):
        bubble, peak = simulate(name, P, M, costs)
        assert bubble == pytest.approx([bubble_of(P, F, B, W, r) for r in range(P)]), (M, bubble)
        assert peak == pytest.approx([peak_of(P, M, r) for r in range(P)]), (M, peak)


@pytest.mark.parametrize("P", [4, 8, 16])
@pytest.mark.parametrize("M_of", [lambda P: 2 * P, lambda P: 2 * P + 6, lambda P: 4 * P])
def test_two_chunk_schedules_at_equal_pass_times(P, M_of):
    """F=B=W, F&B = F+B+W: DualPipe's (P/2-1)(F&B+B-2W) and P+1 hold exactly; DualPipeV is DualPipe
    on 2P ranks with chunks of half a stage; ZB-V's only bubble is the wait for the first input,
    (P-1) chunk forwards."""
    M = M_of(P)
    bubble, peak = simulate("dualpipe", P, M, UNIFORM, fb=3.0)
    assert bubble == pytest.approx([(P / 2 - 1) * (3 + 1 - 2)] * P)
    assert peak == pytest.approx([P + 1] * P)
    bubble, peak = simulate("dualpipev", P, M, UNIFORM, fb=3.0)
    assert bubble == pytest.approx([(P - 1) * (1.5 + 0.5 - 2 * 0.5)] * P)
    assert peak == pytest.approx([(2 * P + 1) / 2] * P)
    bubble, peak = simulate("zb-v", P, M, UNIFORM)
    assert bubble == pytest.approx([(P - 1) * 0.5] * P)
    assert peak == pytest.approx([P] * P)


# Unequal passes F=1, B=1.5, W=0.5 (F&B = F+B+W): the values the schedules give, derived by exact
# simulation and explained in docs/baselines.md (the published figures assume F=B=W).
DERIVED_UNEQUAL = {
    "dualpipe": {4: 3.0, 8: 9.5, 16: 23.5},
    "dualpipev": {4: 4.75, 8: 11.75, 16: 25.75},
    "zb-v": {4: 3.0, 8: 7.0, 16: 15.0},
}
PEAK_UNEQUAL = {"dualpipe": lambda P: P + 1, "dualpipev": lambda P: P + 0.5, "zb-v": lambda P: P}


@pytest.mark.parametrize("name", sorted(DERIVED_UNEQUAL))
@pytest.mark.parametrize("P", [4, 8, 16])
def test_two_chunk_schedules_with_unequal_passes(name, P):
    for M in (2 * P, 2 * P + 6):
        bubble, peak = simulate(name, P, M, UNEQUAL)
        assert bubble == pytest.approx([DERIVED_UNEQUAL[name][P]] * P)
        assert peak == pytest.approx([PEAK_UNEQUAL[name](P)] * P)


def test_reference_values_p8_m20():
    """The issue's figures for P=8, M=20, F=B=W=1, F&B=3."""
    bubble, peak = simulate("1f1b", 8, 20, UNIFORM, fb=3.0)
    assert bubble == [21.0] * 8 and peak == [8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    bubble, peak = simulate("zb-h1", 8, 20, UNIFORM, fb=3.0)
    assert bubble == [7.0] * 8 and max(peak) == 8.0
    bubble, peak = simulate("dualpipe", 8, 20, UNIFORM, fb=3.0)
    assert bubble == [6.0] * 8 and peak == [9.0] * 8
    bubble, peak = simulate("gpipe", 8, 20, UNIFORM, fb=3.0)
    assert bubble == [21.0] * 8 and peak == [20.0] * 8


def test_dualpipe_overlap_shortens_the_iteration():
    s = baselines.get("dualpipe")

    def makespan(fb):
        return baselines.run("dualpipe", s.uniform_problem(8, 20, fb=fb)).metrics.makespan

    assert makespan(2.4) < makespan(None) == makespan(3.0)


def test_dualpipe_holds_twice_the_parameters():
    one = baselines.get("1f1b").uniform_problem(8, 16, param_units=4.0)
    two = baselines.get("dualpipe").uniform_problem(8, 16, param_units=4.0)
    assert [two.param_bytes(d) for d in range(8)] == [2 * one.param_bytes(d) for d in range(8)]
    v = baselines.get("dualpipev").uniform_problem(8, 16, param_units=4.0)
    assert [v.param_bytes(d) for d in range(8)] == [one.param_bytes(d) for d in range(8)]


def test_dualpipev_reproduces_pytorch_reference_csv():
    if not REFERENCE_CSV.exists():
        pytest.skip(f"reference CSV {REFERENCE_CSV} is not available")
    reference = read_csv(REFERENCE_CSV)
    assert baselines.get("dualpipev").lists(4, 10) == reference
    assert lists_to_csv_text(reference) == REFERENCE_CSV.read_text()
    plan = baselines.run("dualpipev", baselines.get("dualpipev").uniform_problem(4, 10))
    assert plan.valid


def test_pytorch_csv_round_trip_and_errors():
    assert action_from_torch("7I0") == "7B0" and action_from_torch("7B3") == "7BW3"
    assert action_from_torch("(0F7;7B3)OVERLAP_F_B") == "(0F7;7BW3)"
    assert action_to_torch("(2B0;2W0)") == "2B0" and action_to_torch("3W1") == "3W1"
    lists = baselines.get("zb-v").lists(4, 9)
    assert lists_from_csv_text(lists_to_csv_text(lists)) == lists
    assert lists_from_csv_text("0F0,,0B0\n") == [["0F0", "0BW0"]]
    for bad in ("0SEND_F0", "xyz", "(0F1;1B0)"):
        with pytest.raises(OpplanError, match="row 1 column 1"):
            lists_from_csv_text(bad + "\n")
    with pytest.raises(OpplanError, match="PyTorch form"):
        action_to_torch("(0F1;1F0)")


def test_registry():
    assert baselines.NAMES == ("gpipe", "1f1b", "interleaved-1f1b", "zb-h1", "zb-h2", "zb-v", "dualpipe",
                               "dualpipev")
    assert baselines.get("ZB-H1").name == "zb-h1"
    with pytest.raises(OpplanError) as error:
        baselines.get("pipedream")
    assert "pipedream" in str(error.value) and all(n in str(error.value) for n in baselines.NAMES)


@pytest.mark.parametrize("name,P,M,message", [
    ("dualpipe", 3, 12, "even number of devices"),
    ("dualpipe", 4, 9, "even number of micro-batches"),
    ("dualpipe", 4, 6, "M >= 2P = 8"),
    ("dualpipev", 4, 7, "M >= 2P = 8"),
    ("interleaved-1f1b", 4, 9, "multiple of 2"),
    ("1f1b", 0, 4, "positive integer"),
    ("gpipe", 4, 0, "positive integer"),
])
def test_preconditions_are_clear_errors(name, P, M, message):
    with pytest.raises(OpplanError, match=message):
        baselines.get(name).uniform_problem(P, M)


def test_order_refuses_a_problem_laid_out_for_another_schedule():
    problem = baselines.get("1f1b").uniform_problem(4, 8)
    with pytest.raises(OpplanError, match="dualpipe needs 8 stages in a mirrored layout"):
        baselines.get("dualpipe").order(problem)


@pytest.mark.parametrize("path", SAMPLES, ids=[Path(p).stem for p in SAMPLES])
def test_every_baseline_on_every_sample_model_is_valid(path):
    model = load_model(path)
    for P in (2, 4):
        cluster = uniform_cluster(P, accelerator=model.accelerator)
        for name in baselines.NAMES:
            schedule = baselines.get(name)
            if len(model.operators) < P * schedule.layout.chunks:
                continue
            problem = schedule.model_problem(model, cluster, 2 * P + 2)
            plan = baselines.run(name, problem)
            assert plan.valid, (name, P, plan.violations[:3])
            assert all(math.isfinite(b) and b >= -1e-9 for b in plan.metrics.bubble)


def test_model_problem_on_a_small_dag():
    from opplan.graph import Edge, ModelGraph, Operator, PassCosts
    ops = [Operator(f"o{i}", PassCosts(1.0 + i % 3, 1.0, 0.5), activation_bytes=10.0, param_bytes=5.0)
           for i in range(12)]
    edges = [Edge(f"o{i}", f"o{i + 1}", 1e6) for i in range(11)] + [Edge("o0", "o5", 1e6), Edge("o3", "o9", 1e6)]
    model = ModelGraph("dag", tuple(ops), tuple(edges))
    cluster = uniform_cluster(2)
    for name in baselines.NAMES:
        plan = baselines.run(name, baselines.get(name).model_problem(model, cluster, 6))
        assert plan.valid, (name, plan.violations[:3])
    dual = baselines.get("dualpipe").model_problem(model, cluster, 6)
    assert dual.microbatches == 3 and dual.num_stages == 4
    assert [dual.param_bytes(d) for d in range(2)] == [60.0, 60.0]
