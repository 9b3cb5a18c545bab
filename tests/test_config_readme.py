"""config/README.md documents every key of the schema, and no key the schema does not have.

The schema (workflow/schemas/config.schema.yaml) is the single source of keys and defaults; this
test keeps the README's key table from drifting away from it.
"""

from __future__ import annotations

import re

from conftest import REPO
from speedatlas.plan.config import load_schema


def documented_keys() -> set[str]:
    text = (REPO / "config" / "README.md").read_text()
    return set(re.findall(r"^\| `([a-z_.{},0-9]+)` \|", text, flags=re.M))


def schema_keys() -> set[str]:
    """Top-level keys, and `parent.child` for objects whose children are fixed keys."""
    schema = load_schema()
    keys = set()
    for name, spec in schema["properties"].items():
        if "$ref" in spec:
            spec = {**schema["$defs"][spec["$ref"].rsplit("/", 1)[-1]], **spec}
        children = spec.get("properties")
        if spec.get("type") == "object" and children:
            keys |= {f"{name}.{child}" for child in children}
        else:
            keys.add(name)
    return keys


def expand(key: str) -> set[str]:
    """`a.b.{x,y}` in the README stands for a.b (a nested object documented key by key)."""
    return {key.split(".{", 1)[0]}


def test_every_schema_key_is_documented_and_nothing_else():
    documented = set().union(*(expand(k) for k in documented_keys()))
    missing = schema_keys() - documented
    assert not missing, f"keys missing from config/README.md: {sorted(missing)}"
    unknown = {k for k in documented if k not in schema_keys()}
    assert not unknown, f"config/README.md documents keys the schema does not have: {sorted(unknown)}"

