"""One rank of a run: build this rank's stages, load the exported CSV into PyTorch's runtime, and
execute it — a gradient-check iteration, link and task calibration, rank 0's prediction from the
calibration (made before anything is timed), then the timed iterations.

Each compute action is timed by wrapping the stage's own ``forward_one_chunk``,
``backward_one_chunk`` and ``backward_weight_one_chunk``: the time a rank spends waiting for a
receive is outside the spans, as it is outside the tasks of a plan. Clocks are ``perf_counter``
(CLOCK_MONOTONIC, shared by every process of the machine), so spans of different ranks line up.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.pipelining import PipelineStage
from torch.distributed.pipelining.schedules import _PipelineScheduleRuntime

from opplan.runtime.jobs import PlanJob, RankJob
from opplan.runtime.model import batch, build_stage, dtype_of, loss_fn, reference_gradients

LINK_ROUNDS = 20


class _SpanLog:
    """Wraps a stage's compute methods so that each call is recorded as (stage, kind, mb, t0, t1)."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, str, int, float, float]] = []
        self.on = False

    def wrap(self, stage: PipelineStage) -> None:
        index = stage.stage_index

        def timed(method, kind_of):
            def call(chunk: int, *args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                out = method(chunk, *args, **kwargs)
                if self.on:
                    self.spans.append((index, kind_of(kwargs), chunk, start, time.perf_counter()))
                return out
            return call

        stage.forward_one_chunk = timed(stage.forward_one_chunk, lambda kw: "F")
        stage.backward_one_chunk = timed(stage.backward_one_chunk,
                                         lambda kw: "B" if kw.get("full_backward", True) else "I")
        stage.backward_weight_one_chunk = timed(stage.backward_weight_one_chunk, lambda kw: "W")


def _link_ms(job: RankJob, rank: int, dtype: torch.dtype) -> float:
    """Half the median round trip of one micro-batch's activation between ranks 0 and 1."""
    tensor = torch.zeros(job.rows, job.hidden, dtype=dtype)
    trips = []
    dist.barrier()
    if rank in (0, 1) and job.world > 1:
        peer = 1 - rank
        for _ in range(LINK_ROUNDS):
            start = time.perf_counter()
            if rank == 0:
                dist.send(tensor, peer)
                dist.recv(tensor, peer)
            else:
                dist.recv(tensor, peer)
                dist.send(tensor, peer)
            trips.append(time.perf_counter() - start)
    dist.barrier()
    trips.sort()
    return trips[len(trips) // 2] / 2 * 1000.0 if trips else 0.0


def run_rank(rank: int, job: RankJob) -> None:
    """The body of rank ``rank``; writes its measurements of plan i to ``result_dir/plan{i}-rank{rank}.pkl``."""
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(job.port)
    dist.init_process_group("gloo", rank=rank, world_size=job.world, timeout=timedelta(seconds=job.timeout_s))
    try:
        for index, plan in enumerate(job.plans):
            out = _run(rank, job, plan)
            (Path(job.result_dir) / f"plan{index}-rank{rank}.pkl").write_bytes(pickle.dumps(out))
    finally:
        dist.destroy_process_group()


def _run(rank: int, job: RankJob, plan: PlanJob) -> dict[str, Any]:
    dtype = dtype_of(job.dtype)
    n_stages = len(plan.placement)
    mine = [s for s in range(n_stages) if plan.placement[s] == rank]
    modules = {s: build_stage(s, plan.layers[s], job.hidden, job.seed, dtype) for s in mine}
    stages = [PipelineStage(modules[s], s, n_stages, torch.device("cpu")) for s in mine]
    log = _SpanLog()
    for stage in stages:
        log.wrap(stage)
    schedule = _PipelineScheduleRuntime(stages, plan.microbatches, loss_fn=loss_fn, scale_grads=True)
    schedule._load_csv(plan.csv_path)
    x, y = batch(plan.microbatches, job.rows, job.hidden, job.seed, dtype)
    args = (x,) if 0 in mine else ()
    target = y if n_stages - 1 in mine else None

    def zero_grads() -> None:
        for module in modules.values():
            module.zero_grad(set_to_none=True)

    # 1. the gradient check: the first iteration from zeroed gradients
    losses: list = []
    zero_grads()
    schedule.step(*args, target=target, losses=losses)
    grads = {f"{s}.{name}": p.grad.detach().clone() for s in mine for name, p in modules[s].named_parameters()}
    loss = float(sum(float(v) for v in losses) / len(losses)) if losses else None
    # 2. calibration: one link's latency, then the task times of a few iterations, and the runtime's
    #    own time between two actions where the second waits for nothing from another rank
    link_ms = _link_ms(job, rank, dtype)
    log.on = True
    calibration, gaps = [], []
    for _ in range(job.calibration_iterations):
        zero_grads()
        log.spans = []
        schedule.step(*args, target=target)
        spans = log.spans
        calibration += [(s, kind, (t1 - t0) * 1000.0) for s, kind, _mb, t0, t1 in spans]
        gaps += [(b[3] - a[4]) * 1000.0 for a, b in zip(spans, spans[1:]) if b[1] == "W" or (b[1] == "F" and b[0] == 0)]
    # 3. rank 0 predicts from every rank's calibration, before anything is timed
    gathered: list[Any] = [None] * job.world
    dist.all_gather_object(gathered, {"calibration": calibration, "gaps": gaps})
    prediction = _predict(plan, gathered, link_ms) if rank == 0 else None
    # 4. the timed iterations, started together
    log.spans = []
    windows = []
    for _ in range(job.iterations):
        zero_grads()
        dist.barrier()
        start = time.perf_counter()
        schedule.step(*args, target=target)
        windows.append((start, time.perf_counter()))
    dist.barrier()
    return {"rank": rank, "grads": grads, "loss": loss, "link_ms": link_ms, "prediction": prediction,
            "windows": windows, "spans": log.spans}


def _predict(plan: PlanJob, gathered: list[Any], link_ms: float) -> tuple[dict[str, float], float, float]:
    from opplan.runtime.predict import predict_from_calibration
    from opplan.schedule import Plan

    return predict_from_calibration(Plan.from_dict(json.loads(plan.plan_json)), gathered, link_ms)


def launch_ranks(job: RankJob) -> int:
    """Fork one process per rank from this one, which has imported torch once for all of them
    (importing it in every rank costs more than the whole run on a loaded 2-core machine), and wait.
    A rank that fails stops the others; its number goes to ``result_dir/failed``, its traceback
    to its ``rank{r}.log``. Returns the exit code."""
    children: dict[int, int] = {}
    for rank in range(job.world):
        pid = os.fork()
        if pid == 0:      # the rank: output to its log, and never return into the launcher's code
            code = 1
            try:
                with open(Path(job.result_dir) / f"rank{rank}.log", "wb") as log:
                    os.dup2(log.fileno(), 1)
                    os.dup2(log.fileno(), 2)
                    try:
                        run_rank(rank, job)
                        code = 0
                    except BaseException:
                        traceback.print_exc()
                    finally:
                        sys.stdout.flush()
                        sys.stderr.flush()
            finally:
                os._exit(code)
        children[pid] = rank
    failed = None
    while children:
        pid, status = os.wait()
        rank = children.pop(pid)
        if os.waitstatus_to_exitcode(status) != 0 and failed is None:
            failed = rank
            (Path(job.result_dir) / "failed").write_text(str(rank))
            for other in children:
                os.kill(other, signal.SIGTERM)
    if failed is not None:
        return 1
    for index, plan in enumerate(job.plans):
        _check_against_reference(job, index, plan)
    return 0


def _check_against_reference(job: RankJob, index: int, plan: PlanJob) -> None:
    """Compare plan ``index``'s gradients and loss with one single-process iteration, here in the
    launcher (which has torch), and write ``plan{index}.pkl`` with plain numbers only, so that
    the caller never needs to import torch."""
    folder = Path(job.result_dir)
    outs = [pickle.loads((folder / f"plan{index}-rank{r}.pkl").read_bytes()) for r in range(job.world)]
    ref_loss, ref_grads = reference_gradients(list(plan.layers), job.hidden, plan.microbatches, job.rows, job.seed,
                                              dtype_of(job.dtype))
    got = {key: grad for out in outs for key, grad in out.pop("grads").items()}
    summary: dict[str, Any] = {"ranks": outs}
    if set(got) != set(ref_grads):
        summary["error"] = f"the run's parameters differ from the reference's, e.g. {sorted(set(ref_grads) ^ set(got))[0]}"
    else:
        summary["max_grad_diff"] = max(float((got[k] - ref_grads[k]).abs().max()) for k in ref_grads)
        losses = [out["loss"] for out in outs if out["loss"] is not None]
        summary["loss_diff"] = abs(losses[0] - ref_loss) if losses else float("nan")
    (folder / f"plan{index}.pkl").write_bytes(pickle.dumps(summary))


if __name__ == "__main__":
    raise SystemExit(launch_ranks(pickle.loads(Path(sys.argv[1]).read_bytes())))
