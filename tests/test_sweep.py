"""The bubble-versus-memory sweep never goes up as memory grows, and the CLI prints it."""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opplan.cli import main
from opplan.planner.api import PlannerOptions
from opplan.planner.sweep import sweep
from opplan.scenario import Scenario
from opplan.units import MemoryCap


@pytest.mark.solver
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(devices=st.sampled_from([2, 4]), extra=st.integers(0, 2), f=st.sampled_from([1.0, 2.0]),
       b=st.sampled_from([1.0, 1.5, 2.0]), w=st.sampled_from([0.5, 1.0]),
       placement=st.sampled_from(["contiguous", "mirrored", "auto"]))
def test_the_trade_off_never_rises_as_memory_grows(devices, extra, f, b, w, placement):
    micro = 2 * (devices + extra)   # even: the mirrored layout sends half from each end
    scenario = Scenario.from_options(stages=devices, microbatches=micro, f=f, b=b, w=w)
    caps = [MemoryCap((c,)) for c in range(2, devices + 3)]
    points = sweep(scenario, caps, PlannerOptions(placement=placement, time_limit=1.0))
    ratios = [p.plan.metrics.bubble_ratio for p in points if p.plan is not None]
    assert ratios, [p.error for p in points]
    assert all(later <= earlier + 1e-9 for earlier, later in zip(ratios, ratios[1:])), ratios
    for point in points:
        if point.plan is not None:
            assert point.plan.valid
            assert max(point.plan.metrics.peak_activations) <= point.cap.values[0] + 1e-9


def test_a_cap_with_no_plan_is_a_row_with_its_reason():
    points = sweep(Scenario.from_options(stages=2, microbatches=4), [MemoryCap((0.5,)), MemoryCap((4,))],
                   PlannerOptions(time_limit=1.0))
    assert points[0].plan is None and "no plan fits the memory caps" in points[0].error
    assert points[1].plan is not None and points[1].plan.valid


def test_cli_sweep_prints_one_row_per_cap(capsys):
    assert main(["sweep", "--stages", "4", "-m", "8", "--caps", "5,3,4", "--time-limit", "2", "--json", "--quiet"]) == 0
    rows = json.loads(capsys.readouterr().out)["points"]
    assert [r["cap"] for r in rows] == [3, 4, 5]      # tightest first
    assert all(r["cap_unit"] == "activations" and "bubble_ratio" in r for r in rows)
    assert rows[0]["bubble_ratio"] >= rows[-1]["bubble_ratio"]


def test_cli_sweep_needs_its_caps(capsys):
    assert main(["sweep", "--stages", "4", "-m", "8"]) == 2
    assert "--caps" in capsys.readouterr().err


def test_compare_page_sweep_is_monotone_and_tightest_first():
    import threading
    from types import SimpleNamespace

    from opplan.ui.config import DEFAULTS, base_config
    from opplan.ui.sweep import sweep_work

    config = base_config(dict(DEFAULTS, devices=4, microbatches=8))
    job = SimpleNamespace(cancel_event=threading.Event(), log=[], result=None)
    options = {"solver": "auto", "objective": "makespan", "time_limit": 2.0, "placement": "mirrored"}
    points = sweep_work(job, config, options, [6.0, 3.0, 4.0])
    assert [p["cap"] for p in points] == [3.0, 4.0, 6.0]
    ratios = [p["bubble_ratio"] for p in points]
    assert all(later <= earlier + 1e-9 for earlier, later in zip(ratios, ratios[1:])), ratios
    assert job.result == points


@pytest.mark.parametrize("args, needle", [
    (["--caps", "abc"], "--caps: memory cap 'abc' is not a number"),
    (["--caps-bytes", "40GB"], "--caps-bytes: a memory cap in bytes needs a model"),
    (["--caps", "3", "--memory-cap-activations", "5"], "drop --memory-cap"),
    (["--caps", ",".join(str(c) for c in range(1, 60))], "at most 50 caps"),
])
def test_cli_sweep_errors_are_one_line_naming_its_flag(capsys, args, needle):
    assert main(["sweep", "--stages", "4", "-m", "8", "--time-limit", "1", "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
