"""Ceilings on what users may hand us, and how user text is shown in messages.

Every input path (model, plan and order files, uploads, CLI options, the dashboard's forms) checks
against these before it allocates, so a small hostile file cannot make the process grow without
bound, and no message repeats unbounded user data. The numbers are documented in the README.
"""
from __future__ import annotations

import math
import os
import reprlib
import unicodedata
from collections.abc import Mapping
from typing import Any

from opplan.errors import OpplanError

MAX_FILE_BYTES = 20 * 1000 * 1000     # model, plan and order files, and uploads: 20 MB
MAX_DEPTH = 32                        # nesting of JSON/YAML containers (our formats need 6)
MAX_YAML_EXPANSION = 100_000          # nodes YAML aliases may add by repeating anchored data
MAX_ID_CHARS = 200                    # operator ids, names, groups, resource names
MAX_TEXT_CHARS = 2_000                # a model's one-line description
MAX_QUANTITY = 1e18                   # any cost, size or time: far beyond real models, far below overflow
MAX_DEVICES = 4096
MAX_TASKS = 2_000_000                 # tasks (passes × stages × micro-batches, plus transfers) of one problem
BYTES_PER_TASK = 2_000                # per task: a baseline run peaks at ≈ 0.8 KB (P=8, M=4000); the planner holds more
SHOWN_CHARS = 60                      # user text quoted in a message is cut to this


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = SHOWN_CHARS
_SHOWN.maxother = SHOWN_CHARS
_SHOWN.maxlong = 40
_SHOWN.maxlevel = 2
for _attr in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque", "maxarray"):
    setattr(_SHOWN, _attr, 4)


def shown(value: Any) -> str:
    """``repr(value)`` for a message, bounded whatever the value: long text is cut, deep or long
    containers are elided, so a message never grows with the input."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    text = _SHOWN.repr(value)
    return text if len(text) <= 3 * SHOWN_CHARS else text[:3 * SHOWN_CHARS] + "..."


def shown_path(path: Any) -> str:
    """A file name for a message: as typed when it is printable and not absurdly long, else quoted
    and cut like any user text."""
    text = str(path)
    return text if len(text) <= 4 * SHOWN_CHARS and _bad_char(text) is None else shown(text)


def type_name(value: Any) -> str:
    return type(value).__name__


def check_file_size(size: int, what: str) -> None:
    """Refuse a file before reading it when it is larger than :data:`MAX_FILE_BYTES`."""
    if size > MAX_FILE_BYTES:
        raise OpplanError(f"{what}: {size / 1e6:.1f} MB is larger than the {MAX_FILE_BYTES / 1e6:g} MB limit "
                          "for input files")


def _bad_char(text: str) -> str | None:
    """The first control or format character (newline, escape, bidi override) in ``text``."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"):
            return char
    return None


def check_text(value: Any, where: str, max_chars: int = MAX_ID_CHARS, empty_ok: bool = False) -> str:
    """A one-line string fit to print: no control characters, not empty (unless ``empty_ok``),
    at most ``max_chars`` long; otherwise a one-line error naming ``where``."""
    if not isinstance(value, str):
        raise OpplanError(f"{where} must be a string, got {type_name(value)} {shown(value)}")
    if not value and not empty_ok:
        raise OpplanError(f"{where} must be a non-empty string")
    if len(value) > max_chars:
        raise OpplanError(f"{where} is {len(value)} characters long; the limit is {max_chars}")
    bad = _bad_char(value)
    if bad is not None:
        raise OpplanError(f"{where} contains the control character U+{ord(bad):04X}; "
                          f"ids and names must be printable text, got {shown(value)}")
    return value


def check_quantity(value: Any, where: str) -> float:
    """A finite non-negative number no larger than :data:`MAX_QUANTITY`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OpplanError(f"{where} must be a number, got {type_name(value)} {shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if math.isnan(number) or math.isinf(number):
        raise OpplanError(f"{where} must be finite, got {shown(value)}")
    if number < 0:
        raise OpplanError(f"{where} must be non-negative, got {number:g}")
    if number > MAX_QUANTITY:
        raise OpplanError(f"{where} is {number:.3g}, above the limit of {MAX_QUANTITY:g}")
    return number


def check_integer(value: Any, where: str, low: int = 0, high: int | None = None) -> int:
    """An integer (not a float, not a boolean) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise OpplanError(f"{where} must be an integer, got {type_name(value)} {shown(value)}")
    if value < low or (high is not None and value > high):
        bound = f"at least {low}" if high is None else f"between {low} and {high}"
        raise OpplanError(f"{where} must be {bound}, got {shown(value)}")
    return value


def check_depth(data: Any, what: str, limit: int = MAX_DEPTH) -> None:
    """Refuse parsed data nested deeper than ``limit`` (walked without recursion; shared
    sub-structures from YAML aliases are visited once)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (list, Mapping)) or id(item) in seen:
            continue
        if depth >= limit:
            raise OpplanError(f"{what}: nested more than {limit} levels deep")
        seen.add(id(item))
        children = item.values() if isinstance(item, Mapping) else item
        stack.extend((child, depth + 1) for child in children)


def available_memory() -> int | None:
    """Bytes the machine can still give (``MemAvailable``: free memory plus reclaimable cache)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def max_tasks() -> int:
    """The task count one problem may reach: :data:`MAX_TASKS`, or less when the machine's
    available memory (at :data:`BYTES_PER_TASK` each) cannot hold that many."""
    free = available_memory()
    if free is None:
        return MAX_TASKS
    return max(10_000, min(MAX_TASKS, free // BYTES_PER_TASK))


def check_task_count(tasks: int, what: str, field: str | None = "microbatches") -> None:
    """Refuse a problem before it is built when its tasks would not fit (the limit is named)."""
    limit = max_tasks()
    if tasks > limit:
        raise OpplanError(f"{what} would have {tasks:,} tasks, above the limit of {limit:,} "
                          "(fewer micro-batches, stages or operators)", field=field)


def cores() -> int:
    """CPU cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(value: Any, field: str = "threads") -> int:
    """A solver thread count between 1 and the cores this process may use."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= cores():
        raise OpplanError(f"threads must be an integer from 1 to {cores()} (the cores available), "
                          f"got {shown(value)}", field=field)
    return value
