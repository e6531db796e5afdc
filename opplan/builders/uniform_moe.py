"""The synthetic MoE pipeline against which operator-level (compute/communication overlap)
schedules are checked: DualPipe's setting with unit costs."""
from __future__ import annotations

from typing import Any

from opplan.builders import params
from opplan.builders.builder import ModelBuilder
from opplan.builders.costs import passes


def uniform_moe(stages: int = 8, name: str | None = None) -> dict[str, Any]:
    """``stages`` identical MoE blocks in a chain, costs as times in ms; block i (``layer`` = i) is

        s{i}.attn (compute, F 1 B 1 W 1) -> s{i}.dispatch (communication, F 1 B 1 W 0)
        -> s{i}.mlp (compute, F 1 B 1 W 1) -> s{i}.combine (communication, F 1 B 1 W 0)

    so 4 * stages operators; a block is 10 ms of F+B+W, 6 of compute and 4 of communication, and
    the balanced cut into ``stages`` stages puts exactly one block on each. Activation: each
    compute operator keeps 1 byte (its own input, alive until its weight gradient), the
    communication operators keep none: 2 bytes per block = one activation unit (total / P).
    No parameters, empty edges. ``name`` defaults to ``uniform-moe-{stages}``.
    """
    params.positive_int("stages", stages)
    name = params.text("name", f"uniform-moe-{stages}" if name is None else name)
    m = ModelBuilder(name, f"uniform MoE pipeline: {stages} stages of compute F=B=W=1 -> all-to-all F=B=1 W=0 "
                           "-> compute F=B=W=1 -> all-to-all F=B=1 W=0")
    prev = None
    for i in range(stages):
        for part, communication in (("attn", False), ("dispatch", True), ("mlp", False), ("combine", True)):
            op = m.op(f"s{i}.{part}", time=passes(1, 1, 0 if communication else 1),
                      activation_bytes=0 if communication else 1, param_bytes=0, layer=i,
                      group="all_to_all" if communication else "compute", communication=communication)
            if prev is not None:
                m.edge(prev, op, 0)
            prev = op
    return m.to_dict()
