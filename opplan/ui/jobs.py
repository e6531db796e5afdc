"""Planner runs in the background: a :class:`Job` on a worker thread, which a page's polling
fragment reads. The thread only writes the job's fields and never calls Streamlit."""
from __future__ import annotations

import math
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from opplan.errors import OpplanError
from opplan.schedule import Plan
from opplan.ui.config import scenario_from_config
from opplan.ui.plans import options_key, remember_plan

# HiGHS's thread pool is process-wide: once it has started with one thread count, a solve with
# another count fails. Every dashboard solve (in every session) therefore uses this one count.
SOLVER_THREADS = 2


@dataclass
class Job:
    """A long computation on a worker thread. The thread only writes these fields; pages read
    them from a polling fragment."""

    kind: str
    key: str
    config: dict[str, Any]
    options: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    history: list[tuple[float, float, float]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: str | None = None
    crash: str | None = None          # traceback of an unexpected failure (a bug, shown in full)
    finished: float | None = None
    thread: threading.Thread | None = None

    @property
    def done(self) -> bool:
        return self.finished is not None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def time_budget(self) -> float:
        """Seconds the job may take: the time limit, once per cap for a sweep."""
        return float(self.options.get("time_limit", 10.0)) * max(1, len(self.options.get("caps", [0])))

    def progress(self) -> tuple[float, str]:
        """The progress bar's fraction and text: time used, best plan of the whole run, and the
        bound of the placement being solved."""
        incumbent = next((h[1] for h in reversed(self.history) if math.isfinite(h[1])), None)
        bound = next((h[2] for h in reversed(self.history) if math.isfinite(h[2])), None)
        total = self.time_budget
        text = (f"{'planner' if self.kind == 'solve' else 'sweep'} running · {self.elapsed:.1f} s "
                f"of up to {total:.0f} s")
        if incumbent is not None or bound is not None:
            text += " · " + " · ".join(
                part for part in (f"best iteration so far {incumbent:.4g}" if incumbent is not None else "",
                                  f"bound {bound:.4g}" if bound is not None else "") if part)
        return min(0.99, self.elapsed / total), text

    def _progress(self, p: Any) -> None:
        # the planner's own clock restarts per placement; the job's clock does not
        self.history.append((time.monotonic() - self.started, float(p.incumbent), float(p.bound)))

    def _run(self, work: Callable[[Job], Any]) -> None:
        try:
            self.result = work(self)
        except OpplanError as error:
            self.error = str(error)
        except Exception:  # a bug in the library: keep the page alive and show the traceback
            self.crash = traceback.format_exc()
            self.error = "internal error: " + self.crash.strip().splitlines()[-1]
        finally:
            self.finished = time.monotonic()


def start_job(kind: str, config: dict[str, Any], options: dict[str, Any], work: Callable[[Job], Any]) -> Job:
    job = Job(kind, options_key(config, options), config, options)
    job.thread = threading.Thread(target=job._run, args=(work,), name=f"opplan-{kind}", daemon=True)
    job.thread.start()
    return job


def planner_options(options: dict[str, Any], job: Job | None = None) -> Any:
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


def start_solve(config: dict[str, Any], options: dict[str, Any]) -> Job:
    """Run the planner on a worker thread; the finished plan is also cached for other pages."""
    from opplan.planner.api import solve

    def work(job: Job) -> Plan:
        result = solve(scenario_from_config(config), planner_options(options, job))
        if not job.cancel_event.is_set():
            remember_plan(job.key, result)
        return result

    return start_job("solve", config, options, work)
