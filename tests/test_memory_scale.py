"""One memory display scale per scenario (``opplan.ui.config.memory_scale``): models written in
abstract units (the uniform MoE sample: one "byte" of activation per operator) read in activation
units everywhere — cap input, resolution, cards, tables, CSV, memory chart, Pareto points, summary,
links — and real models (DeepSeek, Llama) stay in GB. Caps the user typed read back exactly.
"""
from __future__ import annotations

import json

import pytest

from opplan.errors import OpplanError
from opplan.ui import caps, models, results, share, sweep, tables
from opplan.ui import config as cfg
from opplan.ui import plans as pl
from opplan.ui.display import memory_text, scenario_summary, units_for
from opplan.viz import memory_figure

MOE, DEEPSEEK = "uniform_moe_8", "deepseek_v3_moe"


def sample(label: str, **changes) -> dict:
    values = dict(cfg.DEFAULTS)
    models.select_model(values, label)
    values.update(changes)
    return values


def tiny_model(activation: float, params: float = 0.0, count: int = 4) -> dict:
    """A config of a chain of ``count`` operators with the given bytes each."""
    model = {"format": "opplan-model/1", "name": "t", "operators": [
        {"id": f"o{k}", "time": {"forward": 1, "input_grad": 1, "weight_grad": 1}, "activation_bytes": activation,
         "param_bytes": params} for k in range(count)],
        "edges": [{"src": f"o{k}", "dst": f"o{k + 1}"} for k in range(count - 1)]}
    return cfg.base_config(dict(cfg.DEFAULTS, model_text=json.dumps(model), devices=2))


@pytest.fixture(scope="module")
def moe():
    """uniform MoE at DualPipe's peak (the sample's own scenario: 8 devices, 20 micro-batches, operator level)."""
    config, notes = caps.resolve_config(sample(MOE))
    return config, notes, pl.baseline_plan(config, "dualpipe")[0]


# --- the rule ---------------------------------------------------------------------------------------
def test_the_rule_abstract_units_below_one_kib_in_all():
    scales = {label: cfg.memory_scale(cfg.base_config(sample(label)))
              for label in (MOE, DEEPSEEK, "llama2_7b", "deepseek_v3_moe_8l_h20", "inception_dag", "multimodal_vlm")}
    assert scales[MOE] == cfg.MemoryScale(2.0, "activation units", "act. units"), "16 activation bytes / 8 devices"
    assert all(s == cfg.GIGABYTES for label, s in scales.items() if label != MOE), scales
    assert cfg.memory_scale(cfg.base_config(dict(cfg.DEFAULTS))) == cfg.ACTIVATION_UNITS   # the uniform pipeline
    assert cfg.memory_scale(cfg.base_config(sample(MOE, devices=4))).unit_bytes == 4.0, "a unit is 1/P of the model"
    assert cfg.memory_scale(tiny_model(255.0)).in_units, "4 x 255 = 1020 bytes: abstract"
    assert not cfg.memory_scale(tiny_model(256.0)).in_units, "4 x 256 = 1024 bytes: real"
    assert not cfg.memory_scale(tiny_model(1.0, params=300.0)).in_units, "parameters count too"
    assert not cfg.memory_scale(tiny_model(0.0)).in_units, "no activations: no activation unit, GB"


@pytest.mark.parametrize("unit_bytes, label", [(0.0, "GB"), (float("inf"), "GB"), (float("nan"), "GB"),
                                               (-1.0, "GB"), (1.0, "bytes")])
def test_a_bad_memory_scale_is_refused(unit_bytes, label):
    with pytest.raises(OpplanError, match="memory display"):
        cfg.MemoryScale(unit_bytes, label, label)


@pytest.mark.parametrize("unit_bytes", [1.0, 2.0, 16 / 3, 16 / 7, 1e9, 0.1, 3.3e-7])
def test_typed_caps_round_trip_units_to_bytes_to_units(unit_bytes):
    scale = cfg.MemoryScale(unit_bytes, "activation units", "act. units")
    for typed in (9.0, 0.1, 0.3, 1.1, 2.675, 12.345678, 1e-3, 7.77, 123456.789, 80.0, 1 / 3):
        shown = scale.to_display(scale.to_bytes(typed))
        assert shown == typed or (typed == 1 / 3 and abs(shown - typed) < 1e-12), (unit_bytes, typed, shown)
    assert scale.to_display(float("inf")) == float("inf")


