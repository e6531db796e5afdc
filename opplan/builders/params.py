"""Hyperparameter checks shared by the builders: each failure is one line naming the parameter."""
from __future__ import annotations

import math
from typing import Any

from opplan.cluster import ACCELERATORS
from opplan.errors import OpplanError


def positive_int(name: str, value: Any) -> int:
    """``value`` if it is an integer >= 1 (sizes stay integers so the files are exact and repeatable)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OpplanError(f"{name} must be a positive integer, got {value!r}")
    return value


def positive_ints(**values: Any) -> None:
    """Check several positive-integer hyperparameters at once, in the order given."""
    for name, value in values.items():
        positive_int(name, value)


def non_negative(name: str, value: Any) -> float:
    """``value`` if it is a finite number >= 0 (a time or a size that may be zero)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise OpplanError(f"{name} must be a finite non-negative number, got {value!r}")
    return value


def at_most(name: str, value: int, limit_name: str, limit: int) -> None:
    """``name`` may not exceed ``limit_name`` (e.g. top_k and experts)."""
    if value > limit:
        raise OpplanError(f"{name} must be at most {limit_name} ({limit}), got {value}")


def multiple_of(name: str, value: int, divisor_name: str, divisor: int) -> None:
    """``name`` must split evenly into ``divisor_name`` parts (e.g. hidden over heads)."""
    if value % divisor:
        raise OpplanError(f"{name} must be a multiple of {divisor_name} ({divisor}), got {value}")


def accelerator(value: Any) -> str | None:
    """A known accelerator preset name, or None for a model that names none."""
    if value is not None and value not in ACCELERATORS:
        raise OpplanError(f"accelerator must be one of {', '.join(ACCELERATORS)} or None, got {value!r}")
    return value


def text(name: str, value: Any) -> str:
    """A non-empty string (model names)."""
    if not isinstance(value, str) or not value.strip():
        raise OpplanError(f"{name} must be a non-empty string, got {value!r}")
    return value
