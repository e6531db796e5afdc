"""The dashboard's pure logic (``opplan.ui`` without Streamlit): cap resolution, the Pareto points,
the Home headline and cards, the fit-the-cap table, model uploads and choices, job progress.

The default scenario is the reference case: the uniform pipeline, P = 8, M = 20, where 1F1B peaks
at 8 activation units, DualPipe at 9, and DualPipe's iteration takes 66 against 1F1B's 81.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from opplan.ui import caps, jobs, models, results, sweep, tables
from opplan.ui import config as cfg
from opplan.ui import plans as pl
from opplan.ui.display import scenario_summary, units_for

ROOT = Path(__file__).resolve().parents[1]
TINY = json.dumps({"format": "opplan-model/1", "name": "tiny", "operators": [
    {"id": k, "time": {"forward": 1, "input_grad": 1, "weight_grad": 1}, "activation_bytes": 1e8, "param_bytes": 1e9}
    for k in "abcd"], "edges": [{"src": s, "dst": d, "bytes": 1e7} for s, d in ("ab", "bc", "cd")]})


def store(**changes) -> dict:
    return dict(cfg.DEFAULTS, **changes)


def model_store(**changes) -> dict:
    values = store(**changes)
    models.set_model(values, json.dumps(models.load_model_text(TINY, "tiny").to_dict()), "tiny")
    return values


# --- cap resolution -----------------------------------------------------------------------------
def test_default_cap_is_dualpipes_peak():
    config, notes = caps.resolve_config(store())
    assert config["caps"] == [9.0] * 8
    assert notes == ["Memory cap: DualPipe's peak, 9 activation units per device."]


def test_cap_follows_1f1b_where_dualpipe_does_not_apply():
    config, notes = caps.resolve_config(store(devices=3))
    assert config["caps"] == [3.0] * 3
    assert notes[0].startswith("Memory cap: 1F1B's peak") and "DualPipe does not apply here" in notes[1]


def test_one_value_and_per_device_caps_are_in_units_or_gb():
    assert caps.resolve_config(store(cap_mode=caps.ONE_VALUE, cap_value=3.0))[0]["caps"] == [3.0] * 8
    per_device = store(cap_mode=caps.PER_DEVICE, devices=2, caps_per_device=[4.0, 6.0])
    assert caps.resolve_config(per_device)[0]["caps"] == [4.0, 6.0]
    wrong_length = store(cap_mode=caps.PER_DEVICE, devices=3, cap_value=5.0, caps_per_device=[4.0, 6.0])
    assert caps.resolve_config(wrong_length)[0]["caps"] == [5.0] * 3, "falls back to the common value"
    gb = model_store(cap_mode=caps.ONE_VALUE, cap_value=3.0, cap_value_gb=20.0, devices=2)
    assert caps.resolve_config(gb)[0]["caps"] == [20e9, 20e9], "models read the GB value, in bytes"
    assert caps.resolve_config(store(cap_mode=caps.NO_CAP))[0]["caps"] is None


def test_device_table_pads_and_saves_speeds_and_caps():
    values = store(devices=3, cap_value=5.0, speeds=[2.0], caps_per_device=[4.0], cap_mode=caps.PER_DEVICE)
    table = caps.device_table(values, 3)
    assert list(table[caps.SPEED]) == [2.0, 1.0, 1.0]
    assert list(table["memory cap (activation units)"]) == [4.0, 5.0, 5.0]
    table.loc[1, "memory cap (activation units)"] = float("nan")
    table.loc[2, caps.SPEED] = 0.5
    caps.save_device_table(values, table)
    assert values["speeds"] == [2.0, 1.0, 0.5] and values["caps_per_device"] == [4.0, 5.0, 5.0]


def test_device_table_shows_the_cap_in_force_outside_the_per_device_mode():
    """Issue 12.6: the Cluster table showed 80 GB per device while DualPipe's peak (the active cap) applied."""
    values = model_store(devices=4)
    config, _ = caps.resolve_config(values)
    table = caps.device_table(values, 4, config["caps"])
    assert list(table["memory cap (GB)"]) == [c / 1e9 for c in config["caps"]] and config["caps"][0] < 80e9
    table.loc[0, "memory cap (GB)"] = 1.0
    caps.save_device_table(values, table)
    assert values["caps_per_device_gb"] is None, "caps shown (not edited) outside the per-device mode are not stored"
    no_cap = store(cap_mode=caps.NO_CAP)
    assert caps.device_table(no_cap, 2, None)["memory cap (activation units)"].isna().all()


