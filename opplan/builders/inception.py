"""Branch-rich CNN DAG: GoogLeNet's stem and Inception blocks (four parallel branches each)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opplan.builders import params
from opplan.builders.builder import ModelBuilder
from opplan.builders.costs import BF16, BYTES_PER_PARAM, FP32, matmul_passes, passes


@dataclass(frozen=True)
class InceptionBlock:
    """One row of GoogLeNet's Table 1: output channels of each branch; ``pool_after`` = a 3x3/2
    max pool halves the feature map after the block."""

    name: str
    n1x1: int
    reduce3x3: int
    n3x3: int
    reduce5x5: int
    n5x5: int
    pool_proj: int
    pool_after: bool = False

    @property
    def out_channels(self) -> int:
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj


# Szegedy et al. 2014, Table 1: blocks 3a..5b (input 28x28x192 after the stem)
GOOGLENET_BLOCKS = (
    InceptionBlock("inc3a", 64, 96, 128, 16, 32, 32),
    InceptionBlock("inc3b", 128, 128, 192, 32, 96, 64, pool_after=True),
    InceptionBlock("inc4a", 192, 96, 208, 16, 48, 64),
    InceptionBlock("inc4b", 160, 112, 224, 24, 64, 64),
    InceptionBlock("inc4c", 128, 128, 256, 24, 64, 64),
    InceptionBlock("inc4d", 112, 144, 288, 32, 64, 64),
    InceptionBlock("inc4e", 256, 160, 320, 32, 128, 128, pool_after=True),
    InceptionBlock("inc5a", 256, 160, 320, 32, 128, 128),
    InceptionBlock("inc5b", 384, 192, 384, 48, 128, 128),
)
OPS_PER_BLOCK = 8  # 5 convs + 1 pool + 1 pool-projection conv + concat


def fmap(n: int, side: int, c: int) -> int:
    """Elements of a batch of side x side x c feature maps."""
    return n * side * side * c


def conv(n: int, hw: int, k: int, c_in: int, c_out: int) -> tuple[int, int]:
    """(forward FLOPs, params) of a k x k 'same' conv with hw x hw output: 2*n*hw^2*k^2*c_in*c_out."""
    return 2 * n * hw * hw * k * k * c_in * c_out, k * k * c_in * c_out + c_out


def inception(blocks: int = 6, batch: int = 32, classes: int = 1000, accelerator: str | None = "Ascend910B",
              name: str | None = None) -> dict[str, Any]:
    """GoogLeNet stem + its first ``blocks`` Inception blocks (of 3a..5b; the default 6 is 3a-4d)
    + classifier, 224x224x3 input, ``batch`` images per micro-batch, on Ascend 910B.
    ``name`` defaults to ``inception-{blocks}-googlenet``.

    * conv FLOPs 2*N*H_out*W_out*k^2*C_in*C_out, params k^2*C_in*C_out + C_out; B = W = F for convs
      (except the stem's first conv, whose input image needs no gradient). ReLU and LRN ignored.
    * max pool: 9*N*H_out*W_out*C forward, N*H_out*W_out*C backward (input_grad), no weights.
    * stem: conv7x7/2 3->64 (112^2), maxpool 3x3/2 (56^2), conv1x1 64->64, conv3x3 64->192,
      maxpool 3x3/2 -> 28x28x192; keeps the input image and every intermediate output.
    * each block: branches b1 (1x1), b2 (1x1 reduce -> 3x3), b3 (1x1 reduce -> 5x5),
      b4 (3x3/1 max pool -> 1x1 pool proj), channel counts from the GoogLeNet paper, Table 1;
      each operator keeps its own output (needed by ReLU backward and by the consumer's weight
      gradient). concat counts one op per output element forward and backward and keeps nothing
      (branches write into slices of its output); after 3b and 4e it also does GoogLeNet's 3x3/2
      max pool and keeps that output.
    * head: global average pool + FC C->classes + softmax loss; keeps pooled features and fp32 logits.
    * edges carry bf16 feature maps N*H*W*C*2. 8*blocks + 2 operators.
    """
    params.positive_ints(blocks=blocks, batch=batch, classes=classes)
    params.at_most("blocks", blocks, "GoogLeNet's Inception blocks", len(GOOGLENET_BLOCKS))
    chosen = GOOGLENET_BLOCKS[:blocks]
    n = batch
    span = "-".join(dict.fromkeys((chosen[0].name[3:], chosen[-1].name[3:])))  # "3a-4d", or "3a"
    m = ModelBuilder(params.text("name", f"inception-{blocks}-googlenet" if name is None else name),
                     f"branch-rich CNN DAG: GoogLeNet stem, Inception blocks {span} (4 parallel branches each), "
                     f"classifier; 224x224 input, batch {n}, bf16",
                     params.accelerator(accelerator))

    c1_f, c1_p = conv(n, 112, 7, 3, 64)
    c2_f, c2_p = conv(n, 56, 1, 64, 64)
    c3_f, c3_p = conv(n, 56, 3, 64, 192)
    pool1, pool2 = fmap(n, 56, 64), fmap(n, 28, 192)
    stem_act = BF16 * (fmap(n, 224, 3) + fmap(n, 112, 64) + pool1 + fmap(n, 56, 64) + fmap(n, 56, 192) + pool2)
    prev = m.op("stem", flops=passes(c1_f + c2_f + c3_f + 9 * (pool1 + pool2), c2_f + c3_f + pool1 + pool2,
                                     c1_f + c2_f + c3_f),
                activation_bytes=stem_act, param_bytes=(c1_p + c2_p + c3_p) * BYTES_PER_PARAM, group="stem")
    hw, c_in = 28, 192
    for layer, blk in enumerate(chosen):
        prev, hw, c_in = _block(m, n, blk, layer, prev, hw, c_in)

    fc = 2 * n * c_in * classes
    avg = fmap(n, hw, c_in)
    head = m.op("head", flops=passes(avg + fc, avg + fc, fc), activation_bytes=n * c_in * BF16 + n * classes * FP32,
                param_bytes=(c_in * classes + classes) * BYTES_PER_PARAM, group="head")
    m.edge(prev, head, fmap(n, hw, c_in) * BF16)
    return m.to_dict()


def _block(m: ModelBuilder, n: int, blk: InceptionBlock, layer: int, prev: str, hw: int, c_in: int
           ) -> tuple[str, int, int]:
    """Add one Inception block fed by ``prev`` (an hw x hw x c_in map); returns its concat's id and
    the output map's side and channels."""
    def conv_op(op_id: str, k: int, ci: int, co: int) -> str:
        f, p = conv(n, hw, k, ci, co)
        return m.op(f"{blk.name}.{op_id}", flops=matmul_passes(f), activation_bytes=fmap(n, hw, co) * BF16,
                    param_bytes=p * BYTES_PER_PARAM, layer=layer, group=blk.name)

    b1 = conv_op("b1.1x1", 1, c_in, blk.n1x1)
    b2a = conv_op("b2.1x1", 1, c_in, blk.reduce3x3)
    b2b = conv_op("b2.3x3", 3, blk.reduce3x3, blk.n3x3)
    b3a = conv_op("b3.1x1", 1, c_in, blk.reduce5x5)
    b3b = conv_op("b3.5x5", 5, blk.reduce5x5, blk.n5x5)
    pool_elems = fmap(n, hw, c_in)
    b4a = m.op(f"{blk.name}.b4.pool", flops=passes(9 * pool_elems, pool_elems, 0),
               activation_bytes=pool_elems * BF16, layer=layer, group=blk.name)
    b4b = conv_op("b4.1x1", 1, c_in, blk.pool_proj)
    c_out = blk.out_channels
    cat_f = cat_b = fmap(n, hw, c_out)
    cat_act, out_hw = 0, hw
    if blk.pool_after:
        out_hw = hw // 2
        down = fmap(n, out_hw, c_out)
        cat_f, cat_b, cat_act = cat_f + 9 * down, cat_b + down, down * BF16
    cat = m.op(f"{blk.name}.concat", flops=passes(cat_f, cat_b, 0), activation_bytes=cat_act,
               layer=layer, group=blk.name)
    for dst in (b1, b2a, b3a, b4a):
        m.edge(prev, dst, fmap(n, hw, c_in) * BF16)
    m.edge(b2a, b2b, fmap(n, hw, blk.reduce3x3) * BF16)
    m.edge(b3a, b3b, fmap(n, hw, blk.reduce5x5) * BF16)
    m.edge(b4a, b4b, fmap(n, hw, c_in) * BF16)
    for src, co in ((b1, blk.n1x1), (b2b, blk.n3x3), (b3b, blk.n5x5), (b4b, blk.pool_proj)):
        m.edge(src, cat, fmap(n, hw, co) * BF16)
    return cat, out_hw, c_out
