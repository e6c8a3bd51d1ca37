"""Structured communications: Belgian OGM/VCS and ISO 11649 RF creditor references.

An OGM is ten digits followed by a two-digit check: the ten digits modulo 97,
or 97 when that is 0. We store the twelve digits and show them the Belgian way.

>>> ogm("062", 1)
'062000000157'
>>> format_ogm("123456789002")
'+++123/4567/89002+++'
>>> parse_ogm("***123/4567/89002***")
'123456789002'
>>> rf("062", 1)
'RF170620000001'
>>> format_rf("RF170620000001")
'RF17 0620 0000 01'
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from stdnum import iso11649
from stdnum.be import ogm_vcs
from stdnum.iso7064 import mod_97_10

from include.errors import ReferenceNumberError

OGM_BASE_DIGITS = 10


class ReferenceFormat(StrEnum):
    """How a payment reference type builds its reference numbers (seed 2.5.2 ``gen``)."""

    OGM = "OGM"  # Belgian structured communication (CODA format)
    RF = "RF"  # ISO 11649 creditor reference (the seed calls it "SEPA")


def ogm_base(prefix: str, counter: int) -> str:
    """The ten base digits: the prefix, then the counter zero-padded to fill the rest."""
    if prefix and not (prefix.isascii() and prefix.isdigit()):
        raise ReferenceNumberError(f"OGM prefix must be digits, got {prefix!r}")
    width = OGM_BASE_DIGITS - len(prefix)
    digits = str(counter)
    if counter < 0 or len(digits) > width:
        raise ReferenceNumberError(
            f"counter {counter} does not fit in {width} digits after prefix {prefix!r}"
        )
    return prefix + digits.zfill(width)


def ogm(prefix: str, counter: int) -> str:
    """Twelve-digit OGM/VCS from a prefix and a counter value (check: base mod 97, 97 for 0)."""
    base = ogm_base(prefix, counter)
    return f"{base}{int(base) % 97 or 97:02d}"


def format_ogm(number: str) -> str:
    """``+++123/4567/89002+++`` from the twelve stored digits."""
    return f"+++{ogm_vcs.format(number)}+++"


_OGM_TEXT = re.compile(r"^[+*]{3}\s*(\d{3})\s*/?\s*(\d{4})\s*/?\s*(\d{5})\s*[+*]{3}$")


def parse_ogm(text: str) -> str:
    """The twelve digits of an OGM written as ``+++…+++``, ``***…***`` or plain digits (``/``, ``-``, ``.``, spaces).

    Raises :class:`ReferenceNumberError` when the text is no valid OGM.
    """
    if len(text) == 12 and text.isascii() and text.isdigit():  # the stored form, as statements carry it
        if (int(text[:10]) % 97 or 97) == int(text[10:]):
            return text
        raise ReferenceNumberError(f"not a valid structured communication: {text!r}")
    stripped = unicodedata.normalize("NFKC", text).strip()
    match = _OGM_TEXT.match(stripped)
    digits = "".join(match.groups()) if match else re.sub(r"[\s/.\-]", "", stripped)
    if not (digits.isascii() and ogm_vcs.is_valid(digits)):
        raise ReferenceNumberError(f"not a valid structured communication: {text!r}")
    return digits


def rf(prefix: str, counter: int) -> str:
    """ISO 11649 creditor reference over the same base digits as :func:`ogm`."""
    base = ogm_base(prefix, counter)
    return "RF" + mod_97_10.calc_check_digits(base + "RF") + base


def format_rf(reference: str) -> str:
    """RF reference in groups of four, as printed on an invoice."""
    return iso11649.format(reference)


def parse_rf(text: str) -> str:
    """Compact RF reference; raises :class:`ReferenceNumberError` when invalid."""
    if not iso11649.is_valid(text):
        raise ReferenceNumberError(f"not a valid RF creditor reference: {text!r}")
    return iso11649.compact(text)


def make_reference(fmt: ReferenceFormat | str, prefix: str, counter: int) -> str:
    """A new reference number in the stored form for ``fmt``."""
    return ogm(prefix, counter) if ReferenceFormat(fmt) is ReferenceFormat.OGM else rf(prefix, counter)


def display_reference(reference: str) -> str:
    """How a stored reference number is shown to people: OGM with +++ or RF in groups."""
    return format_rf(reference) if reference.upper().startswith("RF") else format_ogm(reference)


def issuer(reference: str) -> str:
    """``Issr`` of ``CdtrRefInf`` in a bank file: BBA for an OGM, ISO for an RF reference."""
    return "ISO" if reference.upper().startswith("RF") else "BBA"
