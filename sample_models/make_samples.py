#!/usr/bin/env python3
"""Regenerate the sample model files of opplan (format "opplan-model/1").

Run from anywhere:  python sample_models/make_samples.py
Each file is one family builder of ``opplan.builders`` called with its defaults (the formulas and
assumptions are in the builders' docstrings), except ``deepseek_v3_moe_8l_h20.json``, the earlier
8-layer H20 DeepSeek sample (all-to-all in bf16 to all top_k experts), kept for comparison. Every model is validated against
``opplan/schemas/model.schema.json`` (when the ``jsonschema`` package is importable) and parsed
by opplan's own loader before it is written. The output is deterministic: running
the script again gives the same bytes.
"""
from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # this checkout's builders, not an installed copy of opplan

from opplan.builders import (  # noqa: E402
    dense_transformer,
    inception,
    moe_transformer,
    multimodal,
    uniform,
    uniform_moe,
)
from opplan.builders.moe import moe_balance  # noqa: E402
from opplan.cluster import uniform_cluster  # noqa: E402
from opplan.errors import OpplanError  # noqa: E402
from opplan.graph import parse_model, parse_model_text  # noqa: E402

SCHEMA_PATH = ROOT / "opplan" / "schemas" / "model.schema.json"

SAMPLES = {
    "uniform_pipeline_8.json": uniform,
    "llama2_7b.json": dense_transformer,
    "deepseek_v3_moe.json": moe_transformer,
    "deepseek_v3_moe_8l_h20.json": partial(moe_transformer, layers=8, expert_parallel=16, accelerator="H20",
                                           dispatch_bytes=2, combine_bytes=2, max_nodes=None),
    "uniform_moe_8.json": uniform_moe,
    "multimodal_vlm.json": multimodal,
    "inception_dag.json": inception,
}

# The scenario each sample is shown on (the dashboard applies it when the sample is picked): a
# pipeline size and micro-batch count where the model's stages are balanced enough to compare
# schedules, on the model's own accelerator.
SCENARIOS = {
    "uniform_pipeline_8.json": {"devices": 8, "microbatches": 20},
    "llama2_7b.json": {"devices": 4, "microbatches": 8, "accelerator": "H100"},
    "deepseek_v3_moe.json": {"devices": 8, "microbatches": 20, "accelerator": "H100", "granularity": "operator"},
    "deepseek_v3_moe_8l_h20.json": {"devices": 8, "microbatches": 16, "accelerator": "H20"},
    "uniform_moe_8.json": {"devices": 8, "microbatches": 20, "granularity": "operator"},
    "multimodal_vlm.json": {"devices": 4, "microbatches": 8, "accelerator": "A100"},
    "inception_dag.json": {"devices": 2, "microbatches": 8, "accelerator": "Ascend910B"},
}


def with_scenario(model: dict, scenario: dict) -> dict:
    """The model with its suggested ``scenario`` placed after the header fields."""
    head = {k: v for k, v in model.items() if k not in ("operators", "edges")}
    return {**head, "scenario": scenario, "operators": model["operators"], "edges": model["edges"]}


def schema_validate(model: dict) -> bool:
    """Validate against model.schema.json when jsonschema is installed; return whether it ran."""
    try:
        import jsonschema
    except ImportError:
        return False
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(model)
    return True


def summary(model: dict) -> str:
    ops = model["operators"]
    fwd_flops = sum(op["flops"]["forward"] for op in ops if "flops" in op)
    return (f"{model['name']:<24} {len(ops):>4} ops {len(model['edges']):>4} edges  "
            f"fwd {fwd_flops:.3e} FLOPs  params {sum(op['param_bytes'] for op in ops) / 1e9:9.2f} GB  "
            f"act {sum(op['activation_bytes'] for op in ops) / 1e9:8.2f} GB/micro-batch")


def moe_summary(model: dict) -> str:
    """One MoE layer's compute : all-to-all time on the model's accelerator at its default
    expert-parallel bandwidth (DeepSeek-V3 reports about 1 : 1)."""
    cluster = uniform_cluster(1, accelerator=model["accelerator"])
    b = moe_balance(parse_model(model, model["name"]), cluster)
    return (f"MoE layer on {model['accelerator']} at {cluster.ep_bandwidth_gbytes_per_s:g} GB/s expert-parallel: "
            f"forward compute {b.compute_forward_ms:.2f} ms : all-to-all {b.comm_forward_ms:.2f} ms = "
            f"{b.ratio:.2f} (F+B+W {b.compute_ms:.2f} : {b.comm_ms:.2f} ms = {b.iteration_ratio:.2f})")


def main() -> int:
    schema_ran = False
    for filename, build in SAMPLES.items():
        try:
            model = with_scenario(build(), SCENARIOS[filename])
            schema_ran = schema_validate(model) or schema_ran
            text = json.dumps(model, indent=1) + "\n"
            parse_model_text(text, filename)  # the project's own loader: ids, costs, edges, acyclicity
            (HERE / filename).write_text(text, encoding="utf-8")
        except OpplanError as error:
            print(f"{filename}: {error}", file=sys.stderr)
            return 1
        print(f"{filename:<28} {summary(model)}")
        if filename.startswith("deepseek"):
            print(" " * 29 + moe_summary(model))
    print("schema validation:", "ok" if schema_ran else "skipped (jsonschema not installed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
