"""Models beyond torchvision: a user's factory, the built-in transformers, token inputs.

Plan side (standard library only, no torch): parses and checks a `models` entry before any job
starts, and turns it into the canonical `model_source` a cell carries in its params.

    - name: tinynet                       # the cell's model label
      factory: models/tinynet.py:build    # a .py file (relative to the working directory) or a module, ':' and a function
      args: {width: 64}                   # keyword arguments for the factory
      input: {kind: image, size: 96}      # or {kind: tokens, length: 128, vocab: 30522}

The factory's source file is hashed into the cell's params, so editing it reruns exactly its
cells. Modules the factory file imports are not tracked (docs/models.md says so). The factory is
never imported here: the function's presence is checked on the file's syntax tree (`ast`), so a
config check costs no torch import and runs no user code.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import importlib.machinery
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

# The built-in transformers (implemented in speedatlas.measure.models.transformers): default input and the
# factory arguments a config may override (test_custom_models checks both against the code).
BUILTINS: dict[str, dict[str, Any]] = {
    "bert_base": {
        "input": {"kind": "tokens", "length": 128, "vocab": 30522},
        "args": ("layers", "width", "heads", "ffn", "dropout", "max_positions"),
    },
    "gpt2_small": {
        "input": {"kind": "tokens", "length": 256, "vocab": 50257},
        "args": ("layers", "width", "heads", "ffn", "dropout", "max_positions"),
    },
}

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*$")
_FUNCTION = re.compile(rf"^{_IDENTIFIER}$")
FACTORY_HINT = "write 'path/to/file.py:function' or 'package.module:function'"


class EntryError(ValueError):
    """A mistake in one models entry (config.py turns it into a ConfigError)."""


def is_custom(entry: Any) -> bool:
    """An entry that is not a plain torchvision model (a built-in transformer or a factory)."""
    name = entry if isinstance(entry, str) else entry["name"]
    return name in BUILTINS or (isinstance(entry, dict) and "factory" in entry)


def parse_factory(text: str) -> tuple[str, str, str]:
    """'models/net.py:build' -> ('file', 'models/net.py', 'build'); 'pkg.mod:build' -> ('module', ...)."""
    target, colon, function = text.rpartition(":")
    if not colon or not target.strip() or not _FUNCTION.fullmatch(function):
        raise EntryError(f"factory {text!r} is malformed; {FACTORY_HINT}")
    if target.endswith(".py") or "/" in target or os.sep in target:
        return "file", target, function
    if not _MODULE.fullmatch(target):
        raise EntryError(f"factory {text!r} is malformed: {target!r} is neither a .py file nor a module name; {FACTORY_HINT}")
    return "module", target, function


def module_file(module: str, cwd: Path) -> Path:
    """The source file of an importable module, found without importing it (no code runs).

    The working directory comes first on the search path, as it does for the cell's job.
    """
    search = [str(cwd), *[p for p in sys.path if p]]
    spec = None
    name = ""
    for part in module.split("."):
        name = f"{name}.{part}" if name else part
        spec = importlib.machinery.PathFinder.find_spec(name, search)
        if spec is None:
            raise EntryError(f"factory module {module!r} cannot be found (no {name!r} in the working directory or on sys.path)")
        search = list(spec.submodule_search_locations or [])
    if spec is None or not spec.origin or not spec.has_location:
        raise EntryError(f"factory module {module!r} has no source file to read")
    return Path(spec.origin)


def defines(source: str, function: str) -> bool:
    """True if the module's top level defines (or imports, or assigns) `function`."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == function:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) == function:
                    return True
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == function for t in targets):
            return True
    return False


def factory_path(text: str, cwd: Path) -> Path:
    """The source file of a factory: the .py file named, or the module's file."""
    kind, target, _ = parse_factory(text)
    if kind == "module":
        return module_file(target, cwd)
    path = Path(target) if Path(target).is_absolute() else cwd / target
    if not path.is_file():
        raise EntryError(f"factory file {target!r} does not exist (looked in {path.parent})")
    return path


def factory_files(config: dict[str, Any], cwd: Path) -> dict[str, Path]:
    """{where a bundle keeps it, under config/: source file} for every factory of the study (for
    publish): a file inside the working directory under its own relative path (the bundle's
    config/ then reruns as the working directory did), anything else under factories/ (see
    bundle_places)."""
    return {place: source for place, source, _ in bundle_places(config, cwd).values()}


def bundle_factory_strings(config: dict[str, Any], cwd: Path) -> dict[str, str]:
    """{factory as configured: as the bundle's config names it} for the factories a bundle must
    name anew: a .py file outside the working directory (an absolute path, or '../'), named by
    its copy under factories/ so the bundle reruns on another machine from its config/ folder.
    Factories inside the working directory, and modules (importable where they are installed),
    keep their names."""
    return {text: renamed for text, (_, _, renamed) in bundle_places(config, cwd).items() if renamed != text}


def bundle_places(config: dict[str, Any], cwd: Path) -> dict[str, tuple[str, Path, str]]:
    """{factory string: (place in the bundle under config/, source file, the factory string the
    bundle's config uses)} for every factory entry of the study.

    A factory outside the working directory goes to factories/ under the shortest tail of its
    path that no other factory shares: `/x/a/model.py` and `/x/b/model.py` become
    `factories/a/model.py` and `factories/b/model.py` (one alone stays `factories/model.py`), so
    two files of one name never collapse into one.
    """
    inside: dict[str, tuple[str, Path]] = {}
    outside: dict[str, Path] = {}
    for entry in config["models"]:
        if isinstance(entry, dict) and "factory" in entry:
            path = factory_path(entry["factory"], cwd)
            try:
                inside[entry["factory"]] = (path.resolve().relative_to(cwd.resolve()).as_posix(), path)
            except ValueError:
                outside[entry["factory"]] = path
    taken = {place for place, _ in inside.values()}
    places = {text: (place, path, text) for text, (place, path) in inside.items()}
    for text, place in _unique_tails(outside, taken).items():
        kind, _, function = parse_factory(text)
        places[text] = (place, outside[text], f"{place}:{function}" if kind == "file" else text)
    return places


