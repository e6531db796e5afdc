"""The model builder of the Model page: a model family's hyperparameters as form fields (kept in
the store, so they survive page switches) and the graph they build (``opplan.builders``, the same
code that writes the sample files)."""
from __future__ import annotations

import inspect
import json
from typing import Any

from opplan.builders import FAMILIES, build_model
from opplan.cluster import ACCELERATORS
from opplan.errors import OpplanError
from opplan.graph import ModelGraph
from opplan.ui.models import set_model

# what the builder offers, by the name the page shows
BUILDER_FAMILIES = {"dense transformer": "dense_transformer", "MoE transformer": "moe_transformer",
                    "two-tower multimodal": "multimodal"}
# the fields shown first; the others sit under "more hyperparameters"
MAIN_FIELDS = {
    "dense_transformer": ("layers", "hidden", "heads", "ffn", "seq", "vocab"),
    "moe_transformer": ("layers", "hidden", "heads", "experts", "top_k", "expert_ffn", "seq", "vocab"),
    "multimodal": ("vision_layers", "vision_hidden", "text_layers", "text_hidden", "decoder_layers",
                   "decoder_hidden", "text_seq", "vocab"),
}


def field_key(family: str, name: str) -> str:
    return f"build:{family}:{name}"


def hyperparameters(family: str) -> dict[str, Any]:
    """The family's hyperparameters and their defaults (those of its sample model), without the name."""
    params = inspect.signature(FAMILIES[family]).parameters
    return {n: p.default for n, p in params.items() if n != "name"}


def seed_fields(values: dict[str, Any], family: str) -> None:
    """Put the family's defaults into the store for the fields the user has not set yet."""
    for name, default in hyperparameters(family).items():
        values.setdefault(field_key(family, name), default)


def accelerator_options() -> list[str]:
    return list(ACCELERATORS)


def build(values: dict[str, Any], family: str) -> ModelGraph:
    """Build the family's graph from the store's fields and make it the current model, named
    ``built: <name>``; a bad hyperparameter raises OpplanError with one line naming it."""
    defaults = hyperparameters(family)
    chosen = {name: values.get(field_key(family, name), default) for name, default in defaults.items()}
    for name, value in chosen.items():
        if value is None and defaults[name] is not None:
            raise OpplanError(f"{name} is empty: give a number")
        if isinstance(value, float) and value.is_integer():
            chosen[name] = int(value)
    model = build_model(family, **chosen)
    set_model(values, json.dumps(model.to_dict()), f"built: {model.name}")
    return model
