"""The EPC069-12 bank-transfer QR code ("BCD" code) printed on an invoice.

A payer scans it with a banking app, which fills in a SEPA credit transfer:
beneficiary, IBAN, amount and the payment reference. The reference is what
lets us match the incoming payment to the invoice, so it goes in the
*structured* remittance field in its compact form: a Belgian OGM as its
twelve digits (Belgian banking apps recognise those as a structured
communication), an RF creditor reference without spaces. A free text only goes
in when there is no reference; the standard allows one of the two, never both.

The payload is version 002, UTF-8 (character set 1), lines joined by ``\\n``,
empty fields at the end left out, at most 331 bytes; the code uses error
correction level M, as the standard requires.

>>> from decimal import Decimal
>>> print(epc_payload("Académie & Bibliothèque Crèvecœur", "be68 5390 0754 7034", Decimal("12.5"),
...                   bic="GKCCBEBB", reference="+++123/4567/89002+++"))
BCD
002
1
SCT
GKCCBEBB
Académie & Bibliothèque Crèvecœur
BE68539007547034
EUR12.50
<BLANKLINE>
123456789002
>>> epc_payload("Bibliotheek Leuven", "BE68539007547034", Decimal("1"), bic=None, reference="rf18 5390 0754 7034")
'BCD\\n002\\n1\\nSCT\\n\\nBibliotheek Leuven\\nBE68539007547034\\nEUR1.00\\n\\nRF18539007547034'
>>> epc_payload("Bibliotheek Leuven", "BE68539007547034", Decimal("7.30"), bic=None, text="Inschrijving 2026")
'BCD\\n002\\n1\\nSCT\\n\\nBibliotheek Leuven\\nBE68539007547034\\nEUR7.30\\n\\n\\nInschrijving 2026'
>>> epc_payload("Bibliotheek Leuven", "BE68539007547034", Decimal("0"), bic=None)
Traceback (most recent call last):
...
include.invoices.epc_qr.EpcQrError: EPC QR amount must be between 0.01 and 999999999.99 EUR, got 0.00
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

import segno

from include.errors import InnenError, ReferenceNumberError
from include.finance.money import format_amount, money
from include.finance.reference_numbers import parse_ogm, parse_rf
from include.invoices.qr_codes import make_qr, qr_svg
from include.sepa.identifiers import bic_problem, compact, iban_problem

SERVICE_TAG = "BCD"
VERSION = "002"
CHARSET_UTF8 = "1"
IDENTIFICATION = "SCT"  # SEPA credit transfer
NAME_MAX = 70  # characters
TEXT_MAX = 140  # characters
MAX_PAYLOAD_BYTES = 331  # what a version 13 code holds at level M, the largest the standard allows
MIN_AMOUNT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999.99")


class EpcQrError(InnenError, ValueError):
    """An EPC QR code cannot be made from these data; the message says which field and why."""


_WHITESPACE = re.compile(r"\s+")
# Combining marks and joiners belong to the character before them: a cut may not fall just before one.
_CLINGING = frozenset({"Mn", "Mc", "Me"})
_JOINERS = frozenset({"\u200c", "\u200d"})


def _one_line(text: str) -> str:
    """Composed (NFC), every run of whitespace one space, control characters and lone surrogates dropped, and
    invisible format characters (soft hyphen, zero-width space, byte order mark, direction marks) too.

    A newline inside a field would shift every field after it. A format character copied along with a name is
    invisible on the invoice, but a banking app may show it, and the payee check (the name against the account
    holder's) sees a name that differs. Joiners stay: they hold emoji and some scripts' letters together.
    """
    text = "".join(char for char in unicodedata.normalize("NFC", text)
                   if unicodedata.category(char) != "Cf" or char in _JOINERS)
    text = _WHITESPACE.sub(" ", text)
    return "".join(char for char in text if unicodedata.category(char) not in ("Cc", "Cs")).strip()


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, never separating a letter from its accent, and after a whole word when the
    words kept fill at least half the room (a banking app shows the name as cut: "Woord en D" looks like an error).

    >>> _cut("Saq\\u0323\\u0307i", 3)  # q with dot below and dot above: no composed form, kept whole or dropped
    'Sa'
    >>> _cut("Académie", 4)
    'Acad'
    >>> _cut("Stad Leuven", 8), _cut("De Academie", 8)
    ('Stad', 'De Acade')
    """
    if len(text) <= limit:
        return text
    end = limit
    while end > 0 and (unicodedata.category(text[end]) in _CLINGING or text[end] in _JOINERS
                       or text[end - 1] in _JOINERS):
        end -= 1
    space = text.rfind(" ", 0, end + 1)
    if not text[end].isspace() and space >= limit // 2:
        end = space
    return text[:end].rstrip()


def _name(name: str) -> str:
    cleaned = _cut(_one_line(name or ""), NAME_MAX)
    if not cleaned:
        raise EpcQrError("EPC QR beneficiary name missing")
    return cleaned


def _iban(iban: str) -> str:
    problem = iban_problem(iban)
    if problem:
        raise EpcQrError(f"EPC QR beneficiary account: {problem}")
    return compact(iban)


def _bic(bic: str | None) -> str:
    if not bic or not bic.strip():
        return ""  # optional in version 002 within the EEA
    problem = bic_problem(bic)
    if problem:
        raise EpcQrError(f"EPC QR beneficiary bank: {problem}")
    return compact(bic)


def _amount(amount: Decimal) -> str:
    """``EUR12.50``: always two decimals, so the payer sees the amount the invoice shows."""
    try:
        value = money(amount)
    except ValueError as exc:
        raise EpcQrError(f"EPC QR amount: {exc}") from None
    if not MIN_AMOUNT <= value <= MAX_AMOUNT:
        raise EpcQrError(f"EPC QR amount must be between {MIN_AMOUNT} and {MAX_AMOUNT} EUR, got {value}")
    return "EUR" + format_amount(value)


def _reference(reference: str) -> str:
    """The payment reference in compact form: an RF reference, or the twelve digits of an OGM."""
    text = reference.strip()
    try:
        return parse_rf(text) if text[:2].upper() == "RF" else parse_ogm(text)
    except ReferenceNumberError as exc:
        raise EpcQrError(f"EPC QR payment reference: {exc}") from None


def _text(text: str) -> str:
    cleaned = _one_line(text)
    if len(cleaned) > TEXT_MAX:
        # Not cut: a communication that lost its end may no longer say what the payment is for.
        raise EpcQrError(f"EPC QR text has {len(cleaned)} characters, at most {TEXT_MAX} are allowed")
    return cleaned


def epc_payload(
    name: str,
    iban: str,
    amount: Decimal,
    *,
    bic: str | None,
    reference: str | None = None,
    text: str | None = None,
) -> str:
    """The text an EPC069-12 code carries (version 002, UTF-8, SEPA credit transfer).

    ``name`` is cut to 70 characters; ``reference`` (OGM in any usual notation,
    or RF) and ``text`` (at most 140 characters) exclude each other. Raises
    :class:`EpcQrError` for anything a banking app would refuse or misread.
    """
    has_reference = bool(reference and reference.strip())
    has_text = bool(text and _one_line(text))
    if has_reference and has_text:
        raise EpcQrError("EPC QR code takes a structured reference or a text, not both")
    fields = [
        SERVICE_TAG,
        VERSION,
        CHARSET_UTF8,
        IDENTIFICATION,
        _bic(bic),
        _name(name),
        _iban(iban),
        _amount(amount),
        "",  # purpose code: none
        _reference(reference) if has_reference else "",
        _text(text) if has_text else "",
    ]
    while not fields[-1]:  # the standard: nothing after the last field that has a value
        fields.pop()
    payload = "\n".join(fields)
    size = len(payload.encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        raise EpcQrError(f"EPC QR payload has {size} bytes in UTF-8, at most {MAX_PAYLOAD_BYTES} are allowed")
    return payload


def epc_qr(
    name: str,
    iban: str,
    amount: Decimal,
    *,
    bic: str | None,
    reference: str | None = None,
    text: str | None = None,
) -> segno.QRCode:
    """The QR code of :func:`epc_payload`: level M exactly, no micro QR.

    The payload goes in as UTF-8 bytes in byte mode: given a str, segno would
    encode one that fits ISO 8859-1 in that set, and the code would then
    contradict its own character-set field. ``boost_error`` is off because the
    standard fixes the level at M. The code is segno's, its mask chosen by
    :func:`include.invoices.qr_codes.make_qr` (the same choice, faster).

    >>> from decimal import Decimal
    >>> qr = epc_qr("Académie", "BE68539007547034", Decimal("12.50"), bic=None, reference="123456789002")
    >>> qr.error, qr.mode, qr.is_micro
    ('M', 'byte', False)
    """
    payload = epc_payload(name, iban, amount, bic=bic, reference=reference, text=text)
    return make_qr(payload.encode("utf-8"), error="m")


def epc_svg(
    name: str,
    iban: str,
    amount: Decimal,
    *,
    bic: str | None,
    reference: str | None = None,
    text: str | None = None,
) -> bytes:
    """:func:`epc_qr` as a deterministic SVG (see :func:`qr_svg`): the same invoice gives the same bytes."""
    return qr_svg(epc_qr(name, iban, amount, bic=bic, reference=reference, text=text))
