"""A run from start to end: export the plan, start one process per rank, compare the gradients
with a single-process reference, and set the measured iteration time beside the prediction."""
from __future__ import annotations

import json
import os
import pickle
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opplan.errors import OpplanError
from opplan.io.torch_export import plan_to_torch_csv
from opplan.runtime.config import RunConfig, RunResult, layers_per_stage, torch_available
from opplan.runtime.jobs import PlanJob, RankJob
from opplan.schedule import Plan

_OUR_PASS = {"F": "F", "I": "B", "W": "W", "B": "BW"}     # PyTorch's action letter -> ours


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(job: Any, ranks: int) -> None:
    """Run the ranks: one ``python -m opplan.runtime.worker`` launcher (no re-import of the
    caller's main module, as multiprocessing's spawn would do) that imports torch once and forks
    a process per rank. A failed rank becomes one line naming it and its error."""
    folder = Path(job.result_dir)
    job_path = folder / "job.pkl"
    job_path.write_bytes(pickle.dumps(job))
    # the ranks import the same opplan as this process, wherever it was imported from
    import opplan

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(opplan.__file__).resolve().parents[1]),
                                         *filter(None, [env.get("PYTHONPATH")])])
    with (folder / "launcher.log").open("wb") as sink:
        launcher = subprocess.Popen([sys.executable, "-m", "opplan.runtime.worker", str(job_path)], stdout=sink,
                                    stderr=subprocess.STDOUT, env=env, start_new_session=True)
    limit = job.timeout_s + 120
    try:
        code = launcher.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        if launcher.poll() is None or code is None:
            os.killpg(launcher.pid, signal.SIGKILL)     # the launcher and the ranks it forked
            launcher.wait()
    if code is None:
        raise OpplanError(f"the run did not finish within {limit:.0f} s")
    if code != 0:
        failed = folder / "failed"
        if failed.exists():
            rank = failed.read_text().strip()
            log = folder / f"rank{rank}.log"
            lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
            raise OpplanError(f"rank {rank} failed: {lines[-1].strip() if lines else 'no output'}")
        lines = [line for line in (folder / "launcher.log").read_text(errors="replace").splitlines() if line.strip()]
        raise OpplanError(f"the run failed to start: {lines[-1].strip() if lines else f'exit code {code}'}")


def run_plan(plan: Plan, config: RunConfig) -> RunResult:
    """Run ``plan`` on PyTorch's pipeline runtime and report gradients and times."""
    return run_plans([plan], config)[0]


def run_plans(plans: Sequence[Plan], config: RunConfig) -> list[RunResult]:
    """Run several plans on the same devices one after another in the same rank processes
    (torch is imported and the process group started once), each reported as by ``run_plan``."""
    if not plans:
        raise OpplanError("no plans to run")
    if not torch_available():
        raise OpplanError("running a plan needs PyTorch: pip install 'opplan[torch]'")
    csv_texts = [plan_to_torch_csv(plan) for plan in plans]   # refuses layouts the runtime cannot hold, invalid plans
    devices = plans[0].problem.num_devices
    ranks = config.ranks if config.ranks is not None else devices
    for plan in plans:
        if ranks != plan.problem.num_devices:
            raise OpplanError(f"ranks {ranks} differs from the plan's {plan.problem.num_devices} devices: a rank runs "
                              "one device's row of the schedule", field="ranks")
    layers = [layers_per_stage(plan.problem, config.layers_per_unit) for plan in plans]
    with tempfile.TemporaryDirectory(prefix="opplan-run-") as tmp:
        jobs = []
        for i, (plan, text) in enumerate(zip(plans, csv_texts)):
            path = Path(tmp) / f"plan{i}.csv"
            path.write_text(text, encoding="utf-8")
            jobs.append(PlanJob(str(path), tuple(s.device for s in plan.problem.stages), tuple(layers[i]),
                                plan.problem.microbatches, json.dumps(plan.to_dict())))
        job = RankJob(tuple(jobs), tmp, _free_port(), ranks, config.hidden, config.rows, config.seed, config.dtype,
                      config.calibration_iterations, config.iterations, config.timeout_s)
        _start(job, ranks)
        summaries = [pickle.loads((Path(tmp) / f"plan{i}.pkl").read_bytes()) for i in range(len(plans))]
    return [_result(plan, config, plan_layers, summary) for plan, plan_layers, summary in zip(plans, layers, summaries)]


def _result(plan: Plan, config: RunConfig, layers: list[int], summary: dict[str, Any]) -> RunResult:
    """One plan's measurements: gradients against the reference (compared by the launcher), the
    prediction rank 0 made, and the timed iterations."""
    if "error" in summary:
        raise OpplanError(summary["error"])
    problem, outs = plan.problem, summary["ranks"]
    # predicted by rank 0 after calibrating and before the timed iterations started
    times, overhead_ms, predicted_ms = outs[0]["prediction"]
    link_ms = outs[0]["link_ms"]
    per_iteration = [(max(out["windows"][k][1] for out in outs) - min(out["windows"][k][0] for out in outs)) * 1000.0
                     for k in range(config.iterations)]
    measured = statistics.median(per_iteration)
    return RunResult(plan.provenance.schedule or "plan", len(outs), problem.num_stages, problem.microbatches, layers,
                     summary["max_grad_diff"], summary["loss_diff"], predicted_ms, measured, per_iteration,
                     times, link_ms, overhead_ms, _median_iteration_spans(outs, per_iteration))


def _median_iteration_spans(outs: list[dict[str, Any]], per_iteration: list[float]) -> list[list[Any]]:
    """``[task, rank, start_ms, end_ms]`` of the iteration whose time is the median, from its start."""
    k = sorted(range(len(per_iteration)), key=per_iteration.__getitem__)[len(per_iteration) // 2]
    begin = min(out["windows"][k][0] for out in outs)
    rows = []
    for out in outs:
        start, end = out["windows"][k]
        for stage, kind, mb, t0, t1 in out["spans"]:
            if start <= t0 and t1 <= end:
                rows.append([f"{stage}{_OUR_PASS[kind]}{mb}", out["rank"], (t0 - begin) * 1000.0, (t1 - begin) * 1000.0])
    return sorted(rows, key=lambda row: (row[1], row[2]))
