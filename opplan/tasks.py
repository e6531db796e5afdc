"""Expansion of a problem into the task graph: stages × passes × micro-batches, plus transfers.

Tasks are keyed by their names, ``2F0``, ``2B0``, ``2W0`` (or ``2BW0`` when ``backward="full"``),
and ``1>2F0``, ``2>1B0`` for transfers; the notation and its records are in ``actions.py``.
A transfer task exists only when its two stages sit on different devices and moving the tensor
takes time; it runs on the directed link's own resource, so it overlaps computation. A stage on
the communication stream (an all-to-all) runs its tasks on ``dev0.comm``, beside the device's
compute, so one micro-batch's communication can hide under another's computation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from opplan.actions import compute_name_head, transfer_name
from opplan.bulk import without_gc
from opplan.errors import OpplanError
from opplan.problem import Problem


def link_resource(problem: Problem, src_device: int, dst_device: int) -> str:
    return f"{problem.devices[src_device].name}->{problem.devices[dst_device].name}"


@dataclass
class TaskGraph:
    """Flat arrays (fast to simulate): task i has ``keys[i]``, ``resource[i]``, ``duration[i]``, ...

    ``alloc[i]`` is the activation memory a forward task allocates at its start on its device and
    ``release[i]`` what a weight-gradient (or full backward) task frees at its end.
    """

    problem: Problem
    backward: str
    keys: list[str]
    index: dict[str, int]
    resource: list[str]
    device: list[int]          # the stage's device (whatever its stream), or the sending device for a transfer
    duration: list[float]
    deps: list[list[int]]
    stage: list[int]
    pass_: list[str]           # F, B, W, BW, or "T" for transfers
    mb: list[int]
    alloc: list[float]
    release: list[float]
    succs: list[list[int]] = field(default_factory=list)   # the reverse of ``deps``: who waits for task i

    def __len__(self) -> int:
        return len(self.keys)

    def compute_resources(self) -> list[str]:
        return [d.name for d in self.problem.devices]

    def comm_resources(self) -> list[str]:
        """The communication streams some task runs on (a device's all-to-all stream)."""
        streams = {r for r, p in dict(zip(self.resource, self.pass_)).items() if p != "T"}   # a link runs transfers only
        return sorted(streams - set(self.compute_resources()))

    def is_transfer(self, i: int) -> bool:
        return self.pass_[i] == "T"

    def lookup(self, key: str) -> int:
        try:
            return self.index[key]
        except KeyError:
            raise OpplanError(f"unknown task {key!r} (not in the task graph of this problem)") from None


@without_gc
def build_task_graph(problem: Problem, backward: str = "split") -> TaskGraph:
    """Dependencies: F after its predecessors' F; B after its successors' B and its own F;
    W after its own B. ``backward="full"`` makes B and W one task ``BW``.

    Every micro-batch has the same tasks and dependencies, so one micro-batch is laid out once and
    repeated (list repetition and numpy, not a Python step per task): the compute tasks of every
    micro-batch come first, micro-batch by micro-batch, then the transfers in the same way."""
    if backward not in ("split", "full"):
        raise OpplanError(f"backward must be 'split' or 'full', got {backward!r}")
    one = _one_micro_batch(problem, backward)
    M = problem.microbatches
    digits = [str(m) for m in range(M)]
    keys = [head + d for d in digits for head in one.heads[0]] + [head + d for d in digits for head in one.heads[1]]
    index = dict(zip(keys, range(len(keys))))
    per_mb, per_t = len(one.heads[0]), len(one.heads[1])
    mb = np.concatenate([np.repeat(np.arange(M), per_mb), np.repeat(np.arange(M), per_t)]).tolist()

    def repeated(column: tuple[list, list]) -> list:
        return column[0] * M + column[1] * M

    deps = _every_micro_batch(one.deps, per_mb, per_t, M)
    succs = _every_micro_batch(_successors(one.deps), per_mb, per_t, M)
    return TaskGraph(problem, backward, keys, index, repeated(one.resource), repeated(one.device),
                     repeated(one.duration), deps, repeated(one.stage), repeated(one.pass_), mb,
                     repeated(one.alloc), repeated(one.release), succs)


@dataclass
class _MicroBatch:
    """The tasks of micro-batch 0 as two columns each (compute tasks, transfers); ``deps`` in
    template numbering: compute tasks 0.., then transfers after them."""

    heads: tuple[list[str], list[str]]     # names without the micro-batch's digits
    resource: tuple[list, list]
    device: tuple[list, list]
    duration: tuple[list, list]
    stage: tuple[list, list]
    pass_: tuple[list, list]
    alloc: tuple[list, list]
    release: tuple[list, list]
    deps: list[list[int]]


def _one_micro_batch(problem: Problem, backward: str) -> _MicroBatch:
    """Micro-batch 0's tasks and dependencies, in the order ``build_task_graph`` numbers them."""
    stages = problem.stages
    where = [problem.resource_of(s) for s in range(len(stages))]   # compute or comm stream
    compute: list[tuple] = []      # (head, resource, device, duration, stage, pass, alloc, release)
    offset = []                    # stage s's forward within the micro-batch
    for s, st in enumerate(stages):
        offset.append(len(compute))
        rows = [("F", st.forward, st.activation_bytes, 0.0)]
        if backward == "split":
            rows += [("B", st.input_grad, 0.0, 0.0), ("W", st.weight_grad, 0.0, st.activation_bytes)]
        else:
            rows += [("BW", st.input_grad + st.weight_grad, 0.0, st.activation_bytes)]
        compute += [(compute_name_head(s, p), where[s], st.device, dur, s, p, al, rel) for p, dur, al, rel in rows]
    deps: list[list[int]] = [[] for _ in compute]
    for f in offset:
        deps[f + 1].append(f)               # the gradient pass (B or BW) after its forward
        if backward == "split":
            deps[f + 2].append(f + 1)
    transfers: list[tuple] = []
    for e in problem.edges:
        src_dev, dst_dev = stages[e.src].device, stages[e.dst].device
        f_src, f_dst = offset[e.src], offset[e.dst]
        b_src, b_dst = f_src + 1, f_dst + 1
        if src_dev != dst_dev and e.transfer_ms > 0:
            for head, src_stage, res, dev, before, after in (
                    (transfer_name(e.src, e.dst, "F", ""), e.src, link_resource(problem, src_dev, dst_dev), src_dev,
                     f_src, f_dst),
                    (transfer_name(e.dst, e.src, "B", ""), e.dst, link_resource(problem, dst_dev, src_dev), dst_dev,
                     b_dst, b_src)):
                transfers.append((head, res, dev, e.transfer_ms, src_stage, "T", 0.0, 0.0))
                deps.append([before])
                deps[after].append(len(compute) + len(transfers) - 1)
        else:
            deps[f_dst].append(f_src)
            deps[b_src].append(b_dst)
    columns = [([row[k] for row in compute], [row[k] for row in transfers]) for k in range(8)]
    return _MicroBatch(*columns, deps)


def _successors(deps: list[list[int]]) -> list[list[int]]:
    succs: list[list[int]] = [[] for _ in deps]
    for j, before in enumerate(deps):
        for i in before:
            succs[i].append(j)
    return succs


def _every_micro_batch(links: list[list[int]], per_mb: int, per_t: int, microbatches: int) -> list[list[int]]:
    """Micro-batch 0's links (template numbering) for every micro-batch, in task numbering: each
    micro-batch's compute tasks sit ``per_mb`` after the last one's, its transfers ``per_t``."""
    n_compute = per_mb * microbatches
    template = np.arange(per_mb + per_t)
    base = np.where(template < per_mb, template, n_compute + template - per_mb)
    step = np.where(template < per_mb, per_mb, per_t)
    counts = np.array([len(x) for x in links], dtype=np.int64)
    flat = np.array([i for x in links for i in x], dtype=np.int64)
    m = np.arange(microbatches)[:, None]
    parts, sizes = [], []
    for part in (slice(0, per_mb), slice(per_mb, per_mb + per_t)):
        codes = flat[counts[:part.start].sum():counts[:part.stop].sum()]
        parts.append((base[codes][None, :] + m * step[codes][None, :]).ravel())
        sizes.append(np.tile(counts[part], microbatches))
    values = np.concatenate(parts).tolist()
    ends = np.cumsum(np.concatenate(sizes)).tolist()
    return [values[a:b] for a, b in zip([0] + ends[:-1], ends)]
