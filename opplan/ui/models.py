"""Models in the dashboard: the samples, a parse cache, the current model in the store (kept as
canonical JSON text, or None for the uniform pipeline), uploads, and the editable tables."""
from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from opplan.cluster import ACCELERATORS
from opplan.errors import OpplanError, decode_user_text
from opplan.granularity import GRANULARITIES
from opplan.graph import ModelGraph, parse_model_text, uniform_chain
from opplan.limits import MAX_TEXT_CHARS, check_file_size, check_text
from opplan.ui.text import plain

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_models"
UNIFORM = "uniform pipeline"
HIDDEN_SAMPLE = "uniform_pipeline_8"   # the uniform pipeline as a file: the built-in one replaces it
EDITED = "edited: "


def sample_models() -> dict[str, Path]:
    """Sample model files by display name (file stem)."""
    return {p.stem: p for p in sorted(SAMPLE_DIR.glob("*.json"))}


def model_choices(values: dict[str, Any]) -> list[str]:
    """The model selectbox's options: the uniform pipeline, the samples, and an uploaded or
    edited model while it is current (so it stays selectable)."""
    choices = [UNIFORM] + [s for s in sample_models() if s != HIDDEN_SAMPLE]
    if values.get("model_label") not in choices:
        choices.append(values["model_label"])
    return choices


_PARSED: OrderedDict[tuple[str, str], tuple[ModelGraph, int]] = OrderedDict()
_PARSED_LOCK = threading.Lock()
CACHE_ENTRIES = 16
CACHE_BYTES = 64 * 1000 * 1000     # text size of the cached models together; one larger is not cached


def load_model_text(text: str, source: str) -> ModelGraph:
    """Parse a model (cached); raises OpplanError with a one-line message naming the problem.

    The cache is shared by every session of the server: it is locked, keyed by a digest (not by
    the text), and bounded in entries and in bytes, so uploads cannot pin memory without end."""
    key = (hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), source)
    with _PARSED_LOCK:
        if key in _PARSED:
            _PARSED.move_to_end(key)
            return _PARSED[key][0]
    model = parse_model_text(text, source)
    size = len(text)
    if size <= CACHE_BYTES:
        with _PARSED_LOCK:
            _PARSED[key] = (model, size)
            while len(_PARSED) > CACHE_ENTRIES or sum(n for _, n in _PARSED.values()) > CACHE_BYTES:
                _PARSED.popitem(last=False)
    return model


def cache_size() -> tuple[int, int]:
    """(models, bytes of their text) held by the parse cache."""
    with _PARSED_LOCK:
        return len(_PARSED), sum(n for _, n in _PARSED.values())


def set_model(values: dict[str, Any], text: str | None, label: str) -> None:
    """Make ``text`` (canonical JSON, or None for the uniform pipeline) the current model."""
    values["model_text"] = text
    values["model_label"] = label
    values["_loaded_label"] = label
    if text is not None:
        model = load_model_text(text, label)
        values["accelerator"] = "model default" if model.accelerator else values.get("accelerator", "model default")


def suggested_scenario(text: str) -> dict[str, Any]:
    """A model file's optional ``scenario`` (devices, micro-batches, accelerator, granularity), keeping only
    well-formed entries: it is a suggestion, so a bad one is dropped rather than refused."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            return {}
    scenario = data.get("scenario") if isinstance(data, dict) else None
    if not isinstance(scenario, dict):
        return {}
    good: dict[str, Any] = {}
    for key in ("devices", "microbatches"):
        value = scenario.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            good[key] = value
    if isinstance(scenario.get("accelerator"), str) and scenario["accelerator"] in ACCELERATORS:
        good["accelerator"] = scenario["accelerator"]
    if isinstance(scenario.get("granularity"), str) and scenario["granularity"] in GRANULARITIES:
        good["granularity"] = scenario["granularity"]
    return good


def apply_scenario(values: dict[str, Any], scenario: dict[str, Any], label: str, model: ModelGraph | None) -> None:
    """Put a model's suggested scenario into the store and leave a note saying so."""
    if not scenario:
        values["_scenario_note"] = None
        return
    for key in ("devices", "microbatches"):
        if key in scenario:
            values[key] = scenario[key]
    accelerator = scenario.get("accelerator")
    if accelerator is not None:
        values["accelerator"] = "model default" if model is not None and accelerator == model.accelerator \
            else accelerator
    values["granularity"] = scenario.get("granularity", "stage")   # a sample is shown at its own level
    parts = [f"{scenario[k]} {k.replace('microbatches', 'micro-batches')}" for k in ("devices", "microbatches")
             if k in scenario] + ([accelerator] if accelerator else []) \
        + ([f"{scenario['granularity']} level"] if "granularity" in scenario else [])
    values["_scenario_note"] = f"{label} suggests {', '.join(parts)} (set when it was picked)."


