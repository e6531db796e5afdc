"""A cancel takes effect in every phase: HiGHS runs that ignore it are left behind, the warm-start
phase stops trying rules, the whole planner returns a valid plan soon after the request."""
from __future__ import annotations

import threading
import time

from opplan.planner.api import PlannerOptions, solve
from opplan.planner.backend_highs import ABANDON_AFTER, _run_or_abandon
from opplan.planner.linear import SolveOptions
from opplan.scenario import Scenario


class DeafSolver:
    """Stands in for a HiGHS instance stuck in a phase that never looks at its interrupt flag."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.cancelled = False

    def startSolve(self) -> threading.Thread:
        worker = threading.Thread(target=time.sleep, args=(self.seconds,), daemon=True)
        worker.start()
        return worker

    def cancelSolve(self) -> None:
        self.cancelled = True


def test_a_run_that_ignores_the_cancel_is_abandoned():
    deaf = DeafSolver(30.0)
    began = time.perf_counter()
    finished = _run_or_abandon(deaf, SolveOptions(time_limit=30.0, should_stop=lambda: True))
    assert finished is False and deaf.cancelled
    assert time.perf_counter() - began < ABANDON_AFTER + 5.0   # not the 30 s the run would take


def test_a_run_that_ends_by_itself_is_waited_for():
    quick = DeafSolver(0.2)
    assert _run_or_abandon(quick, SolveOptions(time_limit=30.0, should_stop=lambda: False)) is True
    assert not quick.cancelled


def test_the_planner_returns_a_valid_plan_when_cancelled_mid_run():
    flag = threading.Event()
    threading.Timer(1.0, flag.set).start()
    began = time.perf_counter()
    plan = solve(Scenario.from_options(stages=8, microbatches=20, f=1, b=1.5, w=0.5),
                 PlannerOptions(time_limit=60, should_stop=flag.is_set))
    assert plan.valid
    assert time.perf_counter() - began < 30.0     # long before the 60 s limit (bench/cancel.py times it)
