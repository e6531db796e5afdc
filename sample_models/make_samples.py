#!/usr/bin/env python3
"""Generate the sample model files of opplan (format "opplan-model/1").

Run from anywhere:  python sample_models/make_samples.py
It rewrites every sample JSON file next to this script, deterministically (all sizes are computed
in integer arithmetic), after checking each model with ``check`` and, when the ``jsonschema``
package is importable, against ``opplan/schemas/model.schema.json``. Standard library only.

Conventions shared by every builder (all figures are per micro-batch, micro-batch size 1):

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
"""
from __future__ import annotations

import json
import math
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA_PATH = HERE.parent / "opplan" / "schemas" / "model.schema.json"
FORMAT = "opplan-model/1"
PASSES = ("forward", "input_grad", "weight_grad")

BF16 = 2                # bytes per activation element
FP32 = 4
BYTES_PER_PARAM = 16    # bf16 weight + bf16 grad + fp32 master + fp32 Adam m and v

# Korthikanti et al. (arXiv 2205.05198) count 5*a*s^2 bytes per layer for the attention scores,
# softmax output and dropout mask. FlashAttention-style kernels do not keep them (the same term
# is what the paper's selective recomputation removes). True = follow the paper's formula.
STORE_ATTENTION_SCORES = False   # we assume FlashAttention-style kernels (recompute the scores)

# DeepSeek-V3 shards its routed experts over an expert-parallel group; each pipeline rank keeps
# 1/EP of an expert group's parameters and optimizer state.
EXPERT_PARALLEL = 16


# --- small helpers ------------------------------------------------------------------------------
def passes(forward, input_grad, weight_grad):
    return {"forward": forward, "input_grad": input_grad, "weight_grad": weight_grad}


def matmul_passes(flops_forward, extra_input_grad=0, forward_extra=0):
    """F = matmul + extra forward work, B = matmul input grads + extra, W = matmul weight grads."""
    return passes(flops_forward + forward_extra, flops_forward + extra_input_grad, flops_forward)


class Model:
    """Collects operators and edges in insertion order and renders the JSON document."""

    def __init__(self, name, description, accelerator=None):
        self.name, self.description, self.accelerator = name, description, accelerator
        self.operators, self.edges = [], []

    def op(self, op_id, *, flops=None, time=None, comm_bytes=None, activation_bytes=0, param_bytes=0,
           layer=None, group=None):
        given = [(k, v) for k, v in (("time", time), ("flops", flops), ("bytes", comm_bytes)) if v is not None]
        assert len(given) == 1, op_id
        unit, costs = given[0]
        entry = {"id": op_id, "kind": "communication" if unit == "bytes" else "compute", unit: costs,
                 "activation_bytes": activation_bytes, "param_bytes": param_bytes}
        if layer is not None:
            entry["layer"] = layer
        if group is not None:
            entry["group"] = group
        self.operators.append(entry)
        return op_id

    def edge(self, src, dst, nbytes=0):
        self.edges.append({"src": src, "dst": dst, "bytes": nbytes})

    def to_dict(self):
        out = {"format": FORMAT, "name": self.name, "description": self.description}
        if self.accelerator:
            out["accelerator"] = self.accelerator
        out["operators"] = self.operators
        out["edges"] = self.edges
        return out


def attention_score_bytes(heads, seq):
    """Korthikanti's 5*a*s^2*b term (b = 1), or 0 when scores are not stored."""
    return 5 * heads * seq * seq if STORE_ATTENTION_SCORES else 0


# --- 1. uniform chain ----------------------------------------------------------------------------
def uniform_pipeline_8():
    """uniform-8: the synthetic pipeline of the published bubble formulas.

    8 stages s0..s7 in a chain; F = B = W = 1 ms ("time"), activation_bytes = 1 (one activation
    unit per micro-batch per stage), param_bytes = 0, edge bytes 0. Matches
    ``opplan.graph.uniform_chain(8)``.
    """
    m = Model("uniform-8", "uniform pipeline: 8 stages, F=1 B=1 W=1")
    for i in range(8):
        m.op(f"s{i}", time=passes(1, 1, 1), activation_bytes=1, param_bytes=0, layer=i)
    for i in range(7):
        m.edge(f"s{i}", f"s{i + 1}", 0)
    return m.to_dict()


