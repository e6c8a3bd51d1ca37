"""Text for bank files: the EPC basic Latin set (SAFESEPA) or escaped UTF-8 (SEPA).

The EPC basic Latin set is ``a-z A-Z 0-9 / - ? : ( ) . , ' +`` and space. For
SAFESEPA every other character is first transliterated (é → e, ß → ss,
Ø → O) and a character that still falls outside becomes one ``?``, as the
seed says. Invisible format characters (BOM, zero-width space, soft hyphen)
are dropped in both modes.

>>> basic_latin("Zoë D'Hondt-Vandenbroucke & Søn")
"Zoe D'Hondt-Vandenbroucke ? Son"
>>> basic_latin("Straße 12\\n3000 Leuven")
'Strasse 12 3000 Leuven'
>>> xml_text("Zoë & <Co>")
'Zoë &amp; &lt;Co&gt;'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from anyascii import anyascii

BASIC_LATIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")
_WHITESPACE = re.compile(r"\s+")
# Characters XML 1.0 does not allow at all (C0 controls but tab, newline, return; surrogates; U+FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SHORT_CODE = re.compile(r":[^:\s]+:")  # what anyascii makes of an emoji
_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# Text made of basic Latin words separated by single spaces needs no work at all (the common case);
# in UTF-8 mode (SEPA) any printable words do, as long as they hold nothing to escape (_plain_utf8).
_PLAIN = re.compile(r"[A-Za-z0-9/\-?:().,'+]+(?: [A-Za-z0-9/\-?:().,'+]+)*")
# The same for texts joined by "|", which is not in the set: the whole matches exactly when every text does.
_PLAIN_JOINED = re.compile(rf"{_PLAIN.pattern}(?:\|{_PLAIN.pattern})*")


def basic_latin(text: str) -> str:
    """``text`` reduced to the EPC basic Latin set: transliterated, then ``?`` for the rest."""
    if all(char in BASIC_LATIN for char in text):
        return text
    # Composed first, so "e" + combining diaeresis is one "ë"; an accent left on its own is dropped.
    text = unicodedata.normalize("NFC", _WHITESPACE.sub(" ", _NOT_XML.sub("", text)))
    out = []
    for char in text:
        if char in BASIC_LATIN:
            out.append(char)
        elif unicodedata.combining(char) or unicodedata.category(char) == "Cf":
            continue  # an accent left on its own; an invisible format character (BOM, zero-width, soft hyphen)
        else:
            latin = anyascii(char)
            # One "?" for a character whose transliteration falls outside the set (« is "<<"), or is an emoji's
            # short code (":grinning:"), no letter of a name.
            out.append(latin if latin and set(latin) <= BASIC_LATIN and not _SHORT_CODE.fullmatch(latin) else "?")
    return "".join(out)


def xml_chars(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry at all (lxml refuses them), nothing else changed.

    >>> xml_chars("Zoë\x0b & <Co>\x01")
    'Zoë & <Co>'
    """
    return _NOT_XML.sub("", text)


def xml_text(text: str) -> str:
    """``text`` as XML character data: escaped, whitespace runs collapsed, forbidden characters dropped."""
    text = _WHITESPACE.sub(" ", _NOT_XML.sub("", text))
    return text.translate(_ESCAPE)


def _plain_utf8(text: str) -> bool:
    """Whether ``text`` is already what :func:`bank_text` makes of it in UTF-8 mode (a fast path).

    ``isprintable`` is false for every control, line or paragraph separator,
    format character, surrogate, non-character and space other than " ";
    the rest rules out what is escaped and runs of spaces.
    """
    return (text.isprintable() and "&" not in text and "<" not in text and ">" not in text and "  " not in text
            and text[:1] != " " and text[-1:] != " ")


def bank_text(text: str | None, max_length: int, *, safe: bool) -> str:
    """A text field for a bank file: reduced (``safe``) or kept in UTF-8, trimmed to ``max_length``, escaped."""
    if kept_as_is(text, max_length, safe=safe):
        return text  # type: ignore[return-value]
    return _bank_text(text, max_length, safe=safe)


def kept_as_is(text: str | None, max_length: int, *, safe: bool) -> bool:
    """Whether :func:`bank_text` gives ``text`` back as it is, seen without making anything (a false answer for a
    plain text can only come from :func:`bank_text`'s own reading, never a true one for a text it would change).

    >>> kept_as_is("BIB-M-0000042", 35, safe=True), kept_as_is("Zoë", 35, safe=True), kept_as_is("Zoë", 35, safe=False)
    (True, False, True)
    """
    return text is not None and len(text) <= max_length and bool(_PLAIN.fullmatch(text) if safe else _plain_utf8(text))


def plain_texts(texts: Sequence[str], max_length: int, *, safe: bool) -> bool:
    """Whether :func:`bank_text` keeps every one of ``texts`` as it is: one check over a whole column.

    A false answer only means "look at each": it is also given for some
    texts that are plain (one holding "| " for instance), never the other
    way round.

    >>> plain_texts(["fp:BIB:1", "fp:BIB:2"], 35, safe=True), plain_texts(["Zoë", "Jan"], 35, safe=True)
    (True, False)
    >>> plain_texts(["Zoë", "Jan"], 70, safe=False), plain_texts(["Jan ", "Piet"], 70, safe=False)
    (True, False)
    """
    try:
        joined = "|".join(texts)  # a TypeError when one is None or no text at all
    except TypeError:
        return False
    if not texts or max(map(len, texts)) > max_length:
        return False
    if safe:  # "|" in a text itself would pass for a separator
        return joined.count("|") == len(texts) - 1 and _PLAIN_JOINED.fullmatch(joined) is not None
    return _plain_utf8(joined) and "| " not in joined and " |" not in joined


def _bank_text(text: str | None, max_length: int, *, safe: bool) -> str:
    value = _NOT_XML.sub("", text or "")
    if not value.isprintable():  # invisible format characters (BOM, zero-width, soft hyphen) are dropped
        value = "".join(char for char in value if unicodedata.category(char) != "Cf")
    value = value.strip()
    if safe:
        value = basic_latin(value)
    value = _WHITESPACE.sub(" ", value).strip()[:max_length].rstrip()
    return xml_text(value)