def test_metrics_csv_names_its_memory_unit_and_html_export_is_offline():
    """Issue 12.6: activation units never land in *_bytes columns; 12.11: plotly.js is embedded."""
    config, _ = caps.resolve_config(store(cap_mode=caps.NO_CAP))
    plans, _ = pl.collect_plans(config, ["1f1b"])
    header = tables.metrics_csv(plans, config).splitlines()[0].split(",")
    assert "peak_memory_units" in header and not any(h.endswith("_bytes") for h in header)
    assert tables.metrics_csv(plans, config).splitlines()[1].split(",")[header.index("memory_cap_units")] == ""
    values = model_store(devices=2)
    config, _ = caps.resolve_config(values)
    header = tables.metrics_csv(pl.collect_plans(config, ["1f1b"])[0], config).splitlines()[0]
    assert "peak_memory_bytes" in header and "units" not in header
    from opplan.viz import gantt_figure
    html = tables.figure_html(gantt_figure(list(plans.values())))
    assert "<script src=\"https://cdn.plot.ly" not in html and len(html) > 1_000_000, "plotly.js is inline"


def test_base_config_drops_speeds_that_change_nothing():
    assert cfg.base_config(store(devices=2, speeds=[1.0, 1.0]))["speeds"] is None
    assert cfg.base_config(store(devices=2, speeds=[1.0, 0.5]))["speeds"] == [1.0, 0.5]
    assert cfg.base_config(store(devices=3, speeds=[1.0, 0.5]))["speeds"] is None, "stale length"


# --- the Pareto points -----------------------------------------------------------------------------
def test_pareto_points_baselines_uncapped_then_sweep_then_opplan():
    config, _ = caps.resolve_config(store())
    points = sweep.pareto_points(config)
    by_name = {p["schedule"]: p for p in points}
    assert {"1F1B", "DualPipe", "ZB-H1", "GPipe"} <= set(by_name)
    assert by_name["1F1B"]["peak"] == 8 and by_name["DualPipe"]["peak"] == 9
    assert by_name["GPipe"]["peak"] == 20, "baselines are placed without the cap"
    assert sorted(sweep.baseline_peaks(config)) == sorted(p["peak"] for p in points)

    opplan = pl.baseline_plan(config, "dualpipe")[0]   # any plan stands in for opplan's
    swept = [{"schedule": "opplan", "cap": 8.0, "peak": 8.0, "bubble_ratio": 0.1, "makespan": 67.0}]
    points = sweep.pareto_points(config, swept, opplan)
    assert points[-2] == swept[0] and points[-1]["schedule"] == "opplan" and points[-1]["cap"] == 9.0


def test_pareto_points_of_a_model_are_in_gb():
    config, _ = caps.resolve_config(model_store(cap_mode=caps.NO_CAP, devices=2, microbatches=4))
    swept = [{"schedule": "opplan", "cap": 3e9, "peak": 2.5e9, "bubble_ratio": 0.1, "makespan": 1.0}]
    points = sweep.pareto_points(config, swept)
    assert points[-1] == dict(swept[0], cap=3.0, peak=2.5)
    assert all(1 < p["peak"] < 10 for p in points), "GB, not bytes"


def test_sweep_caps_span_the_baseline_peaks():
    assert sweep.sweep_caps([8.0, 20.0, 9.0], 3) == [8.0, 14.0, 20.0]
    assert sweep.sweep_caps([8.0, 8.0], 5) == [8.0]


# --- Home: headline and cards ----------------------------------------------------------------------
def home_plans(opplan_name: str) -> tuple[dict, dict]:
    config, _ = caps.resolve_config(store())
    stand_in = pl.baseline_plan(config, opplan_name)[0]
    plans, skipped = pl.collect_plans(config, ("opplan", *results.HOME_SCHEDULES), stand_in)
    assert not skipped and list(plans) == ["opplan", "1f1b", "dualpipe"]
    return plans, config


