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

    The store is the source of truth. Every run writes the stored value into the widget's key
    before the widget is drawn: the same key on another page belongs to a *different* widget
    (another label), and Streamlit would otherwise start that one from its default (a number
    input's minimum: 1 device). A user's change reaches the store in the widget's ``on_change``
    callback, which runs before the script, so the write-back never undoes it.
    """
    values = store()
    wkey = f"w:{key}"
    current = values.get(key, DEFAULTS.get(key))
    options = kwargs.get("options")
    if options is not None:
        allowed = list(options)
        if isinstance(current, list):  # a multiselect: keep what is still offered
            current = [c for c in current if c in allowed]
        elif current not in allowed:
            current = allowed[0]
    st.session_state[wkey] = current
    value = factory(label, key=wkey, on_change=_save, args=(key, wkey), **kwargs)
    values[key] = value
    return value


def _save(key: str, wkey: str) -> None:
    store()[key] = st.session_state[wkey]
