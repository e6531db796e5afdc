"""Concurrent solves in one process (the dashboard's threads) must not disturb each other or the
process: stdout stays stdout, the HiGHS thread-count global changes under a lock."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_concurrent_highs_instances_leave_stdout_working():
    # a fresh process: the first instance of a process is the one made with stdout silenced
    script = textwrap.dedent("""
        import sys, threading
        from opplan.planner import backend_highs

        def make():
            for _ in range(40):
                backend_highs._new_highs()

        threads = [threading.Thread(target=make) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("stdout still works", flush=True)
    """)
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert out.returncode == 0, out.stderr
        assert "stdout still works" in out.stdout


def test_concurrent_planner_runs_agree_on_threads_and_return_plans():
    from concurrent.futures import ThreadPoolExecutor

    from opplan.planner.api import PlannerOptions, solve
    from opplan.scenario import Scenario

    scenario = Scenario.from_options(stages=4, microbatches=6)
    options = PlannerOptions(solver="highs", time_limit=3.0, threads=1)
    with ThreadPoolExecutor(4) as pool:
        plans = list(pool.map(lambda _: solve(scenario, options), range(4)))
    assert all(p.valid and p.provenance.solver for p in plans), [p.provenance for p in plans]
