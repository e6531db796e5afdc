"""The dashboard's layers: charts and the pure ``opplan.ui`` modules never import Streamlit (not even
inside a function), only ``state`` and ``components`` do, and the core never imports ``opplan.ui``."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STREAMLIT_MODULES = {"state.py", "components.py"}
CORE = ("graph", "cluster", "problem", "tasks", "schedule", "simulate", "validate", "metrics", "scenario",
        "partition", "outputs", "errors", "io", "layout")


def imported(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def pure_files() -> list[Path]:
    ui = [p for p in (ROOT / "opplan" / "ui").glob("*.py") if p.name not in STREAMLIT_MODULES]
    return ui + sorted((ROOT / "opplan" / "viz").glob("*.py"))


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_modules_never_import_streamlit(path):
    assert not {n for n in imported(path) if n.split(".")[0] == "streamlit"}
    assert "opplan.ui.state" not in imported(path) and "opplan.ui.components" not in imported(path)


def core_files() -> list[Path]:
    files = []
    for name in CORE:
        module = ROOT / "opplan" / f"{name}.py"
        files += [module] if module.exists() else sorted((ROOT / "opplan" / name).rglob("*.py"))
    return files


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT / "opplan")))
def test_core_never_imports_the_ui(path):
    assert not {n for n in imported(path) if n.startswith("opplan.ui") or n == "opplan.dashboard"}


def test_importing_the_pure_modules_loads_no_streamlit():
    modules = ", ".join(f"opplan.ui.{p.stem}" for p in pure_files() if p.parent.name == "ui" and p.stem != "__init__")
    code = f"import sys, {modules}, opplan.viz; assert 'streamlit' not in sys.modules, 'streamlit loaded'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_no_design_document_references_in_the_dashboard():
    for path in [*(ROOT / "opplan" / "ui").glob("*.py"), ROOT / "app.py", *(ROOT / "pages").glob("*.py")]:
        text = path.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text and "DESIGN §" not in text, path
