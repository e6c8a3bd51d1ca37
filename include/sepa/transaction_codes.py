"""Which debt lines a mandate may collect: transaction codes, exact or as a prefix ending in ``*``.

>>> matcher(["LID", "BOETE*"])("BOETE-LAAT")
True
>>> matcher(["LID", "BOETE*"])("LIDGELD")
False
>>> matcher(["*"])("ANYTHING")
True

:func:`matcher` is the rule. The mandate check sums the matching debt of a
million mandates in the database: :func:`sql_meanings` writes what each
pattern means (by :func:`meaning`, the rule's own reading) into the
statement, and :func:`sql_matches` only compares codes with them. The tests
hold both to the same table of cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Integer, String, func, literal, select, union_all


def meaning(pattern: str) -> tuple[str | None, str | None]:
    """What one pattern stands for: ``(code, None)`` for an exact code, ``(None, prefix)`` for a prefix (``*``
    alone: every code), ``(None, None)`` for a blank pattern, which matches nothing. Surrounding whitespace is
    ignored.

    >>> meaning(" LID "), meaning("BOETE*"), meaning("*"), meaning("  ")
    (('LID', None), (None, 'BOETE'), (None, ''), (None, None))
    """
    pattern = pattern.strip()
    if pattern.endswith("*"):
        return None, pattern[:-1]
    return pattern or None, None


def matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """A predicate telling whether a transaction code matches any of ``patterns``."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for pattern in patterns:
        code, prefix = meaning(pattern)
        if prefix is not None:
            prefixes.append(prefix)
        elif code is not None:
            exact.add(code)
    prefix_tuple = tuple(prefixes)
    return lambda code: code in exact or code.startswith(prefix_tuple)


def sql_meanings(patterns: Iterable[str]) -> Any:
    """The :func:`meaning` of each distinct one of ``patterns``, as SQL rows ``(pattern, code, prefix,
    prefix_length)`` (a CTE), for :func:`sql_matches`; None when there are none."""
    rows = [
        select(literal(pattern, String).label("pattern"), literal(code, String).label("code"),
               literal(prefix, String).label("prefix"),
               literal(None if prefix is None else len(prefix), Integer).label("prefix_length"))
        for pattern in sorted(set(patterns))
        for code, prefix in [meaning(pattern)]
    ]
    if not rows:
        return None
    return (union_all(*rows) if len(rows) > 1 else rows[0]).cte("pattern_meaning")


def sql_matches(meanings: Any, pattern: Any, code: Any) -> Any:
    """SQL true where the transaction code ``code`` matches the pattern ``pattern`` (SQL expressions; the pattern one
    of those :func:`sql_meanings` was given), as :func:`matcher` decides: the same code, or one starting with the
    prefix. Lengths count characters in both databases and comparisons are exact."""
    return (meanings.c.pattern == pattern) & (
        (code == meanings.c.code) | (func.substr(code, 1, meanings.c.prefix_length) == meanings.c.prefix)
    )