# --- 2. Llama-2-7B -------------------------------------------------------------------------------
def llama2_7b():
    """llama2-7b-like: h=4096, 32 layers, 32 heads, SwiGLU FFN 11008, vocab 32000, s=4096 (6.74B params).

    Operators: embed, L{i}.attn and L{i}.mlp for i = 0..31, head (final RMSNorm + LM head + loss).
    * attn: weights Wq,Wk,Wv,Wo = 4h^2 (+ h RMSNorm). F = 2*s*4h^2 + 4*s^2*h (QK^T and AV, full
      s^2, no causal halving); B = 2*s*4h^2 + 2*(4*s^2*h); W = 2*s*4h^2.
    * mlp: weights gate/up/down = 3*h*f (+ h RMSNorm). F = B = W = 2*s*3*h*f.
      Layer forward = 0.825 + 1.108 = 1.93 TFLOPs.
    * embed: V*h weights; F = s*h (gather), B = 0 (token ids need no gradient), W = s*h (scatter-add).
    * head: h + V*h weights; F = B = W = 2*s*h*V.
    * activations, Korthikanti et al. s*b*h*(34 + 5*a*s/h) bytes per layer, split by the paper's own
      breakdown: attn = attention block 11*s*h + 5*a*s^2 + its RMSNorm 2*s*h;
      mlp = MLP block 19*s*h + its RMSNorm 2*s*h (the paper's 19 is for a 4h GeLU MLP; kept as is).
      embed keeps the int32 token ids (4*s); head keeps its norm and LM-head inputs (2*2*s*h) and
      the fp32 logits for the loss gradient (4*s*V).
    * edges carry the hidden state, s*h*2 bytes.
    """
    s, h, a, layers, f, vocab = 4096, 4096, 32, 32, 11008, 32000
    hidden = s * h * BF16
    m = Model("llama2-7b-like",
              f"dense Llama-2-7B-like decoder: {layers} layers, hidden {h}, {a} heads, SwiGLU FFN {f}, "
              f"vocab {vocab}, seq {s}, micro-batch 1, bf16",
              "H100")
    m.op("embed", flops=passes(s * h, 0, s * h), activation_bytes=4 * s,
         param_bytes=vocab * h * BYTES_PER_PARAM, group="embed")
    prev = "embed"
    attn_mm = 2 * s * 4 * h * h
    core = 4 * s * s * h
    mlp_mm = 2 * s * 3 * h * f
    for i in range(layers):
        attn = m.op(f"L{i}.attn", flops=matmul_passes(attn_mm, extra_input_grad=2 * core, forward_extra=core),
                    activation_bytes=13 * s * h + attention_score_bytes(a, s),
                    param_bytes=(4 * h * h + h) * BYTES_PER_PARAM, layer=i, group="attn")
        mlp = m.op(f"L{i}.mlp", flops=matmul_passes(mlp_mm), activation_bytes=21 * s * h,
                   param_bytes=(3 * h * f + h) * BYTES_PER_PARAM, layer=i, group="mlp")
        m.edge(prev, attn, hidden)
        m.edge(attn, mlp, hidden)
        prev = mlp
    head_mm = 2 * s * h * vocab
    m.op("head", flops=matmul_passes(head_mm), activation_bytes=2 * s * h * BF16 + FP32 * s * vocab,
         param_bytes=(vocab * h + h) * BYTES_PER_PARAM, group="head")
    m.edge(prev, "head", hidden)
    return m.to_dict()


