"""Imported only by the solver workers' fork server (its first preload): lowers the fork
server's CPU priority, so its own start-up imports and every worker forked from it yield the CPU
to the dashboard server, which must keep serving pages while solves run."""
from __future__ import annotations

import os

WORKER_NICENESS = 10

try:
    os.nice(WORKER_NICENESS)
except OSError:     # not permitted here: workers then run at the server's priority
    pass
