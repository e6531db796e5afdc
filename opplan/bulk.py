"""Helpers for code that builds 100k-object structures (task graphs, timed plans, checks)."""
from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for a bulk build.

    Every few hundred new lists or tuples trigger a collection that walks the objects already
    alive; building a 100k-task plan then spends more time collecting than building, and finds
    nothing (these structures hold no cycles). Reference counting still frees everything; the
    collector resumes, as it was, on the way out.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def without_gc(function: Callable[..., T]) -> Callable[..., T]:
    """``function`` run with the cyclic collector paused (see ``gc_paused``)."""
    @wraps(function)
    def wrapper(*args, **kwargs):
        with gc_paused():
            return function(*args, **kwargs)
    return wrapper