# --- 3. DeepSeek-V3 MoE --------------------------------------------------------------------------
def deepseek_v3_moe():
    """deepseek-v3-moe-8l: 8 of DeepSeek-V3's 61 layers, all MoE (V3's first 3 layers are dense; these
    stand for layers 3-10), h=7168, 128 heads, MLA, 256 routed experts (top-8) + 1 shared expert,
    expert FFN 2048 (SwiGLU), vocab 129280, s=4096.

    Per layer i: L{i}.attn -> L{i}.router -> L{i}.dispatch (all-to-all) -> L{i}.experts{0..3}
    (64 experts each) -> L{i}.combine (all-to-all) -> next layer; and L{i}.attn -> L{i}.shared_expert
    -> next layer. Plus embed and head.
    * attn (MLA, DeepSeek-V2/V3 dims q_lora=1536, kv_lora=512, d_nope=128, d_rope=64, d_v=128):
      matmul weights = h*q_lora + q_lora*a*(d_nope+d_rope) + h*(kv_lora+d_rope)
      + kv_lora*a*(d_nope+d_v) + a*d_v*h = 187.1M; norms 2h + q_lora + kv_lora. It also does the
      residual add and the FFN RMSNorm. Core F = 2*s^2*a*(d_qk + d_v), d_qk = d_nope + d_rope = 192.
      F = 2*s*W_mm + core, B = 2*s*W_mm + 2*core, W = 2*s*W_mm.
      Activations (bf16): s*2*(3h + 2*q_lora + 2*kv_lora + 2*a*d_qk + 2*a*d_v) (norm/projection
      inputs, Q, K, V, output-projection input) + Korthikanti's 5*a*s^2.
    * router: gate h*E; F = B = W = 2*s*h*E; keeps its input (2*s*h) and fp32 affinities (4*s*E).
    * dispatch / combine (communication): bytes = s*top_k*h*2 for forward and input_grad, 0 weight_grad.
    * experts{g}: parameters divided by EXPERT_PARALLEL (experts sharded over an EP group); balanced routing, T = s*top_k/4 = 8192 token-expert pairs per group;
      64 experts * 3*h*f_e weights; F = B = W = 2*T*3*h*f_e; keeps T*2*(2h + 4*f_e)
      (input, gate/up/SiLU/down-input, expert output for the routing-weight gradient).
    * shared_expert: 3*h*f_e weights, all s tokens, F = B = W = 2*s*3*h*f_e; keeps s*2*(h + 4*f_e);
      it adds the residual back, so its input edge carries the normed input and the residual (4*s*h).
    * embed/head as in llama2_7b (head F = 2*s*h*V).
    * edges: hidden state s*h*2; router -> dispatch adds int32 ids and fp32 weights (s*top_k*8);
      dispatch -> experts{g} and experts{g} -> combine carry T*h*2.
    """
    s, h, a, layers, vocab = 4096, 7168, 128, 8, 129280
    q_lora, kv_lora, d_nope, d_rope, d_v = 1536, 512, 128, 64, 128
    n_experts, top_k, f_e, n_groups = 256, 8, 2048, 4
    d_qk = d_nope + d_rope
    assert (s * top_k) % n_groups == 0 and n_experts % n_groups == 0
    tokens_per_group = s * top_k // n_groups
    experts_per_group = n_experts // n_groups
    hidden = s * h * BF16
    m = Model("deepseek-v3-moe-8l",
              f"DeepSeek-V3-like MoE, {layers} of V3's 61 layers: hidden {h}, MLA {a} heads, {n_experts} routed "
              f"experts top-{top_k} in {n_groups} groups + 1 shared, expert FFN {f_e}, vocab {vocab}, seq {s}, bf16",
              "H20")
    mla_mm_params = (h * q_lora + q_lora * a * d_qk + h * (kv_lora + d_rope)
                     + kv_lora * a * (d_nope + d_v) + a * d_v * h)
    attn_params = mla_mm_params + 2 * h + q_lora + kv_lora
    attn_mm = 2 * s * mla_mm_params
    core = 2 * s * s * a * (d_qk + d_v)
    attn_act = s * BF16 * (3 * h + 2 * q_lora + 2 * kv_lora + 2 * a * d_qk + 2 * a * d_v) + attention_score_bytes(a, s)
    router_mm = 2 * s * h * n_experts
    expert_params = 3 * h * f_e
    a2a = s * top_k * h * BF16
    group_bytes = tokens_per_group * h * BF16

    m.op("embed", flops=passes(s * h, 0, s * h), activation_bytes=4 * s,
         param_bytes=vocab * h * BYTES_PER_PARAM, group="embed")
    inputs = ["embed"]
    for i in range(layers):
        p = f"L{i}."
        attn = m.op(p + "attn", flops=matmul_passes(attn_mm, extra_input_grad=2 * core, forward_extra=core),
                    activation_bytes=attn_act, param_bytes=attn_params * BYTES_PER_PARAM, layer=i, group="attn")
        for src in inputs:
            m.edge(src, attn, hidden)
        router = m.op(p + "router", flops=matmul_passes(router_mm),
                      activation_bytes=s * h * BF16 + FP32 * s * n_experts,
                      param_bytes=h * n_experts * BYTES_PER_PARAM, layer=i, group="router")
        dispatch = m.op(p + "dispatch", comm_bytes=passes(a2a, a2a, 0), layer=i, group="dispatch")
        combine_id = p + "combine"
        m.edge(attn, router, hidden)
        m.edge(router, dispatch, hidden + s * top_k * (4 + 4))
        group_ids = []
        for g in range(n_groups):
            eg = m.op(f"{p}experts{g}", flops=matmul_passes(2 * tokens_per_group * expert_params),
                      activation_bytes=tokens_per_group * BF16 * (2 * h + 4 * f_e),
                      param_bytes=experts_per_group * expert_params * BYTES_PER_PARAM // EXPERT_PARALLEL, layer=i,
                      group="experts")
            group_ids.append(eg)
            m.edge(dispatch, eg, group_bytes)
        combine = m.op(combine_id, comm_bytes=passes(a2a, a2a, 0), layer=i, group="combine")
        for eg in group_ids:
            m.edge(eg, combine, group_bytes)
        shared = m.op(p + "shared_expert", flops=matmul_passes(2 * s * expert_params),
                      activation_bytes=s * BF16 * (h + 4 * f_e),
                      param_bytes=expert_params * BYTES_PER_PARAM, layer=i, group="shared_expert")
        m.edge(attn, shared, 2 * hidden)
        inputs = [combine, shared]
    m.op("head", flops=matmul_passes(2 * s * h * vocab), activation_bytes=2 * s * h * BF16 + FP32 * s * vocab,
         param_bytes=(vocab * h + h) * BYTES_PER_PARAM, group="head")
    for src in inputs:
        m.edge(src, "head", hidden)
    return m.to_dict()


