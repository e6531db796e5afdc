"""Transformer pieces more than one family uses: token embedding, LM head, a chain of layers."""
from __future__ import annotations

from opplan.builders.builder import ModelBuilder, Passes
from opplan.builders.costs import (
    BF16,
    BYTES_PER_PARAM,
    FP32,
    attention_passes,
    attention_score_bytes,
    matmul_passes,
    passes,
)


def embedding(m: ModelBuilder, op_id: str, seq: int, hidden: int, vocab: int, positions: int = 0,
              group: str = "embed") -> str:
    """Token (+ learned position) embedding: F = s*h (gather), B = 0 (token ids need no gradient),
    W = s*h (scatter-add); keeps the int32 token ids (4*s bytes)."""
    return m.op(op_id, flops=passes(seq * hidden, 0, seq * hidden), activation_bytes=4 * seq,
                param_bytes=(vocab * hidden + positions * hidden) * BYTES_PER_PARAM, group=group)


def lm_head(m: ModelBuilder, seq: int, hidden: int, vocab: int) -> str:
    """Final RMSNorm + LM head + loss: h + V*h weights, F = B = W = 2*s*h*V; keeps its norm and
    LM-head inputs (2*2*s*h) and the fp32 logits for the loss gradient (4*s*V)."""
    return m.op("head", flops=matmul_passes(2 * seq * hidden * vocab),
                activation_bytes=2 * seq * hidden * BF16 + FP32 * seq * vocab,
                param_bytes=(vocab * hidden + hidden) * BYTES_PER_PARAM, group="head")


def transformer_layer(seq: int, h: int, heads: int, ffn: int, gated: bool) -> tuple[Passes, int, int]:
    """(flops passes, param count, activation bytes) of one attention+MLP layer.

    Matmul weights 4h^2 + (3 if gated else 2)*h*ffn; F = 2*seq*W + 4*seq^2*h, B = 2*seq*W + 8*seq^2*h,
    W = 2*seq*W. Params add biases and LayerNorms for the GeLU (ViT/BERT) kind (4h + ffn + h + 4h),
    two RMSNorms (2h) for the gated (Llama) kind. Activations: Korthikanti seq*h*34 + 5*a*seq^2.
    """
    mm_params = 4 * h * h + (3 if gated else 2) * h * ffn
    extra = 2 * h if gated else 4 * h + ffn + h + 4 * h
    flops = attention_passes(2 * seq * mm_params, 4 * seq * seq * h)
    return flops, mm_params + extra, 34 * seq * h + attention_score_bytes(heads, seq)


def tower(m: ModelBuilder, prefix: str, first: str, layers: int, seq: int, h: int, heads: int, ffn: int,
          gated: bool, group: str) -> str:
    """A chain of identical transformer layers ``{prefix}.L{i}`` after operator ``first``; returns
    the last operator's id. Each edge carries the layer's bf16 output (seq * h * 2 bytes)."""
    flops, params, act = transformer_layer(seq, h, heads, ffn, gated=gated)
    prev = first
    for i in range(layers):
        cur = m.op(f"{prefix}.L{i}", flops=flops, activation_bytes=act, param_bytes=params * BYTES_PER_PARAM,
                   layer=i, group=group)
        m.edge(prev, cur, seq * h * BF16)
        prev = cur
    return prev
