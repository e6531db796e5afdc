"""Model graph parsing and validation: every bad input gives one line naming the problem."""
import json
import math

import pytest

from opplan.errors import OpplanError
from opplan.graph import load_model, parse_model, parse_model_text, save_model, uniform_chain


def op(op_id, f=1.0, b=1.0, w=1.0, **extra):
    return {"id": op_id, "time": {"forward": f, "input_grad": b, "weight_grad": w}, **extra}


def model(ops, edges=()):
    return {"format": "opplan-model/1", "name": "t", "operators": ops, "edges": list(edges)}


def test_valid_model_round_trips(tmp_path):
    m = parse_model(model([op("a", activation_bytes=5, param_bytes=7), op("b")], [{"src": "a", "dst": "b", "bytes": 3}]))
    assert m.topological_order() == ["a", "b"]
    assert m.operator("a").activation_bytes == 5
    path = tmp_path / "m.json"
    save_model(m, path)
    assert load_model(path) == m


@pytest.mark.parametrize("data, needle", [
    (model([]), "no operators"),
    (model([op("a"), op("a")]), "duplicate operator id 'a'"),
    (model([op("a")], [{"src": "a", "dst": "zz"}]), "unknown dst operator 'zz'"),
    (model([op("a"), op("b"), op("c")], [{"src": "a", "dst": "b"}, {"src": "b", "dst": "c"}, {"src": "c", "dst": "a"}]),
     "cycle: "),
    (model([op("a", f=-1)]), "operator 'a' field time.forward must be non-negative"),
    (model([op("a", f=float("nan"))]), "operator 'a' field time.forward must be finite"),
    (model([op("a", b=float("inf"))]), "operator 'a' field time.input_grad must be finite"),
    (model([op("a", f="fast")]), "operator 'a' field time.forward must be a number"),
    (model([{"id": "a"}]), "operator 'a' needs exactly one of the cost fields"),
    (model([{"time": {"forward": 1, "input_grad": 1, "weight_grad": 1}}]), "operator #0 is missing required field 'id'"),
    (model([{"id": "a", "time": {"forward": 1, "input_grad": 1}}]), "missing required key 'weight_grad'"),
    (model([op("a", kind="magic")]), "kind must be one of"),
    (model([op("a", activation_bytes=-3)]), "operator 'a' field activation_bytes must be non-negative"),
    (model([op("a", colour="red")]), "unknown field 'colour'"),
    ({"operators": "nope"}, "field operators must be a list"),
    ([1, 2], "top level must be an object"),
    ({"edges": []}, "missing required field 'operators'"),
    (model([op("a")], [{"src": "a"}]), "edge #0 is missing required field 'dst'"),
    (model([op("a"), op("b")], [{"src": "a", "dst": "b", "bytes": -1}]), "edge 'a' -> 'b' field bytes"),
])
def test_bad_models_name_the_problem(data, needle):
    with pytest.raises(OpplanError) as info:
        parse_model(data, "m.json")
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_cycle_message_prints_the_cycle():
    data = model([op("a"), op("b"), op("c")], [{"src": "a", "dst": "b"}, {"src": "b", "dst": "c"},
                                              {"src": "c", "dst": "b"}])
    with pytest.raises(OpplanError, match=r"cycle: (b -> c -> b|c -> b -> c)"):
        parse_model(data)


def test_yaml_and_garbage_text():
    yaml_text = "name: y\noperators:\n  - id: a\n    time: {forward: 1, input_grad: 2, weight_grad: 3}\nedges: []\n"
    assert parse_model_text(yaml_text).operator("a").costs.weight_grad == 3
    with pytest.raises(OpplanError, match="empty"):
        parse_model_text("  ", "x.json")
    with pytest.raises(OpplanError, match="not valid JSON"):
        parse_model_text("{{{ not json", "x.json")
    with pytest.raises(OpplanError, match="not valid JSON"):
        parse_model_text("just a sentence", "x.json")


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(OpplanError, match="no such file"):
        load_model(tmp_path / "absent.json")


def test_uniform_chain():
    chain = uniform_chain(4, 1, 2, 3)
    assert [o.id for o in chain.operators] == ["s0", "s1", "s2", "s3"]
    assert len(chain.edges) == 3
    assert math.isclose(chain.operator("s2").costs.input_grad, 2)
    with pytest.raises(OpplanError):
        uniform_chain(0)


def test_schema_file_is_valid_json_and_matches_format():
    from pathlib import Path

    schema_path = Path(__file__).resolve().parents[1] / "opplan" / "schemas" / "model.schema.json"
    if not schema_path.exists():
        pytest.skip("schema not generated yet")
    schema = json.loads(schema_path.read_text())
    assert "operators" in json.dumps(schema)


@pytest.mark.parametrize("field, value", [("accelerator", []), ("accelerator", "TPU"), ("granularity", ["operator"]),
                                          ("granularity", "chip"), ("devices", 0)])
def test_a_bad_suggested_scenario_is_one_line_naming_the_field(field, value):
    # found by the fuzz test: an unhashable accelerator raised TypeError instead of a message
    data = {"format": "opplan-model/1", "name": "m", "scenario": {field: value},
            "operators": [{"id": "a", "time": {"forward": 1, "input_grad": 1, "weight_grad": 1}}]}
    with pytest.raises(OpplanError, match=f"scenario.{field}"):
        parse_model(data)