# --- 4. multimodal -------------------------------------------------------------------------------
def tower(m, prefix, first, layers, seq, h, heads, ffn, gated, group):
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


def transformer_layer(seq, h, heads, ffn, gated):
    """(flops passes, param count, activation bytes) of one attention+MLP layer.

    Matmul weights 4h^2 + (3 if gated else 2)*h*ffn; F = 2*seq*W + 4*seq^2*h, B = 2*seq*W + 8*seq^2*h,
    W = 2*seq*W. Params add biases and LayerNorms for the GeLU (ViT/BERT) kind (4h + ffn + h + 4h),
    two RMSNorms (2h) for the gated (Llama) kind. Activations: Korthikanti seq*h*34 + 5*a*seq^2.
    """
    mm_params = 4 * h * h + (3 if gated else 2) * h * ffn
    extra = 2 * h if gated else 4 * h + ffn + h + 4 * h
    core = 4 * seq * seq * h
    flops = matmul_passes(2 * seq * mm_params, extra_input_grad=2 * core, forward_extra=core)
    return flops, mm_params + extra, 34 * seq * h + attention_score_bytes(heads, seq)


def multimodal_vlm():
    """vlm-vit-l-text-2b: vision tower + text tower in parallel, fusion, decoder, head.

    * vision.patch_embed: ViT-L/14 at 336 px -> 576 patches; conv 14x14x3 -> 1024 (+ bias, + 576x1024
      position embeddings); F = W = 2*576*588*1024, B = 0 (the image needs no gradient).
    * vision.L0..L23: ViT-L layers, h=1024, 16 heads, GeLU MLP 4096, seq 576 (12.6M params each).
    * text.embed: vocab 32000 x 2048 + 1024x2048 positions; F = s*h, B = 0, W = s*h.
    * text.L0..L11: encoder layers, h=2048, 16 heads, GeLU MLP 8192, seq 1024 (50.4M params each).
    * fusion: LLaVA-1.5-style 2-layer GeLU projector for vision (1024->4096->4096) and a linear
      projector for text (2048->4096), then concat to 576 + 1024 = 1600 tokens.
      F = B = W = 2*576*(1024*4096 + 4096^2) + 2*1024*2048*4096; keeps the projector inputs and
      the GeLU input/output (576*2*(1024 + 2*4096) + 1024*2*2048).
    * dec.L0..L15: Llama-style layers, h=4096, 32 heads, SwiGLU 11008, seq 1600 (202M params each).
    * head: RMSNorm + LM head over vocab 32000 at 1600 positions, F = B = W = 2*1600*4096*32000.
    Layer formulas in ``transformer_layer``; edges carry each tower's hidden state (seq*h*2).
    """
    v_seq, v_h, v_a, v_f, v_layers = 576, 1024, 16, 4096, 24
    t_seq, t_h, t_a, t_f, t_layers, vocab = 1024, 2048, 16, 8192, 12, 32000
    d_seq, d_h, d_a, d_f, d_layers = v_seq + t_seq, 4096, 32, 11008, 16
    m = Model("vlm-vit-l-text-2b",
              f"multimodal: ViT-L/14 vision tower ({v_layers}x{v_h}, {v_seq} patches) and text tower "
              f"({t_layers}x{t_h}, seq {t_seq}) in parallel, projector+concat, decoder ({d_layers}x{d_h}, "
              f"seq {d_seq}), LM head; bf16",
              "A100")
    patch_in = 3 * 14 * 14
    patch_mm = 2 * v_seq * patch_in * v_h
    m.op("vision.patch_embed", flops=passes(patch_mm, 0, patch_mm),
         activation_bytes=v_seq * patch_in * BF16,
         param_bytes=(patch_in * v_h + v_h + v_seq * v_h) * BYTES_PER_PARAM, group="vision")
    vision_out = tower(m, "vision", "vision.patch_embed", v_layers, v_seq, v_h, v_a, v_f, gated=False, group="vision")

    m.op("text.embed", flops=passes(t_seq * t_h, 0, t_seq * t_h), activation_bytes=4 * t_seq,
         param_bytes=(vocab * t_h + t_seq * t_h) * BYTES_PER_PARAM, group="text")
    text_out = tower(m, "text", "text.embed", t_layers, t_seq, t_h, t_a, t_f, gated=False, group="text")

    proj_params = (v_h * d_h + d_h) + (d_h * d_h + d_h) + (t_h * d_h + d_h)
    proj_mm = 2 * v_seq * (v_h * d_h + d_h * d_h) + 2 * t_seq * t_h * d_h
    concat = d_seq * d_h  # one op per element of the concatenated output
    m.op("fusion", flops=passes(proj_mm + concat, proj_mm + concat, proj_mm),
         activation_bytes=v_seq * BF16 * (v_h + 2 * d_h) + t_seq * BF16 * t_h,
         param_bytes=proj_params * BYTES_PER_PARAM, group="fusion")
    m.edge(vision_out, "fusion", v_seq * v_h * BF16)
    m.edge(text_out, "fusion", t_seq * t_h * BF16)

    prev = tower(m, "dec", "fusion", d_layers, d_seq, d_h, d_a, d_f, gated=True, group="decoder")
    m.op("head", flops=matmul_passes(2 * d_seq * d_h * vocab),
         activation_bytes=2 * d_seq * d_h * BF16 + FP32 * d_seq * vocab,
         param_bytes=(vocab * d_h + d_h) * BYTES_PER_PARAM, group="head")
    m.edge(prev, "head", d_seq * d_h * BF16)
    return m.to_dict()


