"""The QR reading helper: PDFs made with Typst, read back through pdftoppm and zbarimg.

A phone held over an A4 page resolves roughly 100 dpi; a 4 cm EPC code must
come back exactly there too, accents included (zbar's own charset guessing
would turn UTF-8 ``é`` into Shift JIS ``ﾃｩ``).
"""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
import segno

from include.invoices.epc_qr import epc_payload, epc_svg
from include.invoices.qr_codes import qr_svg
from tests.qr_reading import parse_epc, qr_payloads

typst = pytest.importorskip("typst")

EPC = dict(name="Académie & Bibliothèque Crèvecœur", iban="BE68539007547034", amount=Decimal("12.50"),
           bic="GKCCBEBB", reference="+++123/4567/89002+++")
URL = "https://pay.example.org/i/2026-000042?lang=nl"


def segno_svg(data: str) -> str:
    """A plain QR code as segno's own SVG writer makes it: the helper must read any QR code, not just ours."""
    out = io.BytesIO()
    segno.make(data, micro=False).save(out, kind="svg", border=4)
    return out.getvalue().decode()


def pdf(*pages: list[tuple[str, str]]) -> bytes:
    """An A4 PDF: per page, (SVG, width) images one below the other, with some text around them."""
    inputs, body = {}, []
    for number, images in enumerate(pages):
        if number:
            body.append("#pagebreak()")
        body.append(f"= Page {number + 1}")
        for index, (svg, width) in enumerate(images):
            key = f"p{number}i{index}"
            inputs[key] = svg
            body.append(f"#image(bytes(sys.inputs.{key}), width: {width})\nOverschrijving of betaallink.")
    source = "#set page(paper: \"a4\")\n" + "\n".join(body) + "\n"
    return typst.compile(source.encode(), sys_inputs=inputs)


@pytest.fixture(scope="module")
def invoice_pdf() -> bytes:
    return pdf([(epc_svg(**EPC).decode(), "4cm"), (segno_svg(URL), "3cm")])


@pytest.mark.parametrize("dpi", [150, 100])
def test_both_codes_come_back_exactly(invoice_pdf: bytes, dpi: int) -> None:
    assert sorted(qr_payloads(invoice_pdf, dpi=dpi)) == sorted([epc_payload(**EPC), URL])


def test_epc_fields_by_name(invoice_pdf: bytes) -> None:
    [scanned] = [payload for payload in qr_payloads(invoice_pdf) if payload.startswith("BCD")]
    assert parse_epc(scanned) == {
        "service_tag": "BCD",
        "version": "002",
        "charset": "1",
        "identification": "SCT",
        "bic": "GKCCBEBB",
        "name": "Académie & Bibliothèque Crèvecœur",
        "iban": "BE68539007547034",
        "amount": Decimal("12.50"),
        "purpose": "",
        "reference": "123456789002",
        "text": "",
        "information": "",
    }


def test_pages_in_order_and_empty_pages() -> None:
    first = epc_svg(**EPC).decode()
    second = epc_svg(**{**EPC, "amount": Decimal("1"), "reference": "RF18 5390 0754 7034"}).decode()
    document = pdf([(first, "4cm")], [], [(second, "4cm")])
    assert qr_payloads(document, dpi=100) == [
        epc_payload(**EPC),
        epc_payload(**{**EPC, "amount": Decimal("1"), "reference": "RF18539007547034"}),
    ]
    assert qr_payloads(pdf([])) == []


@pytest.mark.parametrize(
    "payload",
    [
        "BCD\r\n002\r\n1\r\nSCT\r\n\r\nZoë\r\n",  # CRLF lines: an XML parser would make them LF
        "a]]>b\nc\n",  # ends zbar's CDATA early unless it switches to base64
        "Zoë é",  # UTF-8 that zbar would take for Shift JIS
        "€\x00œ",  # a NUL and a C1 byte (0x93): base64 in zbar's XML, corrupt there
    ],
)
def test_awkward_payloads_come_back_exactly(payload: str) -> None:
    svg = qr_svg(segno.make(payload.encode("utf-8"), error="m", mode="byte", micro=False)).decode()
    assert qr_payloads(pdf([(svg, "4cm"), (segno_svg(URL), "3cm")]), dpi=100) in ([payload, URL], [URL, payload])


def test_code_not_in_utf8_is_refused() -> None:
    svg = qr_svg(segno.make("Zoë".encode("iso-8859-1"), error="m", mode="byte", micro=False)).decode()
    with pytest.raises(UnicodeDecodeError):
        qr_payloads(pdf([(svg, "4cm")]))


@pytest.mark.parametrize(
    ("payload", "changed"),
    [
        ("BCD\n002\n1\nSCT\n\nBib\nBE68539007547034\nEUR12.5\n\nRF18539007547034",
         {"amount": Decimal("12.5"), "reference": "RF18539007547034"}),
        ("BCD\n002\n1\nSCT\n\nBib\nBE68539007547034\nEUR7.30\n\n\nInschrijving",
         {"amount": Decimal("7.30"), "text": "Inschrijving"}),
        ("BCD\n002\n1\nSCT\n\nBib\nBE68539007547034", {"amount": None}),
        ("BCD\n002\n1\nSCT\n\nBib\nBE68539007547034\nEUR1\nCHAR\n\nx\nthanks",
         {"amount": Decimal("1"), "purpose": "CHAR", "text": "x", "information": "thanks"}),
    ],
)
def test_parse_epc(payload: str, changed: dict) -> None:
    base = {
        "service_tag": "BCD", "version": "002", "charset": "1", "identification": "SCT", "bic": "",
        "name": "Bib", "iban": "BE68539007547034", "amount": None, "purpose": "", "reference": "", "text": "",
        "information": "",
    }
    assert parse_epc(payload) == {**base, **changed}


@pytest.mark.parametrize(
    "payload",
    [
        URL,
        "BCD\n002\n1\nSCT\n\nBib\nBE68539007547034\n12.50",
        "BCD\n002\n1\nSCT\n\nBib\nBE68539007547034\nEURx",
        "BCD\n002\n1\nSCT\n\nBib\nBE68539007547034\nEUR1\n\n\n\n\nmore",  # thirteen fields
    ],
)
def test_parse_epc_refuses(payload: str) -> None:
    with pytest.raises(ValueError):
        parse_epc(payload)
