"""The house's form (issue 26): no import circle, and docs/design.md's layout names every module.

The layers themselves are import-linter's contracts (pyproject.toml, run by .ci/run).
"""

from __future__ import annotations

import re
import sys

import grimp

from conftest import REPO

PACKAGE = REPO / "workflow" / "speedatlas"


def test_no_module_imports_itself_back():
    sys.path.insert(0, str(REPO / "workflow"))
    graph = grimp.build_graph("speedatlas")
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("speedatlas"):
                assert not graph.chain_exists(imported, module), f"{module} -> {imported} -> ... -> {module}"


def layout_section() -> str:
    text = (REPO / "docs" / "design.md").read_text()
    return text.split("## Layout (repo root)", 1)[1].split("\n## ", 1)[0]


def test_the_design_layout_names_every_module():
    section = layout_section()
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", section))
    modules = {path.stem for path in PACKAGE.rglob("*.py") if path.stem != "__init__"}
    packages = {path.parent.name for path in PACKAGE.rglob("__init__.py")}
    missing = sorted((modules | packages) - words)
    assert not missing, f"docs/design.md's layout does not name: {missing}"
