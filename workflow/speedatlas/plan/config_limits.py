"""Guards around config validation: a bound on its size, and every mistake reported at once.

A YAML file can make a huge document out of a small one: aliases (`*a`) repeat an anchored node
without copying it, so ten nested levels of ten aliases are 10^10 values. PyYAML builds that as a
small graph of shared objects, but anything that walks it (a schema validator, an error message
quoting a list) walks every expanded value and runs out of memory. So the size of a config after
alias expansion is counted first, visiting each shared object once, and a config far larger than
any study is refused in milliseconds.

Orchestration side (plan layer): standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# A study config is tens to a few thousand values (24 models with overrides: about 1,000).
MAX_CONFIG_VALUES = 100_000


def expanded_size(value: Any, limit: int = MAX_CONFIG_VALUES) -> int:
    """Number of values (scalars, lists, mappings, keys) after alias expansion; stops past `limit`.

    Shared objects are sized once (memoised by identity), so the cost is linear in the YAML
    file, not in its expansion. A recursive structure (`&a [*a]`) counts as too large.
    """
    memo: dict[int, int] = {}
    too_large = limit + 1

    def size(node: Any) -> int:
        if isinstance(node, dict):
            children: Iterable[Any] = [*node.keys(), *node.values()]
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            return 1
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = too_large  # while in progress: a cycle is infinitely large
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        memo[key] = min(total, too_large)
        return memo[key]

    try:
        return size(value)
    except RecursionError:  # nested deeper than Python's stack: no study looks like that
        return too_large


def size_mistake(config: Any, limit: int = MAX_CONFIG_VALUES) -> str | None:
    """One line if the config is too large to validate, else None."""
    if expanded_size(config, limit) <= limit:
        return None
    return (
        f"the config expands to more than {limit:,} values (after YAML aliases are expanded; a study "
        "has at most a few thousand); look for anchors (&name) repeated through aliases (*name), "
        "a 'YAML bomb'"
    )


def gather(checks: Iterable[Callable[[], None]], error_type: type[Exception]) -> list[str]:
    """Run every check; the messages of those that raised `error_type` (a check may hold several)."""
    messages: list[str] = []
    for check in checks:
        try:
            check()
        except error_type as error:
            messages += [m for m in getattr(error, "mistakes", [str(error)]) if m not in messages]
    return messages


def combine(messages: list[str]) -> str:
    """One mistake as its sentence; several as a count and one line each."""
    if len(messages) == 1:
        return messages[0]
    return f"{len(messages)} mistakes:\n" + "\n".join(f"  - {message}" for message in messages)