def select_model(values: dict[str, Any], label: str) -> None:
    """Load a sample model (or the uniform pipeline) by its display name, with the scenario the
    sample suggests (devices, micro-batches, accelerator)."""
    samples = sample_models()
    if label == UNIFORM:
        set_model(values, None, UNIFORM)
        apply_scenario(values, suggested_scenario(samples[HIDDEN_SAMPLE].read_text(encoding="utf-8"))
                       if HIDDEN_SAMPLE in samples else {}, UNIFORM, None)
        return
    if label not in samples:
        return  # a custom model already current: nothing to load
    text = samples[label].read_text(encoding="utf-8")
    model = load_model_text(text, samples[label].name)
    set_model(values, json.dumps(model.to_dict()), label)
    apply_scenario(values, suggested_scenario(text), label, model)


def choose_model(values: dict[str, Any], label: str) -> None:
    """What the model selectbox does: load ``label`` when it is not the model loaded last."""
    if label != values.get("_loaded_label"):
        select_model(values, label)
        values["_loaded_label"] = label


def current_model(values: dict[str, Any]) -> ModelGraph | None:
    text = values.get("model_text")
    return None if text is None else load_model_text(text, values.get("model_label", "model"))


def model_version(values: dict[str, Any]) -> str:
    """A short fingerprint of the current model (keys editors so a new model resets them)."""
    return hashlib.md5(str(values.get("model_text")).encode("utf-8")).hexdigest()[:12]


def upload_model(values: dict[str, Any], name: str, file_id: str, data: bytes) -> bool:
    """Take an uploaded file once (by ``file_id``). True when it became the current model; on a
    bad file the one-line reason is kept in ``values["_upload_error"]`` and the model stays."""
    if file_id == values.get("_upload_id"):
        return False
    values["_upload_id"] = file_id
    values["_upload_error"] = None
    try:
        check_text(name, "the file name", MAX_TEXT_CHARS)
        check_file_size(len(data), name)
        text = decode_user_text(data, name, "model file")
        model = load_model_text(text, name)
        set_model(values, json.dumps(model.to_dict()), f"uploaded: {name}")
        apply_scenario(values, suggested_scenario(text), name, model)
    except OpplanError as error:
        message = str(error)
        values["_upload_error"] = message if message.startswith(name) else f"{name}: {message}"
        return False
    return True


def adopt_model(values: dict[str, Any], model: ModelGraph) -> None:
    """Make an edited copy current, named "edited: ..." (once, however often it is edited)."""
    name = values.get("model_label", model.name)
    set_model(values, json.dumps(model.to_dict()), name if name.startswith(EDITED) else f"{EDITED}{model.name}")


UNIT_AS_BYTES = 1e9   # one activation unit of the uniform pipeline, once it is an editable model


def uniform_as_model(values: dict[str, Any]) -> ModelGraph:
    """The uniform pipeline as an editable model graph ("Edit as a model graph"). A model's memory
    is in bytes, so one activation unit becomes 1 GB (one byte would make caps read 1e-08 GB);
    the caps entered in units carry over as the same number of GB."""
    chain = uniform_chain(int(values["devices"]), float(values["f"]), float(values["b"]), float(values["w"]),
                          activation_bytes=UNIT_AS_BYTES)
    values["cap_value_gb"] = float(values["cap_value"]) * UNIT_AS_BYTES / 1e9
    if values.get("caps_per_device"):
        values["caps_per_device_gb"] = [float(c) * UNIT_AS_BYTES / 1e9 for c in values["caps_per_device"]]
    return replace(chain, description=chain.description + "; one activation unit = 1 GB, times in ms")


