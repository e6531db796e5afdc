"""LNS around CP-SAT: neighbourhoods free what they say, plans stay valid, never worse than the warm start."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from problems import unit_chain

from opplan import baselines
from opplan.graph import load_model
from opplan.planner.lns import LnsStats, Neighbourhood, device_window, microbatch_window, solve_lns, time_window
from opplan.scenario import Scenario
from opplan.tasks import build_task_graph
from opplan.units import MemoryCap

pytest.importorskip("ortools")
ROOT = Path(__file__).resolve().parents[1]


def moe_dualpipe(cap: float):
    """DualPipe's plan of uniform_moe_8 at operator level on 4 devices, M = 8 (cap 5 activation units: 145)."""
    scenario = Scenario.from_options(load_model(ROOT / "sample_models" / "uniform_moe_8.json"), devices=4,
                                     microbatches=8, granularity="operator", memory_cap=MemoryCap((cap,), "activations"))
    return baselines.run_on(scenario, "dualpipe")


def test_neighbourhoods_free_exactly_their_window():
    tg = build_task_graph(unit_chain(3, 4))
    hood = microbatch_window(tg, 1, 2)
    assert hood.free == {i for i in range(len(tg)) if tg.mb[i] in (1, 2)}
    assert device_window(tg, 2, 1).free == {i for i in range(len(tg)) if tg.device[i] == 2}
    starts = list(range(len(tg)))
    assert time_window(tg, starts, 5, 3).free == {5, 6, 7}
    with pytest.raises(ValueError):
        Neighbourhood("stages", frozenset(), "not a kind")


def test_lns_improves_a_poor_warm_start_and_the_plan_is_valid():
    problem = unit_chain(3, 6)
    warm = baselines.run("gpipe", problem)   # all forwards, then all backwards: W waits for the end
    assert warm.valid
    stats = LnsStats()
    result = solve_lns(problem, warm, 6.0, stats=stats)
    assert result.plan.valid and result.improved
    assert result.plan.metrics.makespan < warm.metrics.makespan
    assert sum(stats.improved.values()) >= 1


def test_lns_improves_dualpipe_at_operator_level_within_the_cap():
    warm = moe_dualpipe(cap=5)
    assert warm.valid and warm.problem.is_unit_level
    result = solve_lns(warm.problem, warm, 4.0, seed=1)
    assert result.plan.valid and result.plan.metrics.makespan < warm.metrics.makespan
    assert max(result.plan.metrics.peak_activations) <= 5
    values = [value for _, value, _ in result.trace]
    assert values == sorted(values, reverse=True) and values[-1] == result.plan.metrics.makespan


def test_lns_stops_within_a_second_when_cancelled():
    warm = moe_dualpipe(cap=5)   # 145, far above the analytic bound: the search cannot end by itself in 1 s
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    began = time.perf_counter()
    result = solve_lns(warm.problem, warm, 30.0, should_stop=stop.is_set)
    assert time.perf_counter() - began < 5.0
    assert result.status == "cancelled" and result.plan.metrics.makespan <= warm.metrics.makespan


def test_a_warm_start_with_overlapped_pairs_is_searched_member_by_member():
    # DualPipe's order runs F&B pairs: the search moves their members one by one (the model knows
    # single tasks) and returns a valid plan no worse than the warm start
    from opplan.layout import Layout, LayoutKind

    problem = Layout(LayoutKind.MIRRORED, 2, 2).uniform_problem(4, 8, memory_units=6)
    warm = baselines.run("dualpipe", problem)
    assert warm.valid and any("&" in e or "(" in e for seq in warm.order.sequences.values() for e in seq)
    result = solve_lns(problem, warm, 3.0)
    assert result.plan.valid and result.plan.metrics.makespan <= warm.metrics.makespan
