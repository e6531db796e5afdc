"""Which browser session a solve belongs to (Streamlit): ``opplan.ui.jobs`` stays free of
Streamlit, and learns from here whether the session that started a job is still connected, so a
closed tab cancels its solve. Importing this module (``components`` does) installs the probe."""
from __future__ import annotations

from collections.abc import Callable

from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from opplan.ui import jobs


def session_probe() -> Callable[[], bool] | None:
    """For the session running this script: a function that says whether it is still connected
    (None outside a Streamlit server, e.g. in tests)."""
    ctx = get_script_run_ctx(suppress_warning=True)
    if ctx is None or not Runtime.exists():
        return None
    runtime, session_id = Runtime.instance(), ctx.session_id
    return lambda: runtime.is_active_session(session_id)


jobs.SESSION_PROBE = session_probe
