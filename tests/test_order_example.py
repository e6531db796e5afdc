"""The order file the README documents (issue 12.11) runs as the README says it does."""
from __future__ import annotations

import json
import re
from pathlib import Path

from opplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "1f1b_p4_m8.order"


def test_readme_order_example_simulates_to_a_valid_1f1b(capsys):
    command = re.search(r"`opplan (simulate [^`]+1f1b_p4_m8\.order)`", (ROOT / "README.md").read_text()).group(1)
    args = command.replace("docs/examples/1f1b_p4_m8.order", str(EXAMPLE)).split()
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # 1F1B, P = 4, M = 8, F = B = W = 1: (M + P - 1)(F + B + W) = 33, per-device bubble (P - 1)(F+B+W) = 9
    assert summary["valid"] and summary["makespan"] == 33 and summary["bubble"] == [9, 9, 9, 9]
