"""Model builders: operator graphs of whole model families from a few hyperparameters.

Each family function takes its hyperparameters as keyword arguments (the defaults rebuild the
sample model of that family exactly) and returns the ``opplan-model/1`` JSON document as a dict;
``build_model`` returns the validated ``ModelGraph`` instead. A bad hyperparameter raises
``OpplanError`` with one line naming it. Cost conventions are in ``opplan.builders.costs``.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from opplan.builders.builder import ModelBuilder
from opplan.builders.dense import dense_transformer
from opplan.builders.inception import GOOGLENET_BLOCKS, InceptionBlock, inception
from opplan.builders.moe import moe_transformer
from opplan.builders.multimodal import multimodal
from opplan.builders.uniform import uniform
from opplan.builders.uniform_moe import uniform_moe
from opplan.errors import OpplanError
from opplan.graph import ModelGraph, parse_model

FAMILIES: dict[str, Callable[..., dict[str, Any]]] = {
    "uniform": uniform,
    "dense_transformer": dense_transformer,
    "moe_transformer": moe_transformer,
    "multimodal": multimodal,
    "inception": inception,
    "uniform_moe": uniform_moe,
}


def build_model(family: str, **hyperparameters: Any) -> ModelGraph:
    """The validated graph of ``family`` (a key of FAMILIES) with the given hyperparameters."""
    if family not in FAMILIES:
        raise OpplanError(f"model family must be one of {', '.join(FAMILIES)}, got {family!r}")
    build = FAMILIES[family]
    known = inspect.signature(build).parameters
    unknown = sorted(set(hyperparameters) - set(known))
    if unknown:
        raise OpplanError(f"{family}: unknown hyperparameter {unknown[0]!r} (allowed: {', '.join(known)})")
    data = build(**hyperparameters)
    return parse_model(data, data["name"])


__all__ = ["FAMILIES", "GOOGLENET_BLOCKS", "InceptionBlock", "ModelBuilder", "build_model", "dense_transformer",
           "inception", "moe_transformer", "multimodal", "uniform",
           "uniform_moe"]