def test_headline_compares_with_dualpipe_at_the_same_memory():
    plans, config = home_plans("zb-v")
    kind, text = results.headline(plans, config)
    removed = 1 - sum(plans["opplan"].metrics.bubble) / sum(plans["dualpipe"].metrics.bubble)
    assert kind == "success" and text.startswith(f"**opplan removes {removed:.0%} of DualPipe's idle time at the same")
    assert "instead of 66 (time in units of F)." in text
    kind, text = results.headline(home_plans("1f1b")[0], config)
    assert kind == "warning" and "more idle time than DualPipe" in text


def test_headline_says_dualpipe_does_not_fit_and_compares_with_what_fits():
    """Issue 12.5: cap 8.5 units — DualPipe (peak 9) does not fit, 1F1B (peak 8) does."""
    config, _ = caps.resolve_config(store(cap_mode=caps.ONE_VALUE, cap_value=8.5))
    opplan = pl.baseline_plan(config, "zb-h1")[0]
    plans, _ = results.home_plans(config, opplan)
    assert results.reference_name(plans) == "1f1b"
    kind, text = results.headline(plans, config)
    assert kind == "success"
    assert text.startswith("DualPipe does not fit this cap of 8.5 activation units per device (it needs 9 activation")
    assert "of 1F1B's idle time at the same memory" in text and "DualPipe's idle" not in text
    cards = results.home_cards(plans, config)
    assert cards[3].label == "vs DualPipe" and cards[3].delta == "over the cap"


def test_headline_below_every_baseline_says_none_fits_or_names_the_best_that_fits():
    """Issue 12.5: a cap below every baseline's peak (all need ≥ 8 units here) never claims a comparison
    with a schedule that does not fit."""
    config, _ = caps.resolve_config(store(cap_mode=caps.ONE_VALUE, cap_value=7.5))
    plans, _ = results.home_plans(config, pl.baseline_plan(config, "1f1b")[0])
    assert results.reference_name(plans) is None and results.best_fitting_baseline(config) is None
    kind, text = results.headline(plans, config)
    assert kind == "info" and text.startswith("1F1B and DualPipe do not fit this cap of 7.5 activation units")
    assert "No expert schedule fits this cap" in text
    titles = results.gantt_titles(plans, units_for(config), mark_invalid=True)
    assert [("over the cap" in t) for t in titles] == [True, True, True]

    # cap 8: 1F1B, ZB-H1 and ZB-V fit; with only DualPipe beside opplan, the best that fits joins
    config, _ = caps.resolve_config(store(cap_mode=caps.ONE_VALUE, cap_value=8.0))
    best, best_plan = results.best_fitting_baseline(config)
    assert best_plan.valid and best in ("zb-h1", "zb-v")
    plans = {"opplan": best_plan, "dualpipe": pl.baseline_plan(config, "dualpipe")[0], best: best_plan}
    kind, text = results.headline(plans, config)
    assert kind == "success" and text.startswith("DualPipe does not fit")
    assert f"**opplan removes 0% of {results.schedule_title(best)}'s idle time, the best expert schedule that fits," \
        in text


def test_home_table_shows_no_cap_as_a_dash():
    """Issue 12.3: with no cap the cap column is empty; the formatter must not fail on it."""
    config, _ = caps.resolve_config(store(cap_mode=caps.NO_CAP))
    plans, _ = pl.collect_plans(config, ["1f1b", "dualpipe"])
    html = tables.home_table(plans, config).to_html()
    assert "–" in html and "cap (activation units)" in html


def test_home_cards_iteration_bubble_speedups_peak():
    plans, config = home_plans("dualpipe")
    cards = results.home_cards(plans, config)
    assert [c.label for c in cards] == ["Iteration", "Bubble ratio", "vs 1F1B", "vs DualPipe",
                                        "Peak (act. units)"]
    assert max(len(c.label) for c in cards) <= 18 and max(len(c.delta or "") for c in cards) <= 16, \
        "short enough not to be cut off at 1280 px (issue 12.11; the browser test measures it)"
    assert "DualPipe's iteration time ÷ opplan's" in cards[3].help
    assert cards[0].value == "66" and cards[0].delta == "+0"
    assert results.cards_caption(plans).startswith("Changes against DualPipe")
    assert cards[2].value == f"{81 / 66:.2f}×" and cards[3].value == "1.00×"
    assert (cards[4].value, cards[4].delta, cards[4].delta_color) == ("9", "cap 9", "off")
    del plans["1f1b"]
    assert results.home_cards(plans, config)[2] is None, "a schedule that does not apply leaves its card empty"