# --- 5. Inception DAG ----------------------------------------------------------------------------
# GoogLeNet (Szegedy et al. 2014, Table 1) blocks 3a..4d:
# (name, spatial, C_in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
INCEPTION_BLOCKS = (
    ("inc3a", 28, 192, 64, 96, 128, 16, 32, 32),
    ("inc3b", 28, 256, 128, 128, 192, 32, 96, 64),
    ("inc4a", 14, 480, 192, 96, 208, 16, 48, 64),
    ("inc4b", 14, 512, 160, 112, 224, 24, 64, 64),
    ("inc4c", 14, 512, 128, 128, 256, 24, 64, 64),
    ("inc4d", 14, 512, 112, 144, 288, 32, 64, 64),
)


def conv(n, hw, k, c_in, c_out):
    """(forward FLOPs, params) of a k x k 'same' conv with hw x hw output: 2*n*hw^2*k^2*c_in*c_out."""
    return 2 * n * hw * hw * k * k * c_in * c_out, k * k * c_in * c_out + c_out


def inception_dag():
    """inception-6-googlenet: GoogLeNet stem + Inception blocks 3a, 3b, 4a, 4b, 4c, 4d + classifier,
    224x224x3 input, batch 32 per micro-batch.

    * conv FLOPs 2*N*H_out*W_out*k^2*C_in*C_out, params k^2*C_in*C_out + C_out; B = W = F for convs
      (except the stem's first conv, whose input image needs no gradient). ReLU and LRN ignored.
    * max pool: 9*N*H_out*W_out*C forward, N*H_out*W_out*C backward (input_grad), no weights.
    * stem: conv7x7/2 3->64 (112^2), maxpool 3x3/2 (56^2), conv1x1 64->64, conv3x3 64->192,
      maxpool 3x3/2 -> 28x28x192; keeps the input image and every intermediate output.
    * each block: branches b1 (1x1), b2 (1x1 reduce -> 3x3), b3 (1x1 reduce -> 5x5),
      b4 (3x3/1 max pool -> 1x1 pool proj), channel counts from the GoogLeNet paper, Table 1;
      each operator keeps its own output (needed by ReLU backward and by the consumer's weight
      gradient). concat counts one op per output element forward and backward and keeps nothing
      (branches write into slices of its output); inc3b.concat also does the 3x3/2 max pool down to
      14x14 and keeps that output.
    * head: global average pool (14x14) + FC 528->1000 + softmax loss; keeps pooled features and
      fp32 logits.
    * edges carry bf16 feature maps N*H*W*C*2.
    """
    n = 32
    m = Model("inception-6-googlenet",
              "branch-rich CNN DAG: GoogLeNet stem, Inception blocks 3a-4d (4 parallel branches each), "
              "classifier; 224x224 input, batch 32, bf16",
              "Ascend910B")

    def fmap(hw, c):
        return n * hw * hw * c

    c1_f, c1_p = conv(n, 112, 7, 3, 64)
    c2_f, c2_p = conv(n, 56, 1, 64, 64)
    c3_f, c3_p = conv(n, 56, 3, 64, 192)
    pool1, pool2 = fmap(56, 64), fmap(28, 192)
    stem_f = c1_f + c2_f + c3_f + 9 * (pool1 + pool2)
    stem_b = c2_f + c3_f + pool1 + pool2
    stem_w = c1_f + c2_f + c3_f
    stem_act = BF16 * (fmap(224, 3) + fmap(112, 64) + pool1 + fmap(56, 64) + fmap(56, 192) + pool2)
    m.op("stem", flops=passes(stem_f, stem_b, stem_w), activation_bytes=stem_act,
         param_bytes=(c1_p + c2_p + c3_p) * BYTES_PER_PARAM, group="stem")
    prev, prev_hw, prev_c = "stem", 28, 192

    for layer, (blk, hw, c_in, n1, r3, n3, r5, n5, pp) in enumerate(INCEPTION_BLOCKS):
        assert (hw, c_in) == (prev_hw, prev_c), blk
        in_bytes = fmap(hw, c_in) * BF16

        def conv_op(op_id, k, ci, co):
            f, p = conv(n, hw, k, ci, co)
            return m.op(f"{blk}.{op_id}", flops=matmul_passes(f), activation_bytes=fmap(hw, co) * BF16,
                        param_bytes=p * BYTES_PER_PARAM, layer=layer, group=blk)

        b1 = conv_op("b1.1x1", 1, c_in, n1)
        b2a = conv_op("b2.1x1", 1, c_in, r3)
        b2b = conv_op("b2.3x3", 3, r3, n3)
        b3a = conv_op("b3.1x1", 1, c_in, r5)
        b3b = conv_op("b3.5x5", 5, r5, n5)
        pool_elems = fmap(hw, c_in)
        b4a = m.op(f"{blk}.b4.pool", flops=passes(9 * pool_elems, pool_elems, 0),
                   activation_bytes=pool_elems * BF16, layer=layer, group=blk)
        b4b = conv_op("b4.1x1", 1, c_in, pp)
        c_out = n1 + n3 + n5 + pp
        cat_elems = fmap(hw, c_out)
        cat_f, cat_b, cat_act, out_hw = cat_elems, cat_elems, 0, hw
        if blk == "inc3b":  # GoogLeNet's max pool 3x3/2 between stages 3 and 4
            out_hw = hw // 2
            down = fmap(out_hw, c_out)
            cat_f, cat_b, cat_act = cat_f + 9 * down, cat_b + down, down * BF16
        cat = m.op(f"{blk}.concat", flops=passes(cat_f, cat_b, 0), activation_bytes=cat_act,
                   layer=layer, group=blk)
        for dst in (b1, b2a, b3a, b4a):
            m.edge(prev, dst, in_bytes)
        m.edge(b2a, b2b, fmap(hw, r3) * BF16)
        m.edge(b3a, b3b, fmap(hw, r5) * BF16)
        m.edge(b4a, b4b, fmap(hw, c_in) * BF16)
        for src, co in ((b1, n1), (b2b, n3), (b3b, n5), (b4b, pp)):
            m.edge(src, cat, fmap(hw, co) * BF16)
        prev, prev_hw, prev_c = cat, out_hw, c_out

    classes = 1000
    fc = 2 * n * prev_c * classes
    avg = fmap(prev_hw, prev_c)
    m.op("head", flops=passes(avg + fc, avg + fc, fc),
         activation_bytes=n * prev_c * BF16 + n * classes * FP32,
         param_bytes=(prev_c * classes + classes) * BYTES_PER_PARAM, group="head")
    m.edge(prev, "head", fmap(prev_hw, prev_c) * BF16)
    return m.to_dict()


