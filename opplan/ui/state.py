"""The session's persistent UI state: the store and the widgets bound to it (Streamlit)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from opplan.ui.config import DEFAULTS


def store() -> dict[str, Any]:
    """Values that outlive page switches (Streamlit drops a widget's key when its page is left)."""
    return st.session_state.setdefault("opplan_store", dict(DEFAULTS))


def widget(factory: Callable[..., Any], key: str, label: str, **kwargs: Any) -> Any:
    """A widget seeded from and saved to :func:`store`, so its value survives page switches.

    The store is the source of truth: when code (an upload, the Home page) changes a value, the
    widget shows the new value on the next run.
    """
    values = store()
    last = values.setdefault("_widget_last", {})
    wkey = f"w:{key}"
    state = st.session_state
    current = values.get(key, DEFAULTS.get(key))
    options = kwargs.get("options")
    if options is not None:
        allowed = list(options)
        if isinstance(current, list):  # a multiselect: keep what is still offered
            current = [c for c in current if c in allowed]
        elif current not in allowed:
            current = allowed[0]
    if wkey not in state or (key in last and last[key] != current) or (
            options is not None and _not_offered(state[wkey], list(options))):
        state[wkey] = current
    value = factory(label, key=wkey, **kwargs)
    values[key] = value
    last[key] = value
    return value


def _not_offered(value: Any, allowed: list[Any]) -> bool:
    if isinstance(value, list):
        return any(v not in allowed for v in value)
    return value not in allowed
