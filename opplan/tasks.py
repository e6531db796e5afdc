"""Expansion of a problem into the task graph: stages × passes × micro-batches, plus transfers.

Task names use a compact notation that parses back:
  ``2F0``   stage 2, forward, micro-batch 0        ``2B0`` input-gradient   ``2W0`` weight-gradient
  ``2BW0``  full backward (only when ``backward="full"``)
  ``1>2F0`` the forward activation of micro-batch 0 sent from stage 1 to stage 2
  ``2>1B0`` the gradient of micro-batch 0 sent back from stage 2 to stage 1
A transfer task exists only when its two stages sit on different devices and moving the tensor
takes time; it runs on the directed link's own resource, so it overlaps computation.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from opplan.errors import OpplanError
from opplan.problem import Problem

COMPUTE_RE = re.compile(r"^(\d+)(F|BW|B|W)(\d+)$")
TRANSFER_RE = re.compile(r"^(\d+)>(\d+)(F|B)(\d+)$")
FORWARD_PASSES = ("F",)
BACKWARD_PASSES = ("B", "W", "BW")


def compute_key(stage: int, pass_: str, mb: int) -> str:
    return f"{stage}{pass_}{mb}"


def transfer_key(src: int, dst: int, pass_: str, mb: int) -> str:
    return f"{src}>{dst}{pass_}{mb}"


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
    device: list[int]          # compute device, or the sending device for a transfer
    duration: list[float]
    deps: list[list[int]]
    stage: list[int]
    pass_: list[str]           # F, B, W, BW, or "T" for transfers
    mb: list[int]
    alloc: list[float]
    release: list[float]

    def __len__(self) -> int:
        return len(self.keys)

    def compute_resources(self) -> list[str]:
        return [d.name for d in self.problem.devices]

    def is_transfer(self, i: int) -> bool:
        return self.pass_[i] == "T"

    def lookup(self, key: str) -> int:
        try:
            return self.index[key]
        except KeyError:
            raise OpplanError(f"unknown task {key!r} (not in the task graph of this problem)") from None


def build_task_graph(problem: Problem, backward: str = "split") -> TaskGraph:
    """Dependencies: F after its predecessors' F; B after its successors' B and its own F;
    W after its own B. ``backward="full"`` makes B and W one task ``BW``."""
    if backward not in ("split", "full"):
        raise OpplanError(f"backward must be 'split' or 'full', got {backward!r}")
    tg = TaskGraph(problem, backward, [], {}, [], [], [], [], [], [], [], [], [])
    names = [d.name for d in problem.devices]

    def add(key: str, resource: str, device: int, duration: float, stage: int, pass_: str, mb: int,
            alloc: float = 0.0, release: float = 0.0) -> int:
        i = len(tg.keys)
        tg.keys.append(key)
        tg.index[key] = i
        tg.resource.append(resource)
        tg.device.append(device)
        tg.duration.append(duration)
        tg.deps.append([])
        tg.stage.append(stage)
        tg.pass_.append(pass_)
        tg.mb.append(mb)
        tg.alloc.append(alloc)
        tg.release.append(release)
        return i

    stages = problem.stages
    backward_passes = ("B", "W") if backward == "split" else ("BW",)
    for m in range(problem.microbatches):
        for s, st in enumerate(stages):
            dev = st.device
            add(compute_key(s, "F", m), names[dev], dev, st.forward, s, "F", m, alloc=st.activation_bytes)
            for p in backward_passes:
                dur = {"B": st.input_grad, "W": st.weight_grad, "BW": st.input_grad + st.weight_grad}[p]
                add(compute_key(s, p, m), names[dev], dev, dur, s, p, m,
                    release=st.activation_bytes if p in ("W", "BW") else 0.0)
    grad_pass = "B" if backward == "split" else "BW"
    for m in range(problem.microbatches):
        for e in problem.edges:
            src_dev, dst_dev = stages[e.src].device, stages[e.dst].device
            f_src, f_dst = tg.index[compute_key(e.src, "F", m)], tg.index[compute_key(e.dst, "F", m)]
            b_src, b_dst = tg.index[compute_key(e.src, grad_pass, m)], tg.index[compute_key(e.dst, grad_pass, m)]
            if src_dev != dst_dev and e.transfer_ms > 0:
                fwd = add(transfer_key(e.src, e.dst, "F", m), link_resource(problem, src_dev, dst_dev), src_dev,
                          e.transfer_ms, e.src, "T", m)
                tg.deps[fwd].append(f_src)
                tg.deps[f_dst].append(fwd)
                bwd = add(transfer_key(e.dst, e.src, "B", m), link_resource(problem, dst_dev, src_dev), dst_dev,
                          e.transfer_ms, e.dst, "T", m)
                tg.deps[bwd].append(b_dst)
                tg.deps[b_src].append(bwd)
            else:
                tg.deps[f_dst].append(f_src)
                tg.deps[b_src].append(b_dst)
        for s in range(len(stages)):
            f = tg.index[compute_key(s, "F", m)]
            g = tg.index[compute_key(s, grad_pass, m)]
            tg.deps[g].append(f)
            if backward == "split":
                tg.deps[tg.index[compute_key(s, "W", m)]].append(g)
    return tg
