"""Bytes written and read one way, the activation unit defined once, memory caps validated."""
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opplan.cluster import uniform_cluster
from opplan.errors import OpplanError
from opplan.graph import load_model, uniform_chain
from opplan.layout import CONTIGUOUS
from opplan.units import MemoryCap, activation_unit_bytes, format_bytes, parse_bytes

LLAMA = Path(__file__).resolve().parents[1] / "sample_models" / "llama2_7b.json"


@pytest.mark.parametrize("n, text", [
    (80e9, "80.00 GB"), (1.5e12, "1.50 TB"), (512 * 2**20, "536.87 MB"), (2048, "2.05 KB"), (999, "999 B"),
    (0, "0 B"), (1, "1 B"), (math.inf, "no cap"),
])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


@pytest.mark.parametrize("text, n", [
    ("80GB", 80e9), ("80G", 80e9), ("80 gb", 80e9), ("80.00 GB", 80e9), ("512MiB", 512 * 2**20), ("1GiB", 2**30),
    ("2TiB", 2 * 2**40), ("4KiB", 4096), ("1.5TB", 1.5e12), ("3k", 3e3), ("7M", 7e6), ("1e10", 1e10), ("12", 12),
    ("12 B", 12), ("no cap", math.inf), (" 5 MB ", 5e6),
])
def test_parse_bytes(text, n):
    assert parse_bytes(text) == pytest.approx(n)


@pytest.mark.parametrize("text", ["lots", "GB", "80 XB", "", "8 0GB", "1,2"])
def test_parse_bytes_rejects_what_is_not_a_size(text):
    with pytest.raises(OpplanError, match="is not a byte size") as error:
        parse_bytes(text, field="memory_cap")
    assert error.value.field == "memory_cap"


@given(st.floats(min_value=0, max_value=1e16, allow_nan=False))
def test_formatted_bytes_read_back_within_the_printed_precision(n):
    back = parse_bytes(format_bytes(n))
    assert back == pytest.approx(n, rel=0.005, abs=1e-3)
    assert format_bytes(back) == format_bytes(n)


def test_activation_unit_is_one_of_P_equal_stages():
    model = load_model(LLAMA)
    total = sum(op.activation_bytes for op in model.operators)
    assert activation_unit_bytes(model, 4) == total / 4
    assert activation_unit_bytes(uniform_chain(4), 4) == 1.0       # the uniform pipeline: one unit = one byte
    problem = CONTIGUOUS.model_problem(model, uniform_cluster(4), 8)
    assert problem.activation_unit_bytes == activation_unit_bytes(model, 4)
    with pytest.raises(OpplanError, match="devices must be a positive integer") as error:
        activation_unit_bytes(model, 0)
    assert error.value.field == "devices"


@pytest.mark.parametrize("values, unit, needle", [
    ((0,), "activations", "positive and finite, got 0"),
    ((-1,), "activations", "positive and finite, got -1"),
    ((math.inf,), "activations", "positive and finite, got inf"),
    ((math.nan,), "bytes", "positive and finite, got nan"),
    ((1, 0.0), "bytes", "positive and finite, got 0"),
    ((), "activations", "at least one value"),
    ((True,), "activations", "must be numbers"),
    (("3",), "activations", "must be numbers"),
    ((3,), "gigabytes", "unit must be one of activations, bytes"),
])
def test_memory_cap_validation(values, unit, needle):
    with pytest.raises(OpplanError) as error:
        MemoryCap(values, unit)
    assert needle in str(error.value) and error.value.field == "memory_cap"


@pytest.mark.parametrize("text, unit, values", [
    ("4", "activations", (4.0,)), ("4,3, 2,1", "activations", (4.0, 3.0, 2.0, 1.0)), ("2.5", "activations", (2.5,)),
    ("80GB", "bytes", (80e9,)), ("80GB,40G,512MiB", "bytes", (80e9, 40e9, 512 * 2**20)), ("1e10", "bytes", (1e10,)),
])
def test_memory_cap_parse(text, unit, values):
    cap = MemoryCap.parse(text, unit)
    assert cap == MemoryCap(values, unit) and cap.values == values


@pytest.mark.parametrize("text, unit, needle", [
    ("x", "activations", "memory cap 'x' is not a number"),
    ("1,,2", "activations", "memory cap '' is not a number"),
    ("4GB", "activations", "memory cap '4GB' is not a number"),
    ("lots", "bytes", "'lots' is not a byte size"),
    ("0", "activations", "positive and finite"),
    ("no cap", "bytes", "positive and finite, got inf"),
])
def test_memory_cap_parse_errors(text, unit, needle):
    with pytest.raises(OpplanError) as error:
        MemoryCap.parse(text, unit)
    assert needle in str(error.value) and error.value.field == "memory_cap"


def test_memory_cap_resolves_to_bytes_per_device():
    model = load_model(LLAMA)
    unit = activation_unit_bytes(model, 4)
    assert MemoryCap(5).per_device(3) == (5.0, 5.0, 5.0)
    assert MemoryCap(5).bytes_per_device(None, 2) == (5.0, 5.0)                 # uniform: one unit = 1 byte
    assert MemoryCap((4, 2)).bytes_per_device(model, 2) == pytest.approx(
        (4 * activation_unit_bytes(model, 2), 2 * activation_unit_bytes(model, 2)))
    assert MemoryCap(3).bytes_per_device(model, 4) == pytest.approx((3 * unit,) * 4)
    assert MemoryCap(80e9, "bytes").bytes_per_device(model, 2) == (80e9, 80e9)
    with pytest.raises(OpplanError, match="needs a model"):
        MemoryCap(80e9, "bytes").bytes_per_device(None, 2)
    with pytest.raises(OpplanError, match="got 3 memory caps for 4 devices"):
        MemoryCap((1, 2, 3)).bytes_per_device(model, 4)
    with pytest.raises(OpplanError, match="no activation bytes"):
        MemoryCap(1).bytes_per_device(uniform_chain(2, activation_bytes=0.0), 2)
