"""Dashboard solves in worker processes: a queue no longer than the cores, visible positions,
cancel (with a "cancelling" state), a closed session cancels its job, and every way a worker can
end (result, error, crash, killed) reaches the page as a result or one line."""
from __future__ import annotations

import os
import time

import pytest

from opplan.errors import OpplanError
from opplan.planner.linear import Progress
from opplan.ui import jobs


# work functions run in the worker, which imports them by name: they live at module level
def report_and_return(job, value):
    job._progress(Progress(0.1, 12.0, 10.0))
    job.log.append("working")
    return {"value": value, "pid": os.getpid()}


def wait_for_cancel(job, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if job.cancel_event.is_set():
            return "stopped early"
        time.sleep(0.02)
    return "ran to the end"


def publish_points(job, count):
    points = []
    for k in range(count):
        points.append(k)
        job.result = points
    return points


def user_error(job):
    raise OpplanError("microbatches must be a positive integer, got 0")


def library_bug(job):
    raise ValueError("boom")


def dies(job):
    os._exit(3)


def niceness(job):
    return os.nice(0)


def ignores_cancel(job):
    time.sleep(60)


def wait_until(predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_work_runs_in_another_process_and_reports_progress_log_and_result():
    job = jobs.start_job("solve", {"x": 1}, {"time_limit": 4.0}, report_and_return, 7, session_alive=lambda: True)
    assert job.wait(30) and job.error is None, job.error
    assert job.result["value"] == 7 and job.result["pid"] != os.getpid()
    assert job.status == jobs.DONE and job.log == ["working"]
    assert [h[1:] for h in job.history] == [(12.0, 10.0)]
    fraction, text = job.progress()
    assert 0 <= fraction <= 0.99 and "of up to 4 s" in text and "best iteration so far 12 · bound 10" in text
    sweep_job = jobs.Job("sweep", "k", {}, {"time_limit": 2.0, "caps": [1, 2, 3]})
    assert sweep_job.time_budget == 6.0


def test_partial_results_arrive_while_the_work_runs():
    job = jobs.start_job("sweep", {}, {}, publish_points, 3)
    assert job.wait(30) and job.result == [0, 1, 2]


@pytest.mark.parametrize("work, expected, crash", [
    (user_error, "microbatches must be a positive integer, got 0", False),
    (library_bug, "internal error: ValueError: boom", True),
    (dies, "ended unexpectedly (exit code 3)", False),
])
def test_every_failure_is_one_line(work, expected, crash):
    job = jobs.start_job("solve", {}, {}, work)
    assert job.wait(30)
    assert job.status == jobs.FAILED and expected in job.error and "\n" not in job.error
    assert (job.crash is not None and "Traceback" in job.crash) == crash


def test_queue_runs_one_job_per_worker_in_order_with_positions():
    pool = jobs.WorkerPool(1)
    first = jobs.start_job("solve", {}, {}, wait_for_cancel, 30, pool=pool)
    assert wait_until(lambda: first.status == jobs.RUNNING)
    second = jobs.start_job("solve", {}, {}, report_and_return, 2, pool=pool)
    third = jobs.start_job("solve", {}, {}, report_and_return, 3, pool=pool)
    assert wait_until(lambda: third.queue_position == 2)
    assert second.status == jobs.QUEUED and second.queue_position == 1
    assert "position 1 in the queue" in second.progress()[1] and second.elapsed == 0.0
    first.cancel()
    assert first.wait(15) and first.result == "stopped early" and first.status == jobs.CANCELLED
    assert second.wait(30) and third.wait(30)
    assert (second.result["value"], third.result["value"]) == (2, 3)
    assert second.finished <= third.started, "first come, first served"


def test_cancelling_while_queued_never_runs():
    pool = jobs.WorkerPool(1)
    first = jobs.start_job("solve", {}, {}, wait_for_cancel, 30, pool=pool)
    queued = jobs.start_job("solve", {}, {}, report_and_return, 1, pool=pool)
    assert wait_until(lambda: queued.queue_position == 1)
    queued.cancel()
    assert queued.wait(5) and queued.result is None and queued.started is None
    first.cancel()
    assert first.wait(15)


def test_cancel_shows_cancelling_then_kills_a_worker_that_does_not_stop(monkeypatch):
    monkeypatch.setattr(jobs, "CANCEL_GRACE", 1.0)
    job = jobs.start_job("solve", {}, {"time_limit": 60}, ignores_cancel)
    assert wait_until(lambda: job.status == jobs.RUNNING)
    job.cancel()
    assert job.status == jobs.CANCELLING and "cancelling" in job.progress()[1]
    began = time.monotonic()
    assert job.wait(15) and time.monotonic() - began < 10
    assert job.status == jobs.FAILED and job.error.startswith("cancelled")


def test_a_closed_session_cancels_its_job(monkeypatch):
    monkeypatch.setattr(jobs, "SESSION_GRACE", 0.5)
    connected = {"yes": True}
    job = jobs.start_job("solve", {}, {}, wait_for_cancel, 60, session_alive=lambda: connected["yes"])
    assert wait_until(lambda: job.status == jobs.RUNNING)
    time.sleep(0.5)
    assert job.status == jobs.RUNNING, "an open session keeps its job"
    connected["yes"] = False
    assert job.wait(15) and job.result == "stopped early" and job.status == jobs.CANCELLED
    assert any("session closed" in line for line in job.log)


def test_workers_run_below_the_server_priority():
    job = jobs.start_job("solve", {}, {}, niceness)
    assert job.wait(30) and job.error is None, job.error
    assert job.result >= min(19, os.nice(0) + 10), "workers yield the CPU to the server"


def test_the_streamlit_side_installs_the_session_probe():
    from opplan.ui import components, session

    assert components.session is session and jobs.SESSION_PROBE is session.session_probe
    assert session.session_probe() is None, "outside a server there is no session to watch"


def test_pool_is_as_large_as_the_cores():
    from opplan.limits import cores

    assert jobs.POOL.capacity == cores()


@pytest.mark.solver
def test_a_real_solve_in_a_worker_is_cached_for_other_pages():
    from opplan.ui import config as cfg
    from opplan.ui import plans

    config = dict(cfg.base_config(dict(cfg.DEFAULTS, devices=4, microbatches=6)))
    options = {"solver": "highs", "objective": "makespan", "time_limit": 3.0, "placement": "contiguous"}
    job = jobs.start_solve(config, options)
    assert job.wait(60) and job.error is None, job.error
    assert job.result.valid and plans.cached_opplan(config, options) is not None
