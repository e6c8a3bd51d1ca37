"""EPC069-12 ("BCD") payloads and codes: the exact text a banking app reads, and what is refused.

Expected payloads are written out field by field from the standard (version
002, character set 1 = UTF-8, SCT, BIC, name, IBAN, EUR amount, purpose,
structured reference, text; nothing after the last field with a value).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from include.errors import InnenError
from include.invoices.epc_qr import (
    MAX_PAYLOAD_BYTES,
    EpcQrError,
    epc_payload,
    epc_qr,
    epc_svg,
)
from include.invoices.qr_codes import EPC_WIDTH_MM, MIN_MODULE_MM, QUIET_ZONE, module_mm, qr_svg

IBAN = "BE68539007547034"
ACADEMIE = "Académie & Bibliothèque Crèvecœur"


def lines(*fields: str) -> str:
    return "\n".join(fields)


# --- exact payloads -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(  # OGM as printed on a transfer form: its twelve digits, BIC upper-case
            dict(name=ACADEMIE, iban="be68 5390 0754 7034", amount=Decimal("12.5"), bic="gkcc bebb",
                 reference="+++123/4567/89002+++"),
            lines("BCD", "002", "1", "SCT", "GKCCBEBB", ACADEMIE, IBAN, "EUR12.50", "", "123456789002"),
            id="ogm-plus-notation",
        ),
        pytest.param(
            dict(name="Bibliotheek", iban=IBAN, amount=Decimal("12.50"), bic=None, reference="***123/4567/89002***"),
            lines("BCD", "002", "1", "SCT", "", "Bibliotheek", IBAN, "EUR12.50", "", "123456789002"),
            id="ogm-star-notation",
        ),
        pytest.param(
            dict(name="Bibliotheek", iban=IBAN, amount=Decimal("12.50"), bic=None, reference=" 123456789002 "),
            lines("BCD", "002", "1", "SCT", "", "Bibliotheek", IBAN, "EUR12.50", "", "123456789002"),
            id="ogm-stored-digits",
        ),
        pytest.param(  # RF compact and upper-case
            dict(name="Bibliotheek", iban=IBAN, amount=Decimal("1"), bic="", reference="rf18 5390 0754 7034"),
            lines("BCD", "002", "1", "SCT", "", "Bibliotheek", IBAN, "EUR1.00", "", "RF18539007547034"),
            id="rf-lower-spaced",
        ),
        pytest.param(
            dict(name="Bibliotheek", iban=IBAN, amount=Decimal("1"), bic=None, reference="RF170620000001"),
            lines("BCD", "002", "1", "SCT", "", "Bibliotheek", IBAN, "EUR1.00", "", "RF170620000001"),
            id="rf-innen-generated",
        ),
        pytest.param(  # text only: purpose and reference stay as empty lines before it
            dict(name="Bibliotheek", iban=IBAN, amount=Decimal("7.3"), bic=None, text="Inschrijving Zoë 2026"),
            lines("BCD", "002", "1", "SCT", "", "Bibliotheek", IBAN, "EUR7.30", "", "", "Inschrijving Zoë 2026"),
            id="text-only",
        ),
        pytest.param(  # neither: the payload ends with the amount
            dict(name="Bibliotheek", iban=IBAN, amount=Decimal("7.30"), bic=None, reference=" ", text=""),
            lines("BCD", "002", "1", "SCT", "", "Bibliotheek", IBAN, "EUR7.30"),
            id="no-remittance",
        ),
        pytest.param(  # line breaks and tabs in a field would shift the fields after it
            dict(name=" Stad\nLeuven\t(Dienst  Cultuur) ", iban=IBAN, amount=Decimal("2"), bic=None,
                 text="regel 1\r\nregel 2"),
            lines("BCD", "002", "1", "SCT", "", "Stad Leuven (Dienst Cultuur)", IBAN, "EUR2.00", "", "",
                  "regel 1 regel 2"),
            id="one-line-fields",
        ),
        pytest.param(  # invisible format characters copied with a name: soft hyphen, zero-width space, BOM, LRM
            dict(name="\ufeffBiblio\u00adtheek \u200b Leuven\u200e", iban=IBAN, amount=Decimal("2"), bic=None,
                 text="Lid\u00adgeld 2026"),
            lines("BCD", "002", "1", "SCT", "", "Bibliotheek Leuven", IBAN, "EUR2.00", "", "", "Lidgeld 2026"),
            id="format-characters",
        ),
        pytest.param(  # decomposed accents are composed, so they count as one character each
            dict(name="Acade\u0301mie", iban=IBAN, amount=Decimal("2"), bic=None, reference="123456789002"),
            lines("BCD", "002", "1", "SCT", "", "Académie", IBAN, "EUR2.00", "", "123456789002"),
            id="nfc-name",
        ),
    ],
)
def test_payload(kwargs: dict, expected: str) -> None:
    payload = epc_payload(**kwargs)
    assert payload == expected
    assert not payload.endswith("\n")


@pytest.mark.parametrize(
    ("amount", "field"),
    [
        (Decimal("1"), "EUR1.00"),
        (Decimal("12.5"), "EUR12.50"),
        (Decimal("12.50"), "EUR12.50"),
        (Decimal("0.01"), "EUR0.01"),
        (Decimal("1234.5"), "EUR1234.50"),
        (Decimal("1E+2"), "EUR100.00"),  # plain notation, never an exponent
        (Decimal("999999999.99"), "EUR999999999.99"),
        (Decimal("12.340"), "EUR12.34"),  # a trailing zero is no fraction of a cent
        (7, "EUR7.00"),
    ],
)
def test_amount_field(amount: Decimal, field: str) -> None:
    payload = epc_payload("Bibliotheek", IBAN, amount, bic=None, reference="123456789002")
    assert payload.split("\n")[7] == field


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("A" * 70, "A" * 70),
        ("A" * 71, "A" * 70),
        ("é" * 80, "é" * 70),  # characters, not bytes
        ("A" * 69 + " B", "A" * 69),  # no trailing space after the cut
        ("A" * 69 + "q\u0323\u0307", "A" * 69),  # q with two accents (no composed form): kept whole or dropped
        ("A" * 68 + "q\u0323\u0307", "A" * 68),  # the cut would fall between the two accents
        ("A" * 67 + "q\u0323\u0307", "A" * 67 + "q\u0323\u0307"),  # exactly 70 code points
        # A banking app shows the name as it is cut: after the last whole word, not in the middle of one
        ("Gemeentelijke Openbare Bibliotheek en Academie voor Muziek, Woord en Dans van de Stad Sint-Pieters-Leeuw",
         "Gemeentelijke Openbare Bibliotheek en Academie voor Muziek, Woord en"),
        ("A" * 40 + " " + "B" * 40, "A" * 40),
        ("AB " + "C" * 80, "AB " + "C" * 67),  # the words before the cut would leave most of the room empty
    ],
)
def test_name_cut_safely(name: str, expected: str) -> None:
    assert epc_payload(name, IBAN, Decimal("1"), bic=None).split("\n")[5] == expected


def test_accents_and_ampersand_are_utf8() -> None:
    payload = epc_payload(ACADEMIE, IBAN, Decimal("12.5"), bic=None, reference="123456789002")
    assert payload.split("\n")[2] == "1"  # UTF-8
    assert payload.split("\n")[5] == ACADEMIE  # no escaping: the QR code carries plain text
    assert ACADEMIE.encode("utf-8") in payload.encode("utf-8")


# --- refusals -------------------------------------------------------------------


def call(**changes: object) -> str:
    kwargs: dict = dict(name="Bibliotheek", iban=IBAN, amount=Decimal("12.50"), bic=None, reference="123456789002")
    kwargs.update(changes)
    return epc_payload(**kwargs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(amount=Decimal("0")), "between 0.01 and 999999999.99 EUR, got 0.00"),
        (dict(amount=Decimal("-5")), "got -5.00"),
        (dict(amount=Decimal("1000000000.00")), "got 1000000000.00"),
        (dict(amount=Decimal("12.345")), "fractions of a cent"),
        (dict(amount=Decimal("NaN")), "not an amount"),
        (dict(iban="BE68539007547035"), "BE68 **** **** 7035 is invalid"),  # the IBAN stays masked
        (dict(iban="BE6853900754"), "IBAN"),
        (dict(iban=""), "IBAN missing"),
        (dict(bic="GKCCBEB"), "BIC GKCCBEB is invalid"),
        (dict(reference="+++123/4567/89003+++"), "not a valid structured communication"),
        (dict(reference="123456789003"), "not a valid structured communication"),
        (dict(reference="RF19539007547034"), "not a valid RF creditor reference"),
        (dict(reference="INV-2026-0001"), "not a valid structured communication"),
        (dict(reference="123456789002", text="Inschrijving"), "not both"),
        (dict(reference=None, text="x" * 141), "141 characters, at most 140"),
        (dict(name=""), "name missing"),
        (dict(name=" \n\t "), "name missing"),
    ],
)
def test_refusals(changes: dict, message: str) -> None:
    with pytest.raises(EpcQrError, match=re.escape(message)) as caught:
        call(**changes)
    assert isinstance(caught.value, InnenError) and isinstance(caught.value, ValueError)


def test_float_amount_is_a_bug_not_a_refusal() -> None:
    with pytest.raises(TypeError, match="float"):
        call(amount=12.5)


def test_payload_size_limit() -> None:
    """331 bytes fit (the text may be 140 characters, but not 140 three-byte ones); 332 do not."""
    base = call(reference=None, text="x")
    room = MAX_PAYLOAD_BYTES - (len(base.encode("utf-8")) - 1)  # bytes left for the text
    euros, ascii_ = divmod(room, 3)
    text = "€" * euros + "x" * ascii_
    assert len(text) <= 140
    fits = call(reference=None, text=text)
    assert len(fits.encode("utf-8")) == MAX_PAYLOAD_BYTES
    qr = epc_qr("Bibliotheek", IBAN, Decimal("12.50"), bic=None, text=text)
    assert qr.version <= 13 and qr.error == "M"
    with pytest.raises(EpcQrError, match=f"{MAX_PAYLOAD_BYTES + 1} bytes in UTF-8, at most {MAX_PAYLOAD_BYTES}"):
        call(reference=None, text=text + "x")


def test_the_largest_code_prints_with_modules_a_phone_reads() -> None:
    """The fullest payload the standard allows makes a version 13 code at level M (EPC069-12: level M, version at
    most 13); printed EPC_WIDTH_MM wide with its 4-module quiet zone, its modules still measure 0.9 mm."""
    room = MAX_PAYLOAD_BYTES - (len(call(reference=None, text="x").encode("utf-8")) - 1)
    text = "€" * (room // 3) + "x" * (room % 3)
    assert len(call(reference=None, text=text).encode("utf-8")) == MAX_PAYLOAD_BYTES
    qr = epc_qr("Bibliotheek", IBAN, Decimal("12.50"), bic=None, text=text)
    assert (qr.version, qr.error) == (13, "M")
    assert QUIET_ZONE >= 4 and qr_svg(qr).startswith(b'<svg xmlns="http://www.w3.org/2000/svg" width="77" ')
    assert module_mm(qr, EPC_WIDTH_MM) >= 0.9 > MIN_MODULE_MM
    usual = epc_qr(ACADEMIE, IBAN, Decimal("12.50"), bic="GKCCBEBB", reference="+++123/4567/89002+++")
    assert usual.version <= 7 and module_mm(usual, EPC_WIDTH_MM) >= 1.3


# --- the code and its SVG -------------------------------------------------------


ARGS = (ACADEMIE, IBAN, Decimal("12.50"))
KWARGS = dict(bic="GKCCBEBB", reference="+++123/4567/89002+++")


def test_qr_code_is_level_m_byte_mode_utf8() -> None:
    qr = epc_qr(*ARGS, **KWARGS)
    assert (qr.error, qr.mode, qr.is_micro) == ("M", "byte", False)
    assert qr.version <= 13


def _dark_modules(svg: bytes) -> set[tuple[int, int]]:
    path = re.search(rb' d="([^"]*)"', svg).group(1).decode()
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z", path)
    assert "".join(f"M{x} {y}h{w}v1h-{w2}z" for x, y, w, w2 in runs) == path
    return {(int(x) + i, int(y)) for x, y, w, _ in runs for i in range(int(w))}


def test_svg_draws_exactly_the_code_with_a_quiet_zone() -> None:
    qr = epc_qr(*ARGS, **KWARGS)
    svg = epc_svg(*ARGS, **KWARGS)
    size = len(qr.matrix) + 2 * QUIET_ZONE
    assert svg.startswith(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}"'.encode()
    )
    assert b"<?xml" not in svg and svg.endswith(b"</svg>\n")
    assert f'<rect width="{size}" height="{size}" fill="#fff"/>'.encode() in svg
    assert b'<path fill="#000" d="' in svg
    expected = {
        (x + QUIET_ZONE, y + QUIET_ZONE) for y, row in enumerate(qr.matrix) for x, dark in enumerate(row) if dark
    }
    assert _dark_modules(svg) == expected  # so nothing is drawn in the quiet zone either


def test_svg_is_deterministic() -> None:
    first = epc_svg(*ARGS, **KWARGS)
    assert epc_svg(*ARGS, **KWARGS) == first
    assert epc_svg(*ARGS, bic="GKCCBEBB", reference="123456789002") == first  # same payload, other notation
    assert epc_svg(ACADEMIE, IBAN, Decimal("12.51"), **KWARGS) != first
