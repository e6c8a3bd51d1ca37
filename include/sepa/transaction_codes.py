"""Which debt lines a mandate may collect: transaction codes, exact or as a prefix ending in ``*``.

>>> matcher(["LID", "BOETE*"])("BOETE-LAAT")
True
>>> matcher(["LID", "BOETE*"])("LIDGELD")
False
>>> matcher(["*"])("ANYTHING")
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache


def matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A predicate telling whether a transaction code matches any of ``patterns``."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for pattern in patterns:
        pattern = pattern.strip()
        if pattern.endswith("*"):
            prefixes.append(pattern[:-1])
        elif pattern:
            exact.add(pattern)
    prefix_tuple = tuple(prefixes)
    return lambda code: code in exact or code.startswith(prefix_tuple)


@lru_cache(maxsize=4096)
def cached_matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """:func:`matcher` for a tuple of patterns, kept for reuse: mandates share a few pattern sets."""
    return matcher(patterns)
