#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs the whole suite.
# The README's test command and .ci/run both call this script, so they cannot drift apart.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    # the browser end-to-end test drives Debian's Chromium (no browser download needed)
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
python -m pip install --quiet --disable-pip-version-check -e '.[test,torch]'   # torch: the runtime tests
python -m ruff check --quiet .    # the style the project keeps (pyproject.toml [tool.ruff])
python -m pytest -q "$@"
