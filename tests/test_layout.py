"""The house's form (issue 26): no import circle, and docs/design.md's layout names every module.

docs/design.md's "Layout (repo root)" is the one full list of the code (issue 25): it names every
module and package of workflow/speedatlas/, every script of workflow/scripts/ and every .smk of
workflow/rules/; README.md and the other docs link to it rather than keep a list of their own, and
every repository path the documents name exists. The layers themselves are import-linter's
contracts (pyproject.toml, run by .ci/run).
"""

from __future__ import annotations

import re
import sys

import grimp

from conftest import REPO

PACKAGE = REPO / "workflow" / "speedatlas"
SCRIPTS = REPO / "workflow" / "scripts"
RULES = REPO / "workflow" / "rules"
DOCUMENTS = ["README.md", "config/README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]


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


def test_the_design_layout_names_every_script_and_rule_file():
    names = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*\.(?:py|smk)\b", layout_section()))
    scripts = {path.name for path in SCRIPTS.glob("*.py")}
    rule_files = {path.name for path in RULES.rglob("*.smk")}
    missing = sorted((scripts | rule_files) - names)
    assert not missing, f"docs/design.md's layout does not name: {missing}"


def test_the_layout_has_one_home():
    """The README and the other docs link to docs/design.md's layout instead of keeping their own."""
    assert "docs/design.md" in (REPO / "README.md").read_text()
    for document in DOCUMENTS:
        if document == "docs/design.md":
            continue
        headings = re.findall(r"^#+ *(Layout\b.*)$", (REPO / document).read_text(), flags=re.M)
        assert not headings, f"{document} has a layout section of its own ({headings}): link docs/design.md's"


# A repository path in a document: under one of these folders (plan/, measure/, analyze/ and
# present/ short for workflow/speedatlas/'s), ending in a file name with a suffix or
# in '/'; placeholders ('<study>', '…', '*', '{a,b}', 'key=…') are not paths to check.
PATH = re.compile(r"(?<![\w./-])((?:workflow|config|benchmarks|tests|docs|profiles|envs|published|speedatlas|plan|measure|analyze|present)/[\w./-]*\w(?:\.\w+|/))")
PLACEHOLDER = re.compile(r"[<>…*{}=]|\.\.\.")
# Paths the documents name that are not in the repository, each with the reason.
ELSEWHERE = {"config/factories": "inside a publish bundle: the factory files of a study's own models"}


def documented_paths(text: str) -> set[str]:
    """Paths in backticks or Markdown link targets."""
    spans = re.findall(r"`([^`\n]+)`", text) + re.findall(r"\]\(([^)\s]+)\)", text)
    found = set()
    for span in spans:
        if PLACEHOLDER.search(span):
            continue
        found.update(m.rstrip("/.") for m in PATH.findall(span))
    return found


def test_every_path_the_documents_name_exists():
    missing = []
    for document in DOCUMENTS:
        base = (REPO / document).parent
        text = (REPO / document).read_text()
        for path in sorted(documented_paths(text)):
            elsewhere = any(path == p or path.startswith(p + "/") for p in ELSEWHERE)
            places = (REPO / path, base / path, REPO / "workflow" / path, PACKAGE / path)
            if not (elsewhere or any(place.exists() for place in places)):
                missing.append(f"{document}: {path}")
    assert not missing, "documents name paths that do not exist:\n" + "\n".join(missing)


def test_every_link_the_documents_make_resolves():
    """Relative Markdown links ([text](mac.md), [text](../config/README.md)) point at a file or folder."""
    broken = []
    for document in DOCUMENTS:
        base = (REPO / document).parent
        for target in re.findall(r"\]\(([^)\s]+)\)", (REPO / document).read_text()):
            if re.match(r"[a-z]+:|#", target):
                continue  # a web address or an anchor in the same page
            if not (base / target.split("#", 1)[0]).exists():
                broken.append(f"{document}: {target}")
    assert not broken, "documents link to paths that do not exist:\n" + "\n".join(broken)
