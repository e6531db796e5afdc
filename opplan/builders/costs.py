"""Cost conventions shared by every builder (all figures per micro-batch, micro-batch size 1).

* FLOPs: a matmul with P weights applied to T tokens costs 2*T*P forward, the same again for its
  input gradient and again for its weight gradient. Attention cores (QK^T and AV) count all s^2
  positions (no causal halving, as most MFU accounting does); their backward is 2x their forward
  and all of it is input gradient (they hold no weights). Element-wise work (norms, activation
  functions, residual adds, softmax, rotary) is neglected, except where an operator would
  otherwise cost nothing: an embedding lookup and a concat count one FLOP per output element,
  a max pool nine (one per window element).
* Activations are bf16 (2 bytes/element). ``activation_bytes`` is what an operator keeps alive
  from its forward until its weight-gradient pass ends.
* ``param_bytes`` = 16 bytes per parameter (bf16 weight + bf16 grad + fp32 master, Adam m and v).
* Edge ``bytes`` = size of the tensor sent along the edge (the gradient comes back the same size).

Everything is integer arithmetic, so a builder gives the same bytes on every run.
"""
from __future__ import annotations

from opplan.builders.builder import Passes

BF16 = 2                # bytes per activation element
FP32 = 4
BYTES_PER_PARAM = 16    # bf16 weight + bf16 grad + fp32 master + fp32 Adam m and v

# Korthikanti et al. (arXiv 2205.05198) count 5*a*s^2 bytes per layer for the attention scores,
# softmax output and dropout mask. FlashAttention-style kernels do not keep them (the same term
# is what the paper's selective recomputation removes). True = follow the paper's formula.
STORE_ATTENTION_SCORES = False   # we assume FlashAttention-style kernels (recompute the scores)


def passes(forward: int, input_grad: int, weight_grad: int) -> Passes:
    """The three per-pass costs of one operator, in the JSON layout."""
    return {"forward": forward, "input_grad": input_grad, "weight_grad": weight_grad}


def matmul_passes(flops_forward: int, extra_input_grad: int = 0, forward_extra: int = 0) -> Passes:
    """F = matmul + extra forward work, B = matmul input grads + extra, W = matmul weight grads."""
    return passes(flops_forward + forward_extra, flops_forward + extra_input_grad, flops_forward)


def attention_passes(matmul_flops: int, core_flops: int) -> Passes:
    """Projections (``matmul_flops`` forward) plus a weightless attention core whose backward is
    twice its forward, all of it input gradient."""
    return matmul_passes(matmul_flops, extra_input_grad=2 * core_flops, forward_extra=core_flops)


def attention_score_bytes(heads: int, seq: int) -> int:
    """Korthikanti's 5*a*s^2*b term (b = 1), or 0 when scores are not stored."""
    return 5 * heads * seq * seq if STORE_ATTENTION_SCORES else 0


FP8 = 1


def all_to_all_bytes(tokens: int, top_k: int, hidden: int, element_bytes: int = BF16) -> int:
    """Expert-parallel dispatch (or combine) volume: every token goes to its top_k destinations as
    a hidden vector, tokens * top_k * hidden * element_bytes (bf16 unless told)."""
    return tokens * top_k * hidden * element_bytes
