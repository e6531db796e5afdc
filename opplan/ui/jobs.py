"""Planner runs in the background, in worker processes, so that a solve never holds the
dashboard server's interpreter: pages stay quick to load however many sessions are solving.

A :class:`Job` lives in the server. Its monitor thread waits for a free worker (at most one per
core, first come first served, with a visible queue position), starts the work in a child
process, and copies what the child reports (progress points, log lines, partial results, the
result or the error) into the job's fields, which a page's polling fragment reads. Cancel asks
the child to stop (the planner keeps its best plan); a child that does not stop in time is
killed. A job whose browser session has gone away is cancelled. Nothing here calls Streamlit.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opplan.errors import OpplanError
from opplan.limits import cores
from opplan.schedule import Plan
from opplan.ui.config import scenario_from_config
from opplan.ui.plans import options_key, remember_plan

# Each worker is a fresh process, so every solve may use the same thread count (HiGHS's pool is
# per process); the dashboard keeps one constant count all the same.
SOLVER_THREADS = 2
CANCEL_GRACE = 10.0        # seconds a cancelled worker may take to hand back its best plan before it is killed
SESSION_GRACE = 5.0        # seconds a session may be gone (a reconnect) before its job is cancelled
WORKER_MEMORY_SHARE = 0.5  # address space a worker may take, as a share of the machine's memory
PROGRESS_INTERVAL = 0.2    # seconds between progress points a worker sends (the solver calls back far more often)

QUEUED, RUNNING, CANCELLING, DONE, CANCELLED, FAILED = "queued", "running", "cancelling", "done", "cancelled", "failed"


class WorkerPool:
    """At most ``capacity`` jobs run at once; the others wait in arrival order."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._waiting: list[Job] = []
        self._running: set[int] = set()
        self._changed = threading.Condition()

    def position(self, job: Job) -> int | None:
        """1 for the next job to run, None once it runs (or never queued)."""
        with self._changed:
            return self._waiting.index(job) + 1 if job in self._waiting else None

    @property
    def running(self) -> int:
        with self._changed:
            return len(self._running)

    def wait_turn(self, job: Job) -> bool:
        """Block until ``job`` may run (True) or it is cancelled while waiting (False)."""
        with self._changed:
            self._waiting.append(job)
            try:
                while True:
                    if job.stop_requested():
                        return False
                    if self._waiting[0] is job and len(self._running) < self.capacity:
                        self._running.add(id(job))
                        return True
                    self._changed.wait(0.25)
            finally:
                self._waiting.remove(job)
                self._changed.notify_all()

    def release(self, job: Job) -> None:
        with self._changed:
            self._running.discard(id(job))
            self._changed.notify_all()


POOL = WorkerPool(cores())


