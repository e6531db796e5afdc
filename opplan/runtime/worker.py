"""One rank of a run: build this rank's stages, load the exported CSV into PyTorch's runtime, and
execute it — a gradient-check iteration, link and task calibration, then the timed iterations.

Each compute action is timed by wrapping the stage's own ``forward_one_chunk``,
``backward_one_chunk`` and ``backward_weight_one_chunk``: the time a rank spends waiting for a
receive is outside the spans, as it is outside the tasks of a plan. Clocks are ``perf_counter``
(CLOCK_MONOTONIC, shared by every process of the machine), so spans of different ranks line up.
"""
from __future__ import annotations

import os
import pickle
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.pipelining import PipelineStage
from torch.distributed.pipelining.schedules import _PipelineScheduleRuntime

from opplan.runtime.model import batch, build_stage, dtype_of, loss_fn

LINK_ROUNDS = 20


@dataclass(frozen=True)
class RankJob:
    """Everything a rank needs, picklable: the CSV path, the stage→rank map, the model's shape."""

    csv_path: str
    result_dir: str
    port: int
    world: int
    placement: tuple[int, ...]
    layers: tuple[int, ...]
    microbatches: int
    hidden: int
    rows: int
    seed: int
    dtype: str
    calibration_iterations: int
    iterations: int
    timeout_s: float


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
    """The body of rank ``rank``; writes its measurements to ``result_dir/rank{rank}.pkl``."""
    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(job.port)
    dist.init_process_group("gloo", rank=rank, world_size=job.world, timeout=timedelta(seconds=job.timeout_s))
    try:
        _run(rank, job)
    finally:
        dist.destroy_process_group()


def _run(rank: int, job: RankJob) -> None:
    dtype = dtype_of(job.dtype)
    n_stages = len(job.placement)
    mine = [s for s in range(n_stages) if job.placement[s] == rank]
    modules = {s: build_stage(s, job.layers[s], job.hidden, job.seed, dtype) for s in mine}
    stages = [PipelineStage(modules[s], s, n_stages, torch.device("cpu")) for s in mine]
    log = _SpanLog()
    for stage in stages:
        log.wrap(stage)
    schedule = _PipelineScheduleRuntime(stages, job.microbatches, loss_fn=loss_fn, scale_grads=True)
    schedule._load_csv(job.csv_path)
    x, y = batch(job.microbatches, job.rows, job.hidden, job.seed, dtype)
    args = (x,) if 0 in mine else ()
    target = y if n_stages - 1 in mine else None

    def step(losses: list | None = None) -> None:
        for module in modules.values():
            module.zero_grad(set_to_none=True)
        schedule.step(*args, target=target, losses=losses)

    # 1. the gradient check: the first iteration from zeroed gradients
    losses: list = []
    step(losses)
    grads = {f"{s}.{name}": p.grad.detach().clone() for s in mine for name, p in modules[s].named_parameters()}
    loss = float(sum(float(v) for v in losses) / len(losses)) if losses else None
    # 2. calibration: one link's latency, then the task times of a few iterations
    link_ms = _link_ms(job, rank, dtype)
    log.on = True
    for _ in range(job.calibration_iterations):
        step()
    calibration = [(s, kind, (t1 - t0) * 1000.0) for s, kind, _mb, t0, t1 in log.spans]
    # 3. the timed iterations, started together
    log.spans = []
    windows = []
    for _ in range(job.iterations):
        dist.barrier()
        start = time.perf_counter()
        step()
        windows.append((start, time.perf_counter()))
    out = {"rank": rank, "grads": grads, "loss": loss, "link_ms": link_ms, "calibration": calibration,
           "windows": windows, "spans": log.spans}
    path = Path(job.result_dir) / f"rank{rank}.pkl"
    path.write_bytes(pickle.dumps(out))


if __name__ == "__main__":
    job_file, rank_text = sys.argv[1], sys.argv[2]
    run_rank(int(rank_text), pickle.loads(Path(job_file).read_bytes()))