def _unique_tails(files: dict[str, Path], taken: set[str]) -> dict[str, str]:
    """factories/<the fewest trailing parts of each file's resolved path that no other file ends
    in, and that `taken` does not hold>; the same file under two names shares its place."""
    resolved = {text: path.resolve() for text, path in files.items()}
    distinct = set(resolved.values())
    places = {}
    for path in distinct:
        for depth in range(1, len(path.parts) + 1):
            tail = path.parts[-depth:]
            place = "factories/" + "/".join(tail).lstrip("/")
            if place not in taken and not any(other.parts[-depth:] == tail for other in distinct - {path}):
                places[path] = place
                break
        else:
            raise EntryError(f"factory file {str(path)!r} cannot be told apart from another in a bundle")
    return {text: places[path] for text, path in resolved.items()}


def resolve_factory(text: str, cwd: Path) -> dict[str, str]:
    """Check a factory string against the file system; return {factory, sha256} for the spec."""
    _, _, function = parse_factory(text)
    path = factory_path(text, cwd)
    data = path.read_bytes()
    try:
        found = defines(data.decode("utf-8"), function)
    except (SyntaxError, UnicodeDecodeError) as error:
        raise EntryError(f"factory file {str(path)!r} cannot be parsed: {error}") from None
    if not found:
        raise EntryError(f"factory {text!r}: {str(path)!r} defines no function {function!r}")
    return {"factory": text, "sha256": hashlib.sha256(data).hexdigest()}


def model_input(entry: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The entry's input, complete: {kind: image, size} or {kind: tokens, length, vocab}."""
    name = entry if isinstance(entry, str) else entry["name"]
    given = dict(entry.get("input", {})) if isinstance(entry, dict) else {}
    size = entry.get("input_size", config["input_size"]) if isinstance(entry, dict) else config["input_size"]
    if name in BUILTINS:
        base = copy.deepcopy(BUILTINS[name]["input"])
        if given.get("kind", "tokens") != "tokens":
            raise EntryError(f"{name} takes token inputs, not {given['kind']!r}; write input: {{kind: tokens, length: ..}}")
        extra = sorted(set(given) - {"kind", "length", "vocab"})
        if extra:
            raise EntryError(f"{name}'s input takes length and vocab, not {', '.join(extra)}")
        return {**base, **given}
    kind = given.get("kind") or ("tokens" if {"length", "vocab"} & set(given) else "image")
    if kind == "image":
        extra = sorted(set(given) - {"kind", "size"})
        if extra:
            raise EntryError(f"input of kind image takes only 'size', not {', '.join(extra)}")
        return {"kind": "image", "size": given.get("size", size)}
    missing = [key for key in ("length", "vocab") if key not in given]
    if missing:
        raise EntryError(
            f"input of kind tokens needs {' and '.join(missing)}; "
            "write input: {kind: tokens, length: 128, vocab: 30522}"
        )
    extra = sorted(set(given) - {"kind", "length", "vocab"})
    if extra:
        raise EntryError(f"input of kind tokens takes length and vocab, not {', '.join(extra)}")
    return {"kind": "tokens", "length": given["length"], "vocab": given["vocab"]}


def check_entry(entry: Any, config: dict[str, Any], known: set[str], cwd: Path) -> None:
    """Every rule a models entry must meet beyond the schema; raises EntryError."""
    if not isinstance(entry, dict):
        return
    name = entry["name"]
    if "factory" in entry:
        if name in known or name in BUILTINS:
            raise EntryError(f"{name!r} is the name of a {'built-in' if name in BUILTINS else 'torchvision'} model; "
                             "give your factory model its own name")
        resolve_factory(entry["factory"], cwd)
    elif name in BUILTINS:
        unknown = sorted(set(entry.get("args", {})) - set(BUILTINS[name]["args"]))
        if unknown:
            raise EntryError(f"{name} takes args {', '.join(BUILTINS[name]['args'])}, not {', '.join(unknown)}")
    elif "args" in entry:
        raise EntryError(f"args apply to a factory or a built-in transformer, not to torchvision's {name!r}")
    if name not in BUILTINS and "factory" not in entry and entry.get("input", {}).get("kind") == "tokens":
        raise EntryError(f"torchvision's {name!r} takes images; token inputs need a factory or a built-in transformer")
    model_input(entry, config)


def model_source(entry: Any, config: dict[str, Any], cwd: Path) -> str:
    """Canonical JSON of what builds the model and its inputs; "" for a plain torchvision model.

    "" keeps a torchvision cell's spec byte-identical to what it was before this key existed, so
    adding the feature reruns nothing.
    """
    if not is_custom(entry):
        return ""
    name = entry if isinstance(entry, str) else entry["name"]
    args = entry.get("args", {}) if isinstance(entry, dict) else {}
    source: dict[str, Any] = {"args": args, "input": model_input(entry, config)}
    if name in BUILTINS:
        source["builtin"] = name
    else:
        source.update(resolve_factory(entry["factory"], cwd))
    return json.dumps(source, sort_keys=True)


def input_size(entry: Any, config: dict[str, Any]) -> int:
    """The cell's input_size: pixels per side for images, tokens per sequence for tokens."""
    spec = model_input(entry, config)
    return spec["size"] if spec["kind"] == "image" else spec["length"]
