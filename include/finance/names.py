"""Comparing people's names as banks write them: upper case, without accents, in any order.

>>> name_key("Renée  D'Hondt-Lefèvre")
'renee d hondt lefevre'
>>> name_key("RENEE D HONDT LEFEVRE") == name_key("Renée D'Hondt-Lefèvre")
True
>>> sorted(orderings("Lefèvre Renée"))
['lefevre renee', 'renee lefevre']
"""

from __future__ import annotations

import re

from anyascii import anyascii

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def name_key(text: str | None) -> str:
    """Lower-case ASCII words separated by single spaces."""
    return _NOT_ALNUM.sub(" ", anyascii(text or "").lower()).strip()


def orderings(text: str | None, limit: int = 6) -> set[str]:
    """The name's key with its words rotated: banks put the family name first or last."""
    words = name_key(text).split()
    return {" ".join(words[i:] + words[:i]) for i in range(min(len(words), limit))}


def end_user_key(context) -> str:  # type: ignore[no-untyped-def]
    """Column default for ``end_user.name_key`` (first name, then last name)."""
    values = context.get_current_parameters()
    return name_key(" ".join(part for part in (values.get("first_name"), values.get("last_name")) if part))