@dataclass(eq=False)
class Job:
    """A long computation in a worker process. Only its monitor thread writes these fields;
    pages read them from a polling fragment."""

    kind: str
    key: str
    config: dict[str, Any]
    options: dict[str, Any]
    created: float = field(default_factory=time.monotonic)
    started: float | None = None          # when a worker took it (None while queued)
    history: list[tuple[float, float, float]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: str | None = None
    crash: str | None = None          # traceback of an unexpected failure (a bug, shown in full)
    finished: float | None = None
    thread: threading.Thread | None = None
    session_alive: Callable[[], bool] | None = None   # False once the browser session is gone
    pool: WorkerPool = field(default=POOL, repr=False)
    gone_since: float | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.finished is not None

    @property
    def elapsed(self) -> float:
        """Seconds of work so far (waiting in the queue does not count)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started

    def cancel(self) -> None:
        self.cancel_event.set()

    def stop_requested(self) -> bool:
        """Cancel pressed, or the session gone for longer than :data:`SESSION_GRACE`."""
        if self.cancel_event.is_set():
            return True
        if self.session_alive is not None and not self.session_alive():
            now = time.monotonic()
            self.gone_since = self.gone_since or now
            if now - self.gone_since >= SESSION_GRACE:
                self.log.append("the browser session closed: cancelled")
                self.cancel_event.set()
                return True
        else:
            self.gone_since = None
        return False

    @property
    def queue_position(self) -> int | None:
        return self.pool.position(self) if self.started is None and not self.done else None

    @property
    def status(self) -> str:
        """queued, running, cancelling, then done, cancelled or failed."""
        if self.done:
            return FAILED if self.error else CANCELLED if self.cancel_event.is_set() else DONE
        if self.started is None:
            return QUEUED
        return CANCELLING if self.cancel_event.is_set() else RUNNING

    @property
    def time_budget(self) -> float:
        """Seconds the job may take: the time limit, once per cap for a sweep."""
        return float(self.options.get("time_limit", 10.0)) * max(1, len(self.options.get("caps", [0])))

    def progress(self) -> tuple[float, str]:
        """The progress bar's fraction and text: the queue position while waiting; then time used,
        best plan of the whole run, and the bound of the placement being solved."""
        what = "planner" if self.kind == "solve" else "sweep"
        status = self.status
        if status == QUEUED:
            position = self.queue_position
            return 0.0, (f"{what} waiting for a free solver: position {position or 1} in the queue "
                         f"({self.pool.capacity} solving at a time)")
        incumbent = next((h[1] for h in reversed(self.history) if math.isfinite(h[1])), None)
        bound = next((h[2] for h in reversed(self.history) if math.isfinite(h[2])), None)
        total = self.time_budget
        state = "cancelling, keeping the best plan so far" if status == CANCELLING else "running"
        text = f"{what} {state} · {self.elapsed:.1f} s of up to {total:.0f} s"
        if incumbent is not None or bound is not None:
            text += " · " + " · ".join(
                part for part in (f"best iteration so far {incumbent:.4g}" if incumbent is not None else "",
                                  f"bound {bound:.4g}" if bound is not None else "") if part)
        return min(0.99, self.elapsed / total), text

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job is done (True) or ``timeout`` passes (False)."""
        if self.thread is not None:
            self.thread.join(timeout)
        return self.done

    def _progress(self, p: Any) -> None:
        # the planner's own clock restarts per placement; the job's clock does not
        self.history.append((self.elapsed, float(p.incumbent), float(p.bound)))

    # --- the monitor thread ------------------------------------------------------------------------
    def _monitor(self, work: Callable[..., Any], args: tuple[Any, ...], on_done: Callable[[Job], None] | None) -> None:
        try:
            if not self.pool.wait_turn(self):
                self.log.append("cancelled before it started")
                return
            try:
                self.started = time.monotonic()
                self._run_in_worker(work, args)
            finally:
                self.pool.release(self)
            if on_done is not None and self.error is None:
                on_done(self)
        except Exception:   # a bug here: keep the page alive and show the traceback
            self.crash = traceback.format_exc()
            self.error = "internal error: " + self.crash.strip().splitlines()[-1]
        finally:
            self.finished = time.monotonic()

    def _run_in_worker(self, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
        ctx = _context()
        receiver, sender = ctx.Pipe(duplex=False)
        stop = ctx.Event()
        process = ctx.Process(target=_worker_main, args=(sender, stop, work, args), daemon=True,
                              name=f"{WORKER_NAME}-{self.kind}")
        process.start()
        sender.close()
        cancelled_at: float | None = None
        finished = False
        try:
            while not finished:
                if cancelled_at is None and self.stop_requested():
                    stop.set()
                    cancelled_at = time.monotonic()
                if cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_GRACE and process.is_alive():
                    process.kill()
                    self.log.append(f"the worker did not stop within {CANCEL_GRACE:g} s and was ended")
                try:
                    if receiver.poll(0.1):
                        finished = self._take(receiver.recv())
                except (EOFError, OSError):      # the worker ended without a word: killed, or out of memory
                    process.join(5)
                    if self.result is None and self.error is None:
                        self.error = _lost_worker(process.exitcode, cancelled_at is not None)
                    finished = True
        finally:
            receiver.close()
            process.join(CANCEL_GRACE)
            if process.is_alive():
                process.kill()
                process.join()

    def _take(self, message: tuple[str, Any]) -> bool:
        """Apply one message from the worker; True for the last one."""
        kind, value = message
        if kind == "progress":
            self.history.append((self.elapsed, *value))
        elif kind == "log":
            self.log.append(value)
        elif kind == "partial":
            self.result = value
        elif kind == "result":
            self.result = value
            return True
        elif kind == "error":
            self.error = value
            return True
        elif kind == "crash":
            self.crash = value
            self.error = "internal error: " + value.strip().splitlines()[-1]
            return True
        return False


def _lost_worker(exitcode: int | None, cancelled: bool) -> str:
    if cancelled:
        return "cancelled: the worker was ended before it returned a plan"
    return (f"the solver's worker process ended unexpectedly (exit code {exitcode}); it may have run out of "
            "memory — try fewer micro-batches or a coarser granularity")


# --- the worker process ------------------------------------------------------------------------------
_CONTEXT: Any = None
_CONTEXT_LOCK = threading.Lock()


WORKER_NAME = "opplan-worker"


def _context() -> Any:
    """Worker processes come from a fork server that has imported the planner once, so a worker
    starts in milliseconds, and never as a fork of the threaded server itself."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            _no_main_for_workers()
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["opplan.ui.worker_priority", "opplan.ui.jobs", "opplan.planner.api",
                                        "opplan.ui.sweep"])
            _CONTEXT = ctx
        return _CONTEXT


def _no_main_for_workers() -> None:
    """multiprocessing re-runs the parent's ``__main__`` in a new process; under Streamlit that is
    the page script being run (it would run the page again, in the worker). Our workers need
    nothing from it: leave it out of their preparation data (other processes are untouched)."""
    from multiprocessing import spawn

    original = spawn.get_preparation_data
    if getattr(original, "_opplan", False):
        return

    def preparation_data(name: str) -> dict[str, Any]:
        data = original(name)
        if name.startswith(WORKER_NAME):
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
        return data

    preparation_data._opplan = True  # type: ignore[attr-defined]
    spawn.get_preparation_data = preparation_data


class _Log:
    """``job.log`` in the worker: appending sends the line to the server."""

    def __init__(self, send: Callable[[tuple[str, Any]], None]) -> None:
        self._send = send

    def append(self, line: str) -> None:
        self._send(("log", str(line)))


class WorkerJob:
    """What work functions see in the worker: the same names as a :class:`Job` (``cancel_event``,
    ``log``, ``_progress``, ``result``), each sending to the server."""

    def __init__(self, conn: Any, stop: Any) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.cancel_event = stop
        self.log = _Log(self._send)
        self._last_progress = (-math.inf, None)
        self._result: Any = None

    def _send(self, message: tuple[str, Any]) -> None:
        with self._lock:
            self._conn.send(message)

    def _progress(self, p: Any) -> None:
        point = (float(p.incumbent), float(p.bound))
        now = time.monotonic()
        last_time, last_point = self._last_progress
        if point != last_point and now - last_time >= PROGRESS_INTERVAL:
            self._last_progress = (now, point)
            self._send(("progress", point))

    @property
    def result(self) -> Any:
        return self._result

    @result.setter
    def result(self, value: Any) -> None:
        """Publish a partial result (a sweep's points so far)."""
        self._result = value
        self._send(("partial", value))


def _limit_worker() -> None:
    """Cap the worker's memory, so a runaway solve cannot sink the server (its priority is
    already lowered: it is forked from the fork server, see ``opplan.ui.worker_priority``)."""
    try:
        import resource

        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        limit = int(total * WORKER_MEMORY_SHARE)
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def _worker_main(conn: Any, stop: Any, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
    _limit_worker()
    job = WorkerJob(conn, stop)
    try:
        message: tuple[str, Any] = ("result", work(job, *args))
    except OpplanError as error:
        message = ("error", str(error))
    except MemoryError:
        message = ("error", "the solve needed more memory than a worker may use "
                            f"({WORKER_MEMORY_SHARE:.0%} of the machine's); try fewer micro-batches")
    except BaseException:  # a bug in the library: report it with its traceback
        message = ("crash", traceback.format_exc())
    try:
        job._send(message)
    except (OSError, ValueError):       # the server went away first
        pass
    finally:
        conn.close()


# --- starting jobs ---------------------------------------------------------------------------------
# Set by ``opplan.ui.session`` (a Streamlit module): called when a job starts, it returns a
# function telling whether the starting browser session is still connected, or None.
SESSION_PROBE: Callable[[], Callable[[], bool] | None] | None = None


def _session_probe() -> Callable[[], bool] | None:
    return SESSION_PROBE() if SESSION_PROBE is not None else None


def start_job(kind: str, config: dict[str, Any], options: dict[str, Any], work: Callable[..., Any], *args: Any,
              on_done: Callable[[Job], None] | None = None, pool: WorkerPool | None = None,
              session_alive: Callable[[], bool] | None = None) -> Job:
    """Queue ``work(job, *args)`` for a worker process. ``work`` must be a module-level function
    (it is sent to the worker by name) and ``args`` picklable; in the worker, ``job`` is a
    :class:`WorkerJob`. ``on_done`` runs in the server when the work succeeded."""
    job = Job(kind, options_key(config, options), config, options, pool=pool or POOL,
              session_alive=session_alive if session_alive is not None else _session_probe())
    job.thread = threading.Thread(target=job._monitor, args=(work, args, on_done), name=f"opplan-{kind}",
                                  daemon=True)
    job.thread.start()
    return job


def planner_options(options: dict[str, Any], job: Any = None) -> Any:
    """The planner's options from a job's plain options; with ``job``, progress, cancel and log
    go to it."""
    from opplan.planner.api import PlannerOptions

    return PlannerOptions(
        solver=options["solver"], objective=options["objective"], time_limit=float(options["time_limit"]),
        mip_gap=float(options.get("mip_gap", 0.0)), threads=SOLVER_THREADS, placement=options["placement"],
        progress=job._progress if job else None, should_stop=job.cancel_event.is_set if job else None,
        log=job.log.append if job else None,
    )


def home_options(values: dict[str, Any]) -> dict[str, Any]:
    """The Home demo's planner options: everything automatic, the user's time limit."""
    return {"solver": "auto", "objective": "makespan", "time_limit": float(values["time_limit"]), "placement": "auto"}


def plan_options(values: dict[str, Any]) -> dict[str, Any]:
    """The Plan page's planner options from the store (the gap is entered in percent)."""
    return {"solver": values["solver"], "objective": values["objective"], "time_limit": float(values["time_limit"]),
            "placement": values["placement"], "mip_gap": float(values.get("mip_gap") or 0.0) / 100}


def solve_work(job: Any, config: dict[str, Any], options: dict[str, Any]) -> Plan:
    """The planner on one scenario (runs in a worker)."""
    from opplan.planner.api import solve

    return solve(scenario_from_config(config), planner_options(options, job))


def _remember(job: Job) -> None:
    if job.result is not None and not job.cancel_event.is_set():
        remember_plan(job.key, job.result)


def start_solve(config: dict[str, Any], options: dict[str, Any]) -> Job:
    """Run the planner in a worker; the finished plan is also cached for other pages."""
    return start_job("solve", config, options, solve_work, config, options, on_done=_remember)