def model_summary(model: ModelGraph) -> str:
    """One line on a model graph: operators, edges, parameter memory, accelerator."""
    from opplan.ui.config import in_abstract_units  # config imports this module

    comm = sum(op.kind == "communication" for op in model.operators)
    memory = ("memory in abstract units (shown as activation units)" if in_abstract_units(model)
              else f"{model.total_param_bytes / 1e9:.3g} GB of parameters and optimizer state")
    return (f"**{plain(model.name)}** — {len(model.operators)} operators ({comm} communication), {len(model.edges)} edges, "
            f"{memory}"
            + (f", costed for {model.accelerator}" if model.accelerator else "") + ".")


def model_tables(model: ModelGraph) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Operators and edges as editable tables (one cost unit column, F/B/W columns)."""
    ops = pd.DataFrame([{
        "id": op.id, "kind": op.kind, "cost unit": op.costs.unit, "forward": op.costs.forward,
        "input_grad": op.costs.input_grad, "weight_grad": op.costs.weight_grad,
        "activation_bytes": op.activation_bytes, "param_bytes": op.param_bytes,
        "layer": op.layer, "group": op.group or "",
    } for op in model.operators])
    edges = pd.DataFrame([{"src": e.src, "dst": e.dst, "bytes": e.bytes} for e in model.edges],
                         columns=["src", "dst", "bytes"])
    return ops, edges


def _cell(value: Any) -> Any:
    """A table cell as JSON: NaN/None → None, numpy numbers → Python numbers."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return None
    return value


def model_from_tables(base: ModelGraph, ops: pd.DataFrame, edges: pd.DataFrame) -> ModelGraph:
    """The edited model; parsing it through the same validator as files gives the same errors."""
    operators = []
    for i, row in enumerate(ops.to_dict("records")):
        if all(_cell(v) in (None, "") for v in row.values()):
            continue  # an empty row the editor added
        unit = _cell(row.get("cost unit")) or "time"
        entry: dict[str, Any] = {"id": _cell(row.get("id")), "kind": _cell(row.get("kind")) or "compute",
                                 str(unit): {p: _cell(row.get(p)) if _cell(row.get(p)) is not None else 0.0
                                             for p in ("forward", "input_grad", "weight_grad")},
                                 "activation_bytes": _cell(row.get("activation_bytes")) or 0.0,
                                 "param_bytes": _cell(row.get("param_bytes")) or 0.0}
        if entry["id"] is None:
            raise OpplanError(f"operator table row {i + 1}: id is empty")
        layer = _cell(row.get("layer"))
        if layer is not None:
            entry["layer"] = int(layer) if float(layer).is_integer() else layer
        if _cell(row.get("group")):
            entry["group"] = str(_cell(row.get("group")))
        operators.append(entry)
    edge_list = []
    for i, row in enumerate(edges.to_dict("records")):
        src, dst = _cell(row.get("src")), _cell(row.get("dst"))
        if src in (None, "") and dst in (None, ""):
            continue
        for end, value in (("src", src), ("dst", dst)):
            if value in (None, ""):
                raise OpplanError(f"edge table row {i + 1}: {end} is empty (name the operator it "
                                  f"{'comes from' if end == 'src' else 'goes to'})")
        edge_list.append({"src": src, "dst": dst, "bytes": _cell(row.get("bytes")) or 0.0})
    data: dict[str, Any] = {"format": "opplan-model/1", "name": base.name, "operators": operators,
                            "edges": edge_list}
    if base.description:
        data["description"] = base.description
    if base.accelerator:
        data["accelerator"] = base.accelerator
    return parse_model_text(json.dumps(data), "edited model")
