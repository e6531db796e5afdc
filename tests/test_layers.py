"""The architecture's one-way data flow, enforced: an import scan of every module, including
imports inside functions (a lazy import is still a dependency).

core  (model, cluster, layout, problem, tasks, schedule, simulate, validate, metrics, scenario, ...)
  ↑ baselines  ↑ planner  ↑ viz  ↑ ui (pure modules, then the Streamlit-importing ones)  ↑ cli, pages
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "opplan"
# modules allowed to import streamlit inside opplan/ui (everything else there is pure logic)
UI_STREAMLIT_MODULES = {"opplan.ui.state", "opplan.ui.components", "opplan.ui.session"}
LAYERS = ("opplan.ui", "opplan.planner", "opplan.baselines", "opplan.viz", "opplan.runtime")
TOP_LEVEL_NON_CORE = {"opplan.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file, resolved to absolute names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                own = module_name(path)
                base = (own if path.name == "__init__.py" else own.rpartition(".")[0]).split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)   # `from opplan import baselines`
    return found


def layer_of(module: str) -> str:
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    return "cli" if module in TOP_LEVEL_NON_CORE else "core"


def reaches(imported: set[str], layer: str) -> list[str]:
    return sorted(m for m in imported if m == layer or m.startswith(layer + "."))


MODULES = sorted((module_name(p), p) for p in PACKAGE.rglob("*.py"))

# (importing layer, forbidden targets)
FORBIDDEN = {
    "core": ("opplan.ui", "opplan.planner", "opplan.baselines", "opplan.viz", "opplan.runtime", "opplan.cli"),
    "baselines": ("opplan.planner", "opplan.ui", "opplan.viz", "opplan.cli"),
    "planner": ("opplan.ui", "opplan.viz", "opplan.cli", "opplan.runtime"),
    "viz": ("opplan.ui", "opplan.planner", "opplan.cli", "streamlit"),
    "ui": ("opplan.cli",),
}


@pytest.mark.parametrize("module, path", MODULES, ids=[m for m, _ in MODULES])
def test_module_respects_the_layers(module, path):
    imported = imports_of(path)
    layer = layer_of(module).removeprefix("opplan.")
    broken = [target for forbidden in FORBIDDEN.get(layer, ()) for target in reaches(imported, forbidden)]
    assert not broken, f"{module} ({layer} layer) imports {broken}"


@pytest.mark.parametrize("module, path", [(m, p) for m, p in MODULES if layer_of(m) == "opplan.ui"],
                         ids=[m for m, _ in MODULES if layer_of(m) == "opplan.ui"])
def test_only_the_streamlit_modules_of_ui_import_streamlit(module, path):
    if module in UI_STREAMLIT_MODULES:
        return
    assert not reaches(imports_of(path), "streamlit"), f"{module} is a pure ui module but imports streamlit"


def test_no_core_module_imports_streamlit_or_plotly():
    for module, path in MODULES:
        if layer_of(module) == "core":
            bad = reaches(imports_of(path), "streamlit") + reaches(imports_of(path), "plotly")
            assert not bad, f"{module} imports {bad}"


def test_the_scan_sees_imports_inside_functions(tmp_path):
    """The check itself can fail: a lazy import in a function body is found."""
    sample = tmp_path / "opplan_sample.py"
    sample.write_text("def f():\n    from opplan import baselines\n    import streamlit as st\n", encoding="utf-8")
    found = imports_of(sample)
    assert reaches(found, "opplan.baselines") == ["opplan.baselines"]
    assert reaches(found, "streamlit") == ["streamlit"]


def test_importing_the_pure_ui_modules_loads_no_streamlit():
    """The scan in a second way: import them all in a fresh interpreter and look."""
    pure = [m for m, _ in MODULES if layer_of(m) == "opplan.ui" and m not in UI_STREAMLIT_MODULES]
    code = f"import sys, {', '.join(pure)}, opplan.viz; assert 'streamlit' not in sys.modules, 'streamlit loaded'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_no_design_document_is_cited():
    """Code says what it means; it never points at a document outside the repository."""
    files = [*PACKAGE.rglob("*.py"), ROOT / "app.py", *(ROOT / "views").glob("*.py"), *(ROOT / "tests").glob("*.py")]
    cited = [str(p.relative_to(ROOT)) for p in files if p != Path(__file__) and
             any(mark in p.read_text(encoding="utf-8") for mark in ("DESIGN.md", "DESIGN §"))]
    assert not cited, f"these files cite a design document: {cited}"