def test_a_cap_typed_on_three_devices_reads_back_exactly_in_the_cluster_table():
    values = sample(MOE, devices=3, cap_mode=caps.ONE_VALUE, cap_value=0.3)   # unit = 16/3 bytes
    config, _ = caps.resolve_config(values)
    assert config["caps"] == [0.3 * 16 / 3] * 3
    assert list(caps.device_table(values, 3, config["caps"])["memory cap (activation units)"]) == [0.3] * 3


# --- every place, uniform MoE in activation units ------------------------------------------------------
def test_uniform_moe_cap_input_and_resolution_are_in_activation_units(moe):
    config, notes, _ = moe
    values = sample(MOE)
    assert caps.cap_input(values) == caps.CapInput("cap_value", "Cap (activation units)", 1.0, caps.cap_input(values).help)
    assert "activation units" in caps.cap_input(values).help and caps.cap_unit(values) == "activation units"
    assert config["caps"] == [18.0] * 8, "config caps stay in bytes: 9 units of 2 bytes"
    assert notes == ["Memory cap: DualPipe's peak, 9 activation units per device."]
    one = caps.resolve_config(sample(MOE, cap_mode=caps.ONE_VALUE, cap_value=7.0, cap_value_gb=80.0))[0]
    assert one["caps"] == [14.0] * 8
    assert cfg.scenario_from_config(one).memory_caps == (14.0,) * 8, "the planner gets 7 units in bytes"
    per = caps.resolve_config(sample(MOE, devices=2, cap_mode=caps.PER_DEVICE, caps_per_device=[4.0, 6.0]))[0]
    assert per["caps"] == [32.0, 48.0], "unit = 16 bytes / 2 devices"
    assert scenario_summary(per, MOE).endswith("memory cap per device 4, 6 act. units · operator level")


def test_uniform_moe_cards_tables_csv_and_points_agree_in_activation_units(moe):
    config, _, dual = moe
    assert scenario_summary(config, MOE) == (r"uniform\_moe\_8 · 8 devices · 20 micro-batches · memory cap "
                                             "9 activation units · operator level")
    card = results.peak_card(dual, config)
    assert (card.label, card.value, card.delta) == ("Peak (act. units)", "9", "cap 9")
    row = tables.metrics_table({"dualpipe": dual}, config).iloc[0]
    assert row["peak memory (activation units)"] == 9 and row["cap (activation units)"] == 9
    assert not any("GB" in c for c in tables.metrics_table({"dualpipe": dual}, config).columns)
    fit = tables.fit_table(config).data
    assert fit.loc["DualPipe", "peak memory (activation units)"] == 9 and fit.loc["1F1B", "fits the cap"]
    csv = tables.metrics_csv({"dualpipe": dual}, config).splitlines()
    header, first = csv[0].split(","), csv[1].split(",")
    assert "peak_memory_units" in header and not any(h.endswith("_bytes") for h in header)
    assert float(first[header.index("memory_cap_units")]) == 9 and float(first[header.index("peak_memory_units")]) <= 9
    swept = {"schedule": "opplan", "cap": 16.0, "peak": 14.0, "bubble_ratio": 0.1, "makespan": 1.0}   # in bytes
    points = sweep.pareto_points(config, [swept], dual)
    by_name = {p["schedule"]: p for p in points[:-2]}
    assert by_name["DualPipe"]["peak"] == 9 and by_name["1F1B"]["peak"] == 8
    assert points[-2] == dict(swept, cap=8.0, peak=7.0), "the sweep's point, in units"
    assert (points[-1]["cap"], points[-1]["peak"]) == (9, 9), "the current plan, last, at the cap"


def test_uniform_moe_memory_chart_axis_and_cap_line_are_in_activation_units(moe):
    config, _, dual = moe
    units = units_for(config)
    fig = memory_figure([dual], ["DualPipe"], unit_bytes=units.mem_unit_bytes, unit_label=units.mem_label,
                        time_label=units.time_label)
    assert fig.layout.yaxis.title.text == "activation units"
    cap_lines = [t for t in fig.data if t.name == "memory cap"]
    assert cap_lines and all(list(t.y) == [9.0, 9.0] for t in cap_lines)
    assert max(max(t.y) for t in fig.data if t.name == "DualPipe") <= 9.0