def test_plan_cards_and_verdict():
    plans, config = home_plans("1f1b")
    cards = results.plan_cards(plans["opplan"], config)
    assert [c.label for c in cards] == ["Iteration time", "Bubble ratio", "Idle per device, max",
                                        "Peak (act. units)"]
    badge, solver = results.verdict(plans["opplan"], units_for(config))
    assert "gap" in badge and solver.startswith("**Solver:**")


# --- tables -----------------------------------------------------------------------------------------
def test_fit_table_names_schedules_over_the_cap_and_those_that_do_not_apply():
    config, _ = caps.resolve_config(store(cap_mode=caps.ONE_VALUE, cap_value=8.5))
    rows = tables.fit_table(config).data
    assert rows.loc["1F1B", "fits the cap"] == True and rows.loc["1F1B", "note"] == ""  # noqa: E712
    assert rows.loc["DualPipe", "fits the cap"] == False and rows.loc["DualPipe", "note"] == "over the cap"  # noqa: E712
    rows = tables.fit_table(caps.resolve_config(store(devices=3))[0]).data
    assert "even" in rows.loc["DualPipe", "note"] and rows["peak memory (activation units)"].isna()["DualPipe"]


def test_over_cap_uses_the_plans_memory_violation():
    config, _ = caps.resolve_config(store(cap_mode=caps.ONE_VALUE, cap_value=8.5))
    plans, _ = pl.collect_plans(config, ["1f1b", "dualpipe"])
    assert results.over_cap_names(plans) == ["DualPipe"]
    titles = results.gantt_titles(plans, units_for(config), mark_invalid=True)
    assert titles[1].endswith("⚠ over the cap") and "⚠" not in titles[0]


def test_metrics_table_titles_and_units():
    config, _ = caps.resolve_config(model_store(cap_mode=caps.NO_CAP, devices=2, microbatches=4))
    plans, _ = pl.collect_plans(config, ["1f1b"])
    table = tables.metrics_table(plans, config, titled=True)
    assert list(table["schedule"]) == ["1F1B"]
    assert "iteration (ms)" in table.columns and "peak memory (GB)" in table.columns


# --- models -----------------------------------------------------------------------------------------
def test_upload_keeps_the_previous_model_on_a_bad_file():
    values = store()
    assert models.upload_model(values, "tiny.json", "id1", TINY.encode())
    assert values["model_label"] == "uploaded: tiny.json" and models.current_model(values).name == "tiny"
    assert not models.upload_model(values, "tiny.json", "id1", b"ignored"), "the same upload is taken once"
    assert not models.upload_model(values, "bin.json", "id2", b"\xff\xfe")
    assert values["_upload_error"].startswith("bin.json: not a text file (not UTF-8)")
    assert not models.upload_model(values, "junk.json", "id3", b"{not json")
    assert values["_upload_error"].startswith("junk.json") and "\n" not in values["_upload_error"]
    assert values["model_label"] == "uploaded: tiny.json"
    assert "uploaded: tiny.json" in models.model_choices(values)


def test_choose_model_loads_samples_and_the_uniform_pipeline():
    values = store()
    models.choose_model(values, "llama2_7b")
    assert values["model_text"] is not None and values["_loaded_label"] == "llama2_7b"
    models.adopt_model(values, models.current_model(values))
    assert values["model_label"] == f"edited: {models.current_model(values).name}"
    models.choose_model(values, models.UNIFORM)
    assert values["model_text"] is None
    assert models.HIDDEN_SAMPLE not in models.model_choices(values)


