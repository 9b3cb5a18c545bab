"""workflow/schemas/cell.schema.json is well formed: JSON merges duplicate keys silently, so a
column lost in an edit would otherwise go unnoticed."""

from __future__ import annotations

import json
from collections import Counter

from conftest import REPO


def test_every_column_is_one_object_with_unique_keys_and_a_description():
    def no_duplicates(pairs):
        repeated = [k for k, n in Counter(k for k, _ in pairs).items() if n > 1]
        assert not repeated, f"duplicate keys {repeated} in {dict(pairs).get('name')!r}"
        return dict(pairs)

    schema = json.loads((REPO / "workflow/schemas/cell.schema.json").read_text(), object_pairs_hook=no_duplicates)
    columns = schema["columns"] if isinstance(schema, dict) else schema
    names = [c["name"] for c in columns]
    assert len(names) == len(set(names)), [n for n, k in Counter(names).items() if k > 1]
    assert all(c.get("description") for c in columns), [c["name"] for c in columns if not c.get("description")]