# --- real models stay in GB ----------------------------------------------------------------------------
def test_deepseek_stays_in_gb_everywhere():
    values = sample(DEEPSEEK, cap_mode=caps.ONE_VALUE, cap_value=7.0, cap_value_gb=95.5)
    config, _ = caps.resolve_config(values)
    assert caps.cap_input(values).label == "Cap (GB)" and caps.cap_input(values).key == "cap_value_gb"
    assert caps.cap_input(values).step == 5.0 and config["caps"] == [95.5e9] * config["devices"]
    assert list(caps.device_table(values, config["devices"], config["caps"])["memory cap (GB)"]) == [95.5] * 8
    assert "95.50 GB" in scenario_summary(config, DEEPSEEK)
    plan = pl.baseline_plan(cfg.uncapped(config), "1f1b")[0]
    card = results.peak_card(plan, config)
    assert card.label == "Peak (GB)" and 10 < float(card.value) < 200 and card.delta == "cap 95.5"
    table = tables.metrics_table({"1f1b": plan}, config)
    assert table.iloc[0]["peak memory (GB)"] == pytest.approx(max(plan.metrics.peak_memory_bytes) / 1e9, rel=1e-12)
    assert "peak_memory_bytes" in tables.metrics_csv({"1f1b": plan}, config).splitlines()[0]
    fig = memory_figure([plan], ["1F1B"], unit_bytes=units_for(config).mem_unit_bytes, unit_label="GB")
    assert fig.layout.yaxis.title.text == "GB"


# --- switching models and links lose nothing ---------------------------------------------------------------
def test_each_scale_keeps_its_own_typed_cap_across_model_switches():
    values = sample(MOE, cap_mode=caps.ONE_VALUE)
    values[caps.cap_input(values).key] = 7.25           # typed on uniform MoE, in units
    models.select_model(values, DEEPSEEK)
    values[caps.cap_input(values).key] = 61.5           # typed on DeepSeek, in GB
    models.select_model(values, MOE)
    assert caps.resolve_config(values)[0]["caps"] == [14.5] * 8
    models.select_model(values, DEEPSEEK)
    assert caps.resolve_config(values)[0]["caps"] == [61.5e9] * 8
    models.select_model(values, models.UNIFORM)       # the uniform pipeline reads in units too
    assert caps.resolve_config(values)[0]["caps"] == [7.25] * 8


@pytest.mark.parametrize("label, key, typed", [(MOE, "cap_value", 7.123456789), (DEEPSEEK, "cap_value_gb", 61.5),
                                               (models.UNIFORM, "cap_value", 0.1)])
def test_a_link_carries_the_cap_in_the_models_scale_exactly(label, key, typed):
    values = sample(label, cap_mode=caps.ONE_VALUE, **{key: typed})
    params = share.query_params(values)
    opened = dict(cfg.DEFAULTS)
    assert share.apply_query_params(opened, params) == []
    assert opened[key] == typed and opened["cap_mode"] == caps.ONE_VALUE
    assert caps.resolve_config(opened)[0]["caps"] == caps.resolve_config(values)[0]["caps"]
    assert float(params["cap"]) == typed and "e" not in params["cap"]


def test_planner_messages_read_in_the_models_scale():
    """The planner writes byte amounts ("cap 1 B"); on a model in abstract units the page shows units."""
    message = ("no plan fits the memory caps; contiguous: dev0 has cap 1 B but one micro-batch alone needs 2 B "
               "(plans exist from 2 B on every device)")
    moe_config = cfg.base_config(sample(MOE))
    assert memory_text(message, moe_config) == (
        "no plan fits the memory caps; contiguous: dev0 has cap 0.5 activation units but one micro-batch alone "
        "needs 1 activation unit (plans exist from 1 activation unit on every device)")
    assert memory_text("cap 9 activation units: solving (1/3); stage B1 of 2 B", moe_config).endswith("of 1 activation unit")
    for config in (cfg.base_config(sample(DEEPSEEK)), cfg.base_config(dict(cfg.DEFAULTS))):
        assert memory_text(message, config) == message, "GB models and the uniform pipeline are left as they are"
