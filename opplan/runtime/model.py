"""The synthetic model a run executes: a chain of Linear + ReLU layers cut into the plan's stages,
built from seeds so that every rank and the single-process reference hold the same weights."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def dtype_of(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


def build_stage(stage: int, layers: int, hidden: int, seed: int, dtype: torch.dtype) -> nn.Sequential:
    """Stage ``stage`` of the chain; its weights depend only on (seed, stage)."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed * 100_003 + stage)
    parts: list[nn.Module] = []
    for _ in range(layers):
        parts += [nn.Linear(hidden, hidden, dtype=dtype), nn.ReLU()]
    torch.random.set_rng_state(generator_state)
    return nn.Sequential(*parts)


def batch(microbatches: int, rows: int, hidden: int, seed: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of one iteration (``microbatches × rows`` rows)."""
    generator = torch.Generator().manual_seed(seed + 7)
    x = torch.randn(microbatches * rows, hidden, generator=generator, dtype=dtype)
    y = torch.randn(microbatches * rows, hidden, generator=generator, dtype=dtype)
    return x, y


def loss_fn(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(output, target)


def reference_gradients(layers: Sequence[int], hidden: int, microbatches: int, rows: int, seed: int,
                        dtype: torch.dtype) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and parameter gradients of one plain single-process iteration: the mean of the
    micro-batches' losses, as the pipeline runtime computes it (``scale_grads=True``).
    Gradients are keyed ``"{stage}.{parameter name}"``."""
    stages = [build_stage(s, n, hidden, seed, dtype) for s, n in enumerate(layers)]
    x, y = batch(microbatches, rows, hidden, seed, dtype)
    total = torch.zeros((), dtype=dtype)
    for xm, ym in zip(x.chunk(microbatches), y.chunk(microbatches)):
        out = xm
        for module in stages:
            out = module(out)
        total = total + loss_fn(out, ym)
    loss = total / microbatches
    loss.backward()
    grads = {f"{s}.{name}": p.grad.detach().clone() for s, module in enumerate(stages)
             for name, p in module.named_parameters()}
    return float(loss.detach()), grads
