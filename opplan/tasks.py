"""Expansion of a problem into the task graph: stages × passes × micro-batches, plus transfers.

Tasks are keyed by their names, ``2F0``, ``2B0``, ``2W0`` (or ``2BW0`` when ``backward="full"``),
and ``1>2F0``, ``2>1B0`` for transfers; the notation and its records are in ``actions.py``.
A transfer task exists only when its two stages sit on different devices and moving the tensor
takes time; it runs on the directed link's own resource, so it overlaps computation. A stage on
the communication stream (an all-to-all) runs its tasks on ``dev0.comm``, beside the device's
compute, so one micro-batch's communication can hide under another's computation.
"""
from __future__ import annotations

from dataclasses import dataclass

from opplan.actions import compute_name_head, transfer_name
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

    def __len__(self) -> int:
        return len(self.keys)

    def compute_resources(self) -> list[str]:
        return [d.name for d in self.problem.devices]

    def comm_resources(self) -> list[str]:
        """The communication streams some task runs on (a device's all-to-all stream)."""
        return sorted({self.resource[i] for i in range(len(self)) if self.pass_[i] != "T"}
                      - set(self.compute_resources()))

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
    stages = problem.stages
    where = [problem.resource_of(s) for s in range(len(stages))]   # compute or comm stream
    # per stage, the (pass, duration, alloc, release, name head) of its compute tasks, in a fixed order
    templates = []
    for s, st in enumerate(stages):
        rows = [("F", st.forward, st.activation_bytes, 0.0)]
        if backward == "split":
            rows += [("B", st.input_grad, 0.0, 0.0), ("W", st.weight_grad, 0.0, st.activation_bytes)]
        else:
            rows += [("BW", st.input_grad + st.weight_grad, 0.0, st.activation_bytes)]
        templates.append([(*row, compute_name_head(s, row[0])) for row in rows])
    keys, resource, device, duration, stage_of, pass_of, mb_of, alloc, release = ([] for _ in range(9))
    for m in range(problem.microbatches):
        digits = str(m)   # names made in key order: the index below reads them in that order, fast
        for s, st in enumerate(stages):
            dev = st.device
            for p, dur, al, rel, head in templates[s]:
                keys.append(head + digits)
                resource.append(where[s])
                device.append(dev)
                duration.append(dur)
                stage_of.append(s)
                pass_of.append(p)
                mb_of.append(m)
                alloc.append(al)
                release.append(rel)
    n_compute = len(keys)
    deps: list[list[int]] = [[] for _ in range(n_compute)]
    per_mb = sum(len(t) for t in templates)
    offset = []  # offset of stage s's first task within one micro-batch's block
    acc = 0
    for rows in templates:
        offset.append(acc)
        acc += len(rows)
    g_off = 1  # grad pass (B or BW) follows F in every template
    for m in range(problem.microbatches):
        base = m * per_mb
        for s in range(len(stages)):
            f = base + offset[s]
            deps[f + g_off].append(f)
            if backward == "split":
                deps[f + 2].append(f + 1)
        for e in problem.edges:
            src_dev, dst_dev = stages[e.src].device, stages[e.dst].device
            f_src, f_dst = base + offset[e.src], base + offset[e.dst]
            b_src, b_dst = f_src + g_off, f_dst + g_off
            if src_dev != dst_dev and e.transfer_ms > 0:
                for key, src_stage, res, dev, before, after in (
                        (transfer_name(e.src, e.dst, "F", m), e.src, link_resource(problem, src_dev, dst_dev), src_dev,
                         f_src, f_dst),
                        (transfer_name(e.dst, e.src, "B", m), e.dst, link_resource(problem, dst_dev, src_dev), dst_dev,
                         b_dst, b_src)):
                    i = len(keys)
                    keys.append(key)
                    resource.append(res)
                    device.append(dev)
                    duration.append(e.transfer_ms)
                    stage_of.append(src_stage)
                    pass_of.append("T")
                    mb_of.append(m)
                    alloc.append(0.0)
                    release.append(0.0)
                    deps.append([before])
                    deps[after].append(i)
            else:
                deps[f_dst].append(f_src)
                deps[b_src].append(b_dst)
    index = {k: i for i, k in enumerate(keys)}
    tg = TaskGraph(problem, backward, keys, index, resource, device, duration, deps, stage_of, pass_of, mb_of,
                   alloc, release)
    return tg