@pytest.mark.parametrize("sample", [s for s in models.sample_models() if s != models.HIDDEN_SAMPLE])
def test_every_sample_applies_its_suggested_scenario(sample):
    """Issue 12.8: each sample states devices, micro-batches (and accelerator); picking it sets them."""
    suggested = json.loads(models.sample_models()[sample].read_text())["scenario"]
    values = store(devices=7, microbatches=3)
    models.choose_model(values, sample)
    assert (values["devices"], values["microbatches"]) == (suggested["devices"], suggested["microbatches"])
    model = models.current_model(values)
    if "accelerator" in suggested:
        assert values["accelerator"] in ("model default", suggested["accelerator"])
        assert suggested["accelerator"] == model.accelerator or values["accelerator"] == suggested["accelerator"]
    assert values["_scenario_note"].startswith(f"{sample} suggests {suggested['devices']} devices")
    assert values["granularity"] == suggested.get("granularity", "stage")
    config, _ = caps.resolve_config(values)
    # balanced enough to compare schedules: 1F1B's bubble under half. At operator level the bubble
    # is compute idle, and 1F1B leaves a MoE's all-to-all exposed (about half its time on
    # uniform_moe_8), so there the schedule built to hide it, DualPipe, is the yardstick.
    yardstick = "dualpipe" if suggested.get("granularity") == "operator" else "1f1b"
    plan, reason = pl.baseline_plan(config, yardstick)
    assert plan is not None and plan.metrics.bubble_ratio < 0.5, (sample, reason)
    models.choose_model(values, models.UNIFORM)
    assert (values["devices"], values["microbatches"]) == (8, 20)


def test_suggested_scenario_drops_malformed_entries():
    text = json.dumps({"scenario": {"devices": 0, "microbatches": 4, "accelerator": "TPU"}})
    assert models.suggested_scenario(text) == {"microbatches": 4}
    assert models.suggested_scenario("scenario: {devices: 2}") == {"devices": 2}
    assert models.suggested_scenario("{not json") == {}


def test_scenario_summary_names_model_and_cap():
    config, _ = caps.resolve_config(store())
    assert scenario_summary(config, "ignored") == ("uniform pipeline · 8 devices · 20 micro-batches · "
                                                   "memory cap 9 activation units")
    config, _ = caps.resolve_config(model_store(cap_mode=caps.NO_CAP))
    assert scenario_summary(config, "tiny").endswith("memory cap the accelerator's memory")


def test_granularity_reaches_the_scenario_for_models_only():
    values = model_store(granularity="operator")
    config = cfg.base_config(values)
    assert cfg.scenario_from_config(config).granularity == "operator"
    assert scenario_summary(config, "tiny").endswith(" · operator level")
    uniform = cfg.base_config(store(granularity="operator"))   # kept for when a model is chosen again
    assert uniform["granularity"] == "stage" and cfg.scenario_from_config(uniform).granularity == "stage"


# --- jobs -------------------------------------------------------------------------------------------
def test_planner_options_use_one_thread_count():
    options = jobs.plan_options(store(solver="highs", mip_gap=5.0))
    assert options["mip_gap"] == pytest.approx(0.05)
    assert jobs.planner_options(options).threads == jobs.SOLVER_THREADS


def test_exposed_communication_card_only_with_a_communication_stream():
    from opplan import baselines
    from opplan.scenario import Scenario
    from opplan.units import MemoryCap

    uniform = cfg.base_config(store())
    plan = baselines.run_on(cfg.scenario_from_config(dict(uniform, caps=None)), "1f1b")
    assert results.exposed_comm_cards(plan, uniform) == []
    text = (ROOT / "sample_models" / "uniform_moe_8.json").read_text()
    model = models.load_model_text(text, "uniform_moe_8")
    scenario = Scenario.from_options(model, devices=8, microbatches=16, granularity="operator",
                                     memory_cap=MemoryCap((9,)))
    dualpipe, zb = baselines.run_on(scenario, "dualpipe"), baselines.run_on(scenario, "zb-h1")
    config = cfg.base_config(model_store(granularity="operator"))
    (card,) = results.exposed_comm_cards(dualpipe, config, zb)
    assert card.label.startswith("Exposed comm")
    assert float(card.value) == pytest.approx(max(dualpipe.metrics.exposed_communication))
    assert card.delta is not None
    assert any(c.label.startswith("Exposed comm") for c in results.plan_cards(dualpipe, config))


def test_a_sample_suggests_its_granularity():
    values = store()
    text = (ROOT / "sample_models" / "deepseek_v3_moe.json").read_text()
    models.apply_scenario(values, models.suggested_scenario(text), "deepseek_v3_moe", None)
    assert values["granularity"] == "operator" and "operator level" in values["_scenario_note"]
    text = (ROOT / "sample_models" / "llama2_7b.json").read_text()
    models.apply_scenario(values, models.suggested_scenario(text), "llama2_7b", None)
    assert values["granularity"] == "stage"