SAMPLES = {
    "uniform_pipeline_8.json": uniform_pipeline_8,
    "llama2_7b.json": llama2_7b,
    "deepseek_v3_moe.json": deepseek_v3_moe,
    "multimodal_vlm.json": multimodal_vlm,
    "inception_dag.json": inception_dag,
}


# --- validation ----------------------------------------------------------------------------------
def check(model):
    """Raise ValueError unless ``model`` (a dict) follows the format's rules: unique non-empty ids,
    exactly one cost field with the three pass keys, kind/unit agreement, finite non-negative
    numbers, edges between existing distinct operators (no duplicates), and an acyclic graph (Kahn)."""
    def number(value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{model.get('name')}: {where} must be a finite non-negative number, got {value!r}")

    if model.get("format") != FORMAT:
        raise ValueError(f"format must be {FORMAT!r}")
    ops = model["operators"]
    if not ops:
        raise ValueError("no operators")
    ids = set()
    for op in ops:
        op_id = op.get("id")
        if not isinstance(op_id, str) or not op_id:
            raise ValueError(f"bad operator id {op_id!r}")
        if op_id in ids:
            raise ValueError(f"duplicate operator id {op_id!r}")
        ids.add(op_id)
        units = [u for u in ("time", "flops", "bytes") if u in op]
        if len(units) != 1:
            raise ValueError(f"{op_id}: needs exactly one of time/flops/bytes, got {units}")
        kind = op.get("kind", "compute")
        if kind not in ("compute", "communication"):
            raise ValueError(f"{op_id}: bad kind {kind!r}")
        if (kind, units[0]) in (("compute", "bytes"), ("communication", "flops")):
            raise ValueError(f"{op_id}: a {kind} operator cannot have {units[0]}")
        if set(op[units[0]]) != set(PASSES):
            raise ValueError(f"{op_id}: {units[0]} must have exactly the keys {PASSES}")
        for p in PASSES:
            number(op[units[0]][p], f"{op_id}.{units[0]}.{p}")
        number(op.get("activation_bytes", 0), f"{op_id}.activation_bytes")
        number(op.get("param_bytes", 0), f"{op_id}.param_bytes")
    indegree = {i: 0 for i in ids}
    succ = {i: [] for i in ids}
    seen = set()
    for e in model.get("edges", []):
        src, dst = e["src"], e["dst"]
        if src not in ids or dst not in ids:
            raise ValueError(f"edge {src}->{dst} references an unknown operator")
        if src == dst or (src, dst) in seen:
            raise ValueError(f"edge {src}->{dst} is a self-loop or a duplicate")
        seen.add((src, dst))
        number(e.get("bytes", 0), f"edge {src}->{dst}.bytes")
        succ[src].append(dst)
        indegree[dst] += 1
    ready = [i for i in ids if indegree[i] == 0]
    done = 0
    while ready:
        node = ready.pop()
        done += 1
        for nxt in succ[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if done != len(ids):
        raise ValueError(f"{model.get('name')}: the graph has a cycle")


def schema_validate(model):
    """Validate against model.schema.json when jsonschema is installed; return whether it ran."""
    try:
        import jsonschema
    except ImportError:
        return False
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(model)
    return True


def summary(model):
    ops = model["operators"]
    fwd_flops = sum(op["flops"]["forward"] for op in ops if "flops" in op)
    return (f"{model['name']:<24} {len(ops):>4} ops {len(model['edges']):>4} edges  "
            f"fwd {fwd_flops:.3e} FLOPs  params {sum(op['param_bytes'] for op in ops) / 1e9:9.2f} GB  "
            f"act {sum(op['activation_bytes'] for op in ops) / 1e9:8.2f} GB/micro-batch")


def main():
    schema_ran = False
    for filename, build in SAMPLES.items():
        model = build()
        check(model)
        schema_ran = schema_validate(model) or schema_ran
        path = HERE / filename
        path.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
        check(json.loads(path.read_text(encoding="utf-8")))
        print(f"{filename:<24} {summary(model)}")
    print("schema validation:", "ok" if schema_ran else "skipped (jsonschema not installed)")


if __name__ == "__main__":
    main()
