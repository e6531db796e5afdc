"""Mixture-of-experts decoder (DeepSeek-V3 style): MLA attention, router, expert-parallel all-to-all
around routed expert groups, and a shared expert in parallel with them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opplan.builders import params
from opplan.builders.builder import ModelBuilder
from opplan.builders.costs import (
    BF16,
    BYTES_PER_PARAM,
    FP8,
    FP32,
    all_to_all_bytes,
    attention_passes,
    attention_score_bytes,
    matmul_passes,
    passes,
)
from opplan.builders.layers import embedding, lm_head
from opplan.cluster import Cluster
from opplan.errors import OpplanError
from opplan.graph import ModelGraph

# hidden, heads, q_lora, kv_lora, d_nope, d_rope, d_v, experts, top_k, expert_ffn, vocab of DeepSeek-V3
V3_DIMS = (7168, 128, 1536, 512, 128, 64, 128, 256, 8, 2048, 129280)


def moe_transformer(layers: int = 16, hidden: int = 7168, heads: int = 128, q_lora: int = 1536, kv_lora: int = 512,
                    d_nope: int = 128, d_rope: int = 64, d_v: int = 128, experts: int = 256, top_k: int = 8,
                    expert_ffn: int = 2048, expert_groups: int = 4, expert_parallel: int = 64,
                    vocab: int = 129280, seq: int = 4096, accelerator: str | None = "H100",
                    dispatch_bytes: int = FP8, combine_bytes: int = BF16, max_nodes: int | None = 4,
                    name: str | None = None) -> dict[str, Any]:
    """An all-MoE DeepSeek-V3-like decoder; the defaults are 16 of V3's 61 layers (V3's first 3
    are dense; these stand for layers 3-18), 256 routed experts (top-8) + 1 shared, seq 4096, with
    V3's training system (arXiv 2412.19437): 64-way expert parallelism, node-limited routing (a
    token reaches at most 4 nodes), FP8 dispatch and BF16 combine, on H100 (989 TFLOP/s dense
    BF16 and 80 GB, the figures of V3's H800). ``name`` defaults to ``deepseek-v3-moe-{layers}l``
    for V3's sizes, else ``moe-{layers}l-{hidden}h-{experts}e-top{top_k}``.

    Per layer i: L{i}.attn -> L{i}.router -> L{i}.dispatch (all-to-all) -> L{i}.experts{0..G-1}
    (experts/G each) -> L{i}.combine (all-to-all) -> next layer; and L{i}.attn -> L{i}.shared_expert
    -> next layer. Plus embed and head: layers * (5 + expert_groups) + 2 operators.
    With h = hidden, s = seq, a = heads, E = experts, G = expert_groups, f_e = expert_ffn:
    * attn (MLA, low-rank q_lora / kv_lora, d_qk = d_nope + d_rope): matmul weights W_mm =
      h*q_lora + q_lora*a*d_qk + h*(kv_lora+d_rope) + kv_lora*a*(d_nope+d_v) + a*d_v*h; norms
      2h + q_lora + kv_lora (it also does the residual add and the FFN RMSNorm). Core
      F = 2*s^2*a*(d_qk + d_v); F = 2*s*W_mm + core, B = 2*s*W_mm + 2*core, W = 2*s*W_mm.
      Activations (bf16): s*2*(3h + 2*q_lora + 2*kv_lora + 2*a*d_qk + 2*a*d_v) (norm/projection
      inputs, Q, K, V, output-projection input), without the 5*a*s^2 scores (FlashAttention-style).
    * router: gate h*E; F = B = W = 2*s*h*E; keeps its input (2*s*h) and fp32 affinities (4*s*E).
    * dispatch / combine (communication, timed at the cluster's expert-parallel bandwidth):
      k = min(top_k, max_nodes) copies of each token cross the expert-parallel network (one per
      node, forwarded to the node's experts over NVLink; ``max_nodes=None``: all top_k), so a
      volume is s*k*h*bytes. Toward the experts (forward dispatch, backward of combine) the
      elements are ``dispatch_bytes`` (V3: FP8, 1), back (forward combine, backward of dispatch)
      ``combine_bytes`` (V3: BF16, 2): dispatch F = s*k*h*dispatch_bytes, B = s*k*h*combine_bytes;
      combine F = s*k*h*combine_bytes, B = s*k*h*dispatch_bytes; W = 0.
    * experts{g}: balanced routing, T = s*top_k/G token-expert pairs per group; (E/G)*3*h*f_e
      weights (SwiGLU), divided by expert_parallel (each pipeline rank keeps 1/EP of a group's
      parameters and optimizer state); F = B = W = 2*T*3*h*f_e; keeps T*2*(2h + 4*f_e)
      (input, gate/up/SiLU/down-input, expert output for the routing-weight gradient).
    * shared_expert: 3*h*f_e weights, all s tokens, F = B = W = 2*s*3*h*f_e; keeps s*2*(h + 4*f_e);
      it adds the residual back, so its input edge carries the normed input and the residual (4*s*h).
    * embed/head as in ``dense_transformer``.
    * edges: hidden state s*h*2; router -> dispatch adds int32 ids and fp32 weights (s*top_k*8);
      dispatch -> experts{g} and experts{g} -> combine carry T*h*2.
    """
    params.positive_ints(layers=layers, hidden=hidden, heads=heads, q_lora=q_lora, kv_lora=kv_lora, d_nope=d_nope,
                         d_rope=d_rope, d_v=d_v, experts=experts, top_k=top_k, expert_ffn=expert_ffn,
                         expert_groups=expert_groups, expert_parallel=expert_parallel, vocab=vocab, seq=seq,
                         dispatch_bytes=dispatch_bytes, combine_bytes=combine_bytes)
    if max_nodes is not None:
        params.positive_int("max_nodes", max_nodes)
    params.at_most("top_k", top_k, "experts", experts)
    params.multiple_of("experts", experts, "expert_groups", expert_groups)
    params.multiple_of("seq * top_k", seq * top_k, "expert_groups", expert_groups)
    params.at_most("expert_parallel", expert_parallel, "experts / expert_groups", experts // expert_groups)
    s, h, a = seq, hidden, heads
    v3 = (hidden, heads, q_lora, kv_lora, d_nope, d_rope, d_v, experts, top_k, expert_ffn, vocab) == V3_DIMS
    depth = f"{layers} of V3's 61 layers" if v3 and layers <= 61 else f"{layers} layers"
    if name is None:
        name = f"deepseek-v3-moe-{layers}l" if v3 else f"moe-{layers}l-{hidden}h-{experts}e-top{top_k}"
    m = ModelBuilder(params.text("name", name),
                     f"DeepSeek-V3-like MoE, {depth}: hidden {h}, MLA {a} heads, {experts} routed "
                     f"experts top-{top_k} in {expert_groups} groups + 1 shared, expert FFN {expert_ffn}, "
                     f"vocab {vocab}, seq {s}, bf16",
                     params.accelerator(accelerator))
    d_qk = d_nope + d_rope
    mla_mm_params = (h * q_lora + q_lora * a * d_qk + h * (kv_lora + d_rope)
                     + kv_lora * a * (d_nope + d_v) + a * d_v * h)
    attn_flops = attention_passes(2 * s * mla_mm_params, 2 * s * s * a * (d_qk + d_v))
    attn_act = (s * BF16 * (3 * h + 2 * q_lora + 2 * kv_lora + 2 * a * d_qk + 2 * a * d_v)
                + attention_score_bytes(a, s))
    expert_params = 3 * h * expert_ffn
    tokens_per_group = s * top_k // expert_groups
    group_bytes = tokens_per_group * h * BF16
    fan_out = top_k if max_nodes is None else min(top_k, max_nodes)
    to_experts = all_to_all_bytes(s, fan_out, h, dispatch_bytes)
    from_experts = all_to_all_bytes(s, fan_out, h, combine_bytes)
    hidden_bytes = s * h * BF16

    inputs = [embedding(m, "embed", s, h, vocab)]
    for i in range(layers):
        p = f"L{i}."
        attn = m.op(p + "attn", flops=attn_flops, activation_bytes=attn_act,
                    param_bytes=(mla_mm_params + 2 * h + q_lora + kv_lora) * BYTES_PER_PARAM, layer=i, group="attn")
        for src in inputs:
            m.edge(src, attn, hidden_bytes)
        router = m.op(p + "router", flops=matmul_passes(2 * s * h * experts),
                      activation_bytes=s * h * BF16 + FP32 * s * experts,
                      param_bytes=h * experts * BYTES_PER_PARAM, layer=i, group="router")
        dispatch = m.op(p + "dispatch", comm_bytes=passes(to_experts, from_experts, 0), layer=i,
                        group="dispatch")
        m.edge(attn, router, hidden_bytes)
        m.edge(router, dispatch, hidden_bytes + s * top_k * (4 + 4))
        group_ids = []
        for g in range(expert_groups):
            group_ids.append(m.op(
                f"{p}experts{g}", flops=matmul_passes(2 * tokens_per_group * expert_params),
                activation_bytes=tokens_per_group * BF16 * (2 * h + 4 * expert_ffn),
                param_bytes=experts // expert_groups * expert_params * BYTES_PER_PARAM // expert_parallel,
                layer=i, group="experts"))
            m.edge(dispatch, group_ids[-1], group_bytes)
        combine = m.op(p + "combine", comm_bytes=passes(from_experts, to_experts, 0), layer=i,
                       group="combine")
        for eg in group_ids:
            m.edge(eg, combine, group_bytes)
        shared = m.op(p + "shared_expert", flops=matmul_passes(2 * s * expert_params),
                      activation_bytes=s * BF16 * (h + 4 * expert_ffn),
                      param_bytes=expert_params * BYTES_PER_PARAM, layer=i, group="shared_expert")
        m.edge(attn, shared, 2 * hidden_bytes)
        inputs = [combine, shared]
    head = lm_head(m, s, h, vocab)
    for src in inputs:
        m.edge(src, head, hidden_bytes)
    return m.to_dict()


MOE_COMPUTE_GROUPS = ("router", "experts", "shared_expert")


@dataclass(frozen=True)
class MoEBalance:
    """Milliseconds of one MoE layer on one device: its compute (router, routed expert groups,
    shared expert) and its all-to-all (dispatch + combine), for the forward pass and for the
    whole of F + B + W. DeepSeek-V3 overlaps the two, which pays when they are about equal."""

    compute_forward_ms: float
    comm_forward_ms: float
    compute_ms: float
    comm_ms: float

    @property
    def ratio(self) -> float:
        """Compute : communication of the forward pass (DeepSeek-V3 reports about 1 : 1)."""
        return self.compute_forward_ms / self.comm_forward_ms

    @property
    def iteration_ratio(self) -> float:
        """Compute : communication over F + B + W (the all-to-all has no weight gradient)."""
        return self.compute_ms / self.comm_ms


def moe_balance(model: ModelGraph, cluster: Cluster, layer: int = 0, device: int = 0) -> MoEBalance:
    """The compute/communication balance of MoE layer ``layer`` of a ``moe_transformer`` graph,
    timed by ``cluster`` (communication at its expert-parallel bandwidth) on ``device``."""
    compute, comm = [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]
    for op in model.operators:
        if op.layer != layer:
            continue
        into = comm if op.kind == "communication" else compute if op.group in MOE_COMPUTE_GROUPS else None
        if into is not None:
            for k, t in enumerate(cluster.operator_times(op, device)):
                into[k] += t
    if not compute[0] or not comm[0]:
        raise OpplanError(f"model {model.name!r} has no MoE layer {layer} (router/experts and all-to-all operators)")
    return MoEBalance(compute[0], comm[0], sum(compute), sum(comm))
