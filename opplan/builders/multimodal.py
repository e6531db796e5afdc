"""Two-tower multimodal model: a vision and a text encoder in parallel, fused, then a decoder."""
from __future__ import annotations

from typing import Any

from opplan.builders import params
from opplan.builders.builder import ModelBuilder
from opplan.builders.costs import BF16, BYTES_PER_PARAM, passes
from opplan.builders.layers import embedding, lm_head, tower

SAMPLE_TOWERS = (24, 1024, 12, 2048, 16, 4096)  # layers x hidden of the vision, text and decoder towers
VIT_SIZES = {(12, 768): "-B", (24, 1024): "-L", (32, 1280): "-H"}  # (layers, hidden) of the published ViTs


def multimodal(vision_layers: int = 24, vision_hidden: int = 1024, vision_heads: int = 16, vision_ffn: int = 4096,
               image_size: int = 336, patch: int = 14, text_layers: int = 12, text_hidden: int = 2048,
               text_heads: int = 16, text_ffn: int = 8192, text_seq: int = 1024, decoder_layers: int = 16,
               decoder_hidden: int = 4096, decoder_heads: int = 32, decoder_ffn: int = 11008, vocab: int = 32000,
               accelerator: str | None = "A100", name: str | None = None) -> dict[str, Any]:
    """Vision tower + text tower in parallel, fusion, decoder, LM head; the defaults are a ViT-L/14
    at 336 px, a 12 x 2048 text encoder and a 16 x 4096 Llama-style decoder (4.37B params) on A100.
    ``name`` defaults to ``vlm-vit-l-text-2b`` for those tower sizes, else
    ``vlm-{vision_layers}x{vision_hidden}-{text_layers}x{text_hidden}-{decoder_layers}x{decoder_hidden}``.

    * vision.patch_embed: (image_size/patch)^2 patches (576 by default); conv patch x patch x 3 ->
      vision_hidden (+ bias, + one position embedding per patch); F = W = 2*patches*(3*patch^2)*h,
      B = 0 (the image needs no gradient).
    * vision.L*: ViT layers (GeLU MLP, LayerNorms, biases), seq = patches.
    * text.embed: vocab x text_hidden + text_seq x text_hidden positions; F = s*h, B = 0, W = s*h.
    * text.L*: encoder layers (GeLU MLP), seq = text_seq.
    * fusion: LLaVA-1.5-style 2-layer GeLU projector for vision (vision_hidden -> decoder_hidden ->
      decoder_hidden) and a linear projector for text (text_hidden -> decoder_hidden), then concat
      to patches + text_seq tokens (one FLOP per output element); keeps the projector inputs and
      the GeLU input/output.
    * dec.L*: Llama-style layers (SwiGLU, RMSNorms), seq = patches + text_seq.
    * head: RMSNorm + LM head over vocab at every decoder position, F = B = W = 2*seq*h*V.
    Layer formulas in ``layers.transformer_layer``; edges carry each tower's bf16 hidden state
    (seq*h*2). vision_layers + text_layers + decoder_layers + 4 operators.
    """
    params.positive_ints(vision_layers=vision_layers, vision_hidden=vision_hidden, vision_heads=vision_heads,
                         vision_ffn=vision_ffn, image_size=image_size, patch=patch, text_layers=text_layers,
                         text_hidden=text_hidden, text_heads=text_heads, text_ffn=text_ffn, text_seq=text_seq,
                         decoder_layers=decoder_layers, decoder_hidden=decoder_hidden, decoder_heads=decoder_heads,
                         decoder_ffn=decoder_ffn, vocab=vocab)
    params.multiple_of("image_size", image_size, "patch", patch)
    for tower_name, h, a in (("vision", vision_hidden, vision_heads), ("text", text_hidden, text_heads),
                             ("decoder", decoder_hidden, decoder_heads)):
        params.multiple_of(f"{tower_name}_hidden", h, f"{tower_name}_heads", a)
    v_seq, v_h, t_seq, t_h, d_h = (image_size // patch) ** 2, vision_hidden, text_seq, text_hidden, decoder_hidden
    d_seq = v_seq + t_seq
    vit = VIT_SIZES.get((vision_layers, v_h), "")  # "ViT-L/14" only when it is one
    towers = (vision_layers, v_h, text_layers, t_h, decoder_layers, d_h)
    if name is None:
        name = "vlm-vit-l-text-2b" if towers == SAMPLE_TOWERS else "vlm-{}x{}-{}x{}-{}x{}".format(*towers)
    m = ModelBuilder(params.text("name", name),
                     f"multimodal: ViT{vit}/{patch} vision tower ({vision_layers}x{v_h}, {v_seq} patches) "
                     f"and text tower ({text_layers}x{t_h}, seq {t_seq}) in parallel, projector+concat, decoder "
                     f"({decoder_layers}x{d_h}, seq {d_seq}), LM head; bf16",
                     params.accelerator(accelerator))
    patch_in = 3 * patch * patch
    patch_mm = 2 * v_seq * patch_in * v_h
    m.op("vision.patch_embed", flops=passes(patch_mm, 0, patch_mm), activation_bytes=v_seq * patch_in * BF16,
         param_bytes=(patch_in * v_h + v_h + v_seq * v_h) * BYTES_PER_PARAM, group="vision")
    vision_out = tower(m, "vision", "vision.patch_embed", vision_layers, v_seq, v_h, vision_heads, vision_ffn,
                       gated=False, group="vision")
    embedding(m, "text.embed", t_seq, t_h, vocab, positions=t_seq, group="text")
    text_out = tower(m, "text", "text.embed", text_layers, t_seq, t_h, text_heads, text_ffn, gated=False,
                     group="text")

    proj_params = (v_h * d_h + d_h) + (d_h * d_h + d_h) + (t_h * d_h + d_h)
    proj_mm = 2 * v_seq * (v_h * d_h + d_h * d_h) + 2 * t_seq * t_h * d_h
    concat = d_seq * d_h  # one op per element of the concatenated output
    m.op("fusion", flops=passes(proj_mm + concat, proj_mm + concat, proj_mm),
         activation_bytes=v_seq * BF16 * (v_h + 2 * d_h) + t_seq * BF16 * t_h,
         param_bytes=proj_params * BYTES_PER_PARAM, group="fusion")
    m.edge(vision_out, "fusion", v_seq * v_h * BF16)
    m.edge(text_out, "fusion", t_seq * t_h * BF16)

    prev = tower(m, "dec", "fusion", decoder_layers, d_seq, d_h, decoder_heads, decoder_ffn, gated=True,
                 group="decoder")
    m.edge(prev, lm_head(m, d_seq, d_h, vocab), d_seq * d_h * BF16)
    return m.to_dict()
