"""A run from start to end: export the plan, start one process per rank, compare the gradients
with a single-process reference, and set the measured iteration time beside the prediction."""
from __future__ import annotations

import os
import pickle
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from opplan.errors import OpplanError
from opplan.io.torch_export import plan_to_torch_csv
from opplan.runtime.config import RunConfig, RunResult, torch_available
from opplan.runtime.predict import median_times, predict
from opplan.schedule import Plan

_OUR_PASS = {"F": "F", "I": "B", "W": "W", "B": "BW"}     # PyTorch's action letter -> ours


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(job: Any, ranks: int) -> None:
    """Run every rank as its own ``python -m opplan.runtime.worker`` process (no re-import of the
    caller's main module, as multiprocessing's spawn would do) and wait for all of them; a failed
    rank stops the others and becomes one line naming it and its error."""
    job_path = Path(job.result_dir) / "job.pkl"
    job_path.write_bytes(pickle.dumps(job))
    logs = [Path(job.result_dir) / f"rank{r}.log" for r in range(ranks)]
    # the workers import the same opplan as this process, wherever it was imported from
    import opplan

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(opplan.__file__).resolve().parents[1]),
                                         *filter(None, [env.get("PYTHONPATH")])])
    procs = []
    for rank, log in enumerate(logs):
        with log.open("wb") as sink:
            procs.append(subprocess.Popen([sys.executable, "-m", "opplan.runtime.worker", str(job_path), str(rank)],
                                          stdout=sink, stderr=subprocess.STDOUT, env=env))
    deadline = time.monotonic() + job.timeout_s + 60
    failed = None
    try:
        while any(p.poll() is None for p in procs) and failed is None:
            failed = next((r for r, p in enumerate(procs) if p.returncode not in (None, 0)), None)
            if time.monotonic() > deadline:
                raise OpplanError(f"the run did not finish within {job.timeout_s + 60:.0f} s")
            time.sleep(0.05)
        failed = failed if failed is not None else next((r for r, p in enumerate(procs) if p.returncode), None)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    if failed is not None:
        lines = [line for line in logs[failed].read_text(errors="replace").splitlines() if line.strip()]
        raise OpplanError(f"rank {failed} failed: {lines[-1].strip() if lines else 'no output'}")


def run_plan(plan: Plan, config: RunConfig) -> RunResult:
    """Run ``plan`` on PyTorch's pipeline runtime and report gradients and times."""
    if not torch_available():
        raise OpplanError("running a plan needs PyTorch: pip install 'opplan[torch]'")
    csv_text = plan_to_torch_csv(plan)          # refuses layouts the runtime cannot hold, and invalid plans
    problem = plan.problem
    ranks = config.ranks if config.ranks is not None else problem.num_devices
    if ranks != problem.num_devices:
        raise OpplanError(f"ranks {ranks} differs from the plan's {problem.num_devices} devices: a rank runs one "
                          "device's row of the schedule", field="ranks")
    from opplan.runtime.model import dtype_of, layers_per_stage, reference_gradients
    from opplan.runtime.worker import RankJob

    layers = layers_per_stage(problem, config.layers_per_unit)
    with tempfile.TemporaryDirectory(prefix="opplan-run-") as tmp:
        csv_path = Path(tmp) / "schedule.csv"
        csv_path.write_text(csv_text, encoding="utf-8")
        job = RankJob(str(csv_path), tmp, _free_port(), ranks, tuple(s.device for s in problem.stages),
                      tuple(layers), problem.microbatches, config.hidden, config.rows, config.seed, config.dtype,
                      config.calibration_iterations, config.iterations, config.timeout_s)
        _start(job, ranks)
        outs = [pickle.loads((Path(tmp) / f"rank{r}.pkl").read_bytes()) for r in range(ranks)]

    ref_loss, ref_grads = reference_gradients(layers, config.hidden, problem.microbatches, config.rows, config.seed,
                                              dtype_of(config.dtype))
    got = {key: grad for out in outs for key, grad in out["grads"].items()}
    if set(got) != set(ref_grads):
        missing = sorted(set(ref_grads) ^ set(got))
        raise OpplanError(f"the run's parameters differ from the reference's, e.g. {missing[0]}")
    max_diff = max(float((got[k] - ref_grads[k]).abs().max()) for k in ref_grads)
    losses = [out["loss"] for out in outs if out["loss"] is not None]
    loss_diff = abs(losses[0] - ref_loss) if losses else float("nan")

    times = median_times(rec for out in outs for rec in out["calibration"])
    link_ms = outs[0]["link_ms"]
    predicted = predict(plan, times, link_ms) if config.calibration_iterations else None
    per_iteration = [(max(out["windows"][k][1] for out in outs) - min(out["windows"][k][0] for out in outs)) * 1000.0
                     for k in range(config.iterations)]
    measured = statistics.median(per_iteration)
    return RunResult(plan.provenance.schedule or "plan", ranks, problem.num_stages, problem.microbatches, layers,
                     max_diff, loss_diff, predicted.makespan if predicted else float("nan"), measured, per_iteration,
                     times, link_ms, _median_iteration_spans(outs, per_iteration))


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
