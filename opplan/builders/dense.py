"""Dense decoder-only transformer (Llama-2 style): one attention and one MLP operator per layer."""
from __future__ import annotations

from typing import Any

from opplan.builders import params
from opplan.builders.builder import ModelBuilder
from opplan.builders.costs import BF16, BYTES_PER_PARAM, attention_passes, attention_score_bytes, matmul_passes
from opplan.builders.layers import embedding, lm_head

LLAMA2_7B = (32, 4096, 32, 11008, 32000)  # layers, hidden, heads, ffn, vocab


def dense_transformer(layers: int = 32, hidden: int = 4096, heads: int = 32, ffn: int = 11008,
                      vocab: int = 32000, seq: int = 4096, accelerator: str | None = "H100",
                      name: str | None = None) -> dict[str, Any]:
    """A Llama-2-like decoder; the defaults are Llama-2-7B (6.74B params), seq 4096, on H100.
    ``name`` defaults to ``llama2-7b-like`` for Llama-2-7B's sizes, else ``dense-{layers}l-{hidden}h``.

    Operators: embed, L{i}.attn and L{i}.mlp for i < layers, head (final RMSNorm + LM head + loss).
    With h = hidden, s = seq, f = ffn, V = vocab, a = heads:
    * attn: weights Wq,Wk,Wv,Wo = 4h^2 (+ h RMSNorm). F = 2*s*4h^2 + 4*s^2*h (QK^T and AV, full
      s^2, no causal halving); B = 2*s*4h^2 + 2*(4*s^2*h); W = 2*s*4h^2.
    * mlp: SwiGLU, weights gate/up/down = 3*h*f (+ h RMSNorm). F = B = W = 2*s*3*h*f.
    * embed: V*h weights; F = s*h (gather), B = 0, W = s*h (scatter-add). head: F = B = W = 2*s*h*V.
    * activations, Korthikanti et al. s*b*h*(34 + 5*a*s/h) bytes per layer, split by the paper's own
      breakdown: attn = attention block 11*s*h + 5*a*s^2 (0 with FlashAttention-style kernels, the
      default) + its RMSNorm 2*s*h; mlp = MLP block 19*s*h + its RMSNorm 2*s*h (the paper's 19 is
      for a 4h GeLU MLP; kept as is). embed keeps the int32 token ids (4*s); head keeps its norm
      and LM-head inputs (2*2*s*h) and the fp32 logits (4*s*V).
    * edges carry the hidden state, s*h*2 bytes. 2*layers + 2 operators in a chain.
    """
    params.positive_ints(layers=layers, hidden=hidden, heads=heads, ffn=ffn, vocab=vocab, seq=seq)
    params.multiple_of("hidden", hidden, "heads", heads)
    published = (layers, hidden, heads, ffn, vocab) == LLAMA2_7B
    if name is None:
        name = "llama2-7b-like" if published else f"dense-{layers}l-{hidden}h"
    m = ModelBuilder(params.text("name", name),
                     f"dense Llama-2{'-7B' if published else ''}-like decoder: {layers} layers, hidden {hidden}, "
                     f"{heads} heads, SwiGLU FFN {ffn}, vocab {vocab}, seq {seq}, micro-batch 1, bf16",
                     params.accelerator(accelerator))
    s, h = seq, hidden
    prev = embedding(m, "embed", s, h, vocab)
    attn_flops = attention_passes(2 * s * 4 * h * h, 4 * s * s * h)
    mlp_flops = matmul_passes(2 * s * 3 * h * ffn)
    for i in range(layers):
        attn = m.op(f"L{i}.attn", flops=attn_flops, activation_bytes=13 * s * h + attention_score_bytes(heads, s),
                    param_bytes=(4 * h * h + h) * BYTES_PER_PARAM, layer=i, group="attn")
        mlp = m.op(f"L{i}.mlp", flops=mlp_flops, activation_bytes=21 * s * h,
                   param_bytes=(3 * h * ffn + h) * BYTES_PER_PARAM, layer=i, group="mlp")
        m.edge(prev, attn, s * h * BF16)
        m.edge(attn, mlp, s * h * BF16)
        prev = mlp
    m.edge(prev, lm_head(m, s, h, vocab), s * h * BF16)
    return m.to_dict()
