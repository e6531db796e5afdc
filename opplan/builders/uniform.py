"""The synthetic chain of the published bubble formulas, as a model file."""
from __future__ import annotations

from typing import Any

from opplan.builders import params
from opplan.builders.builder import ModelBuilder
from opplan.builders.costs import passes


def uniform(stages: int = 8, forward: float = 1, input_grad: float = 1, weight_grad: float = 1,
            activation_bytes: float = 1, name: str | None = None) -> dict[str, Any]:
    """P identical stages s0..s{P-1} in a chain, costs given as times in ms (default F = B = W = 1).

    One activation byte stands for one activation unit (one micro-batch of one stage); no
    parameters and empty edges, so only the schedule matters. The graph is the same as
    ``opplan.graph.uniform_chain``; this builder writes the numbers as given (integers stay
    integers in the file). ``name`` defaults to ``uniform-{stages}``.
    """
    params.positive_int("stages", stages)
    for key, value in (("forward", forward), ("input_grad", input_grad), ("weight_grad", weight_grad),
                       ("activation_bytes", activation_bytes)):
        params.non_negative(key, value)
    name = params.text("name", f"uniform-{stages}" if name is None else name)
    m = ModelBuilder(name, f"uniform pipeline: {stages} stages, F={forward:g} B={input_grad:g} W={weight_grad:g}")
    for i in range(stages):
        m.op(f"s{i}", time=passes(forward, input_grad, weight_grad), activation_bytes=activation_bytes,
             param_bytes=0, layer=i)
    for i in range(stages - 1):
        m.edge(f"s{i}", f"s{i + 1}", 0)
    return m.to_dict()
