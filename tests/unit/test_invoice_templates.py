"""Invoice templates: every placeholder of seed 2.4.8, refusals at load time, and the rules deciding invoices."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest

from include.invoices.channel import Channel, decide_channel
from include.invoices.making import Step, decide
from include.invoices.render import Renderer, page_count
from include.invoices.templates import TemplateError, parse_template, template_path

EVERY = """#set page(width: 40cm, height: auto)
#set text(font: "DejaVu Sans Mono", size: 9pt)
A=$State.Camount

B=$State.Ccur

C=$State.Cinvoicenr

D=$State.Cref

E=$State.Cpaydate

F=$State.Cfploi

G=$State.Ctitle

H=$State.Ctitle{}

I=$State.Ctitle[1]

J=$State.Ctitle[0]

K=$State.Ctitle[7]/

L=$Euser.name

M=$Euser.firstname $Euser.lastname $Euser.eloi

N=$Euser.street $Euser.number $Euser.zip $Euser.city $Euser.country

O=$Euser.address

P=$Creditor.name $Creditor.iban $Creditor.bic $Creditor.id

{debt_lines}

{payment_instructions}

{epc_qr}

{invoice_qr}
"""

DATA = {
    "language": "nl", "State.Camount": "1.234,50", "State.Ccur": "EUR", "State.Cinvoicenr": "BIB-42",
    "State.Cref": "+++090/9337/55493+++", "State.Cpaydate": "24/12/2026", "State.Cfploi": "fp:BIB:42",
    "State.Ctitle": "Eerste lijn Tweede & derde", "State.Ctitle{}": ["Eerste lijn", "Tweede & derde"],
    "Euser.name": "Zoë D'Hondt & Co #1 *vet* $x$", "Euser.firstname": "Zoë", "Euser.lastname": "D'Hondt",
    "Euser.eloi": "e:42", "Euser.street": "Rue de l'Étuve", "Euser.number": "12", "Euser.zip": "1000",
    "Euser.city": "Brussel", "Euser.country": "BE", "Euser.address{}": ["Zoë D'Hondt", "Rue de l'Étuve 12", "1000 Brussel"],
    "Creditor.name": "Crèvecœur", "Creditor.iban": "BE68 5390 0754 7034", "Creditor.bic": "GKCCBEBB",
    "Creditor.id": "BE69ZZZ050D000000008",
    "lines": [{"code": "LID", "description": "Lidgeld", "amount": "1.234,50", "open": "1.234,50"}],
    "instructions": "Gelieve over te schrijven.", "epc_svg": None, "pom_svg": None, "pay_url": None,
}


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "TEST.nl.typ").write_text(EVERY, encoding="utf-8")
    return tmp_path


def test_every_placeholder_is_filled_with_its_value_as_text(folder: Path) -> None:
    text = _text(Renderer(folder).render(folder / "TEST.nl.typ", DATA))
    lines = text.splitlines()
    expected = {
        "A": "1.234,50", "B": "EUR", "C": "BIB-42", "D": "+++090/9337/55493+++", "E": "24/12/2026", "F": "fp:BIB:42",
        "G": "Eerste lijn Tweede & derde", "I": "Tweede & derde", "J": "Eerste lijn", "K": "/",
        "L": "Zoë D'Hondt & Co #1 *vet* $x$", "M": "Zoë D'Hondt e:42", "N": "Rue de l'Étuve 12 1000 Brussel BE",
        "P": "Crèvecœur BE68 5390 0754 7034 GKCCBEBB BE69ZZZ050D000000008",
    }
    for key, value in expected.items():
        assert f"{key}={value}" in lines, (key, value)
    # {} keeps the line breaks: the second line of the title stands on a line of its own
    at = lines.index("H=Eerste lijn")
    assert lines[at + 1] == "Tweede & derde"
    at = lines.index("O=Zoë D'Hondt")
    assert lines[at + 1 : at + 3] == ["Rue de l'Étuve 12", "1000 Brussel"]
    assert "Lidgeld" in text and "Gelieve over te schrijven." in text


@pytest.mark.parametrize("source, line, named", [
    ("Bedrag $State.Cbedrag", 1, "$State.Cbedrag"),
    ("ok\n\n  $Euser.shoesize", 3, "$Euser.shoesize"),
    ("$Creditor.pin", 1, "$Creditor.pin"),
    ("x\n{pom_qr}", 2, "{pom_qr}"),
    ("$Verzender.naam", 1, "$Verzender.naam"),
    ("$State.Camount{}", 1, "$State.Camount{}"),
    # Near misses that Typst took for text or math: printed as written, or an error naming no placeholder.
    ("x\n{invoiceqr}", 2, "{invoiceqr}, did you mean {invoice_qr}?"),
    ("{Invoice_QR}", 1, "{Invoice_QR}, did you mean {invoice_qr}?"),
    ("{ epc_qr }", 1, "did you mean {epc_qr}?"),
    ("Bedrag $state.Camount", 1, "$state.Camount, placeholders are written $State."),
    ("$euser.name", 1, "$euser.name"),
    ("$State.Ctitle[x]", 1, "$State.Ctitle[x] takes a line number"),
    ("$Euser.name[x]", 1, "only $State.Ctitle takes"),
    ("Bedrag: $amount EUR", 1, "$amount is a placeholder of the pay link, not of invoices: use $State.Camount"),
])
def test_an_unknown_placeholder_is_refused_naming_template_line_and_placeholder(source: str, line: int, named: str) -> None:
    with pytest.raises(TemplateError) as refused:
        parse_template(source, "FAC.fr.typ")
    assert f"template FAC.fr.typ, line {line}" in str(refused.value) and named in str(refused.value)


def test_a_template_typst_cannot_read_is_refused_when_loaded(tmp_path: Path) -> None:
    (tmp_path / "BAD.nl.typ").write_text("#let x = (\n$State.Camount", encoding="utf-8")
    with pytest.raises(TemplateError, match="BAD.nl.typ"):
        Renderer(tmp_path).template(tmp_path / "BAD.nl.typ")


def test_typst_braces_are_not_taken_for_placeholders() -> None:
    template = parse_template("#let f(x) = {x}\n#{ let y = 1 }\n{debt_lines}", "t")
    assert [p.key for p in template.placeholders] == ["{debt_lines}"]
    assert parse_template("#{ x }\n$arrow.r$ $x.y$ $amounts$ $invoice$", "t").placeholders == ()


def test_the_template_is_found_by_print_state_then_language_then_default(tmp_path: Path) -> None:
    for name in ("FAC.nl.typ", "default.nl.typ", "default.fr.typ"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert template_path(tmp_path, "FAC", "nl").name == "FAC.nl.typ"
    assert template_path(tmp_path, "FAC", "fr").name == "default.fr.typ"
    assert template_path(tmp_path, None, "de").name == "default.nl.typ"
    assert template_path(tmp_path, "../FAC", "nl").name == "default.nl.typ"


def test_the_shipped_templates_render_in_both_languages() -> None:
    from include.config import templates_dir

    renderer = Renderer(templates_dir())
    for language, word in (("nl", "Factuur"), ("fr", "Facture")):
        pdf = renderer.render(templates_dir() / f"default.{language}.typ", DATA | {"language": language})
        assert page_count(pdf) == 1 and word in _text(pdf)


def _words(pdf: bytes) -> tuple[float, list[tuple[str, float, float]]]:
    """The first page's width and its words with their left and right edges (pt), in the order they were written."""
    import html
    import re
    import subprocess

    done = subprocess.run(["pdftotext", "-bbox", "-l", "1", "-", "-"], input=pdf, capture_output=True, check=True)
    page = done.stdout.decode()
    width = float(re.search(r'<page width="([\d.]+)"', page).group(1))
    return width, [(html.unescape(text), float(left), float(right)) for left, right, text in
                   re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', page)]


def test_a_word_longer_than_its_column_wraps_inside_it_instead_of_running_over() -> None:
    """Typst breaks lines at spaces only: a long code in a description ran over the amounts, in an address off the
    page. Now such a word breaks where its column ends, and its text is unchanged."""
    from include.config import templates_dir

    code = "INSCHRIJVING_ACADEMIE_2026_2027_MUZIEK_WOORD_DANS_AFDELING_VOLWASSENEN_REF_000123456789"
    street = "Burgemeester_Baron_van_de_Poelstraat_en_Koningin_Astridlaan"
    data = DATA | {"lines": [{"code": "LID", "description": f"Lidgeld {code}", "amount": "1.234,50", "open": "7,25"}],
                   "Euser.address{}": ["Zoë D'Hondt", f"{street} 12", "1000 Brussel"]}
    pdf = Renderer(templates_dir()).render(templates_dir() / "default.nl.typ", data)
    width, words = _words(pdf)
    texts = [text for text, _left, _right in words]
    start = texts.index("Lidgeld") + 1
    row = words[start : texts.index("Te", start)]  # up to the total's "Te betalen"
    described = [word for word in row if word[0] not in ("1.234,50", "7,25")]
    assert "".join(text for text, _left, _right in described) == code and len(described) > 1
    assert max(right for _text, _left, right in described) < min(left for text, left, _right in row
                                                                   if text == "1.234,50")
    addressed = words[texts.index("D'Hondt") + 1 : texts.index("1000")]
    assert "".join(text for text, _left, _right in addressed) == f"{street}12"
    assert max(right for _text, _left, right in addressed) <= width - 2 / 2.54 * 72  # the page's right margin, 2 cm


@pytest.mark.parametrize("listed, addresses, recipient, expected", [
    (["thuis", "emailonly"], [(1, "thuis")], True, Channel("email", None)),
    (["thuis", "emailonly"], [(1, "thuis")], False, Channel("paper", 1)),
    (["thuis"], [(1, "thuis")], True, Channel("paper", 1)),
    (["werk", "thuis"], [(1, "thuis"), (2, "werk")], False, Channel("paper", 2)),
    (["thuis", "email"], [(1, "thuis")], True, Channel("both", 1)),
    (["thuis", "email"], [(1, "thuis")], False, Channel("paper", 1)),
    (["werk"], [(1, "thuis")], False, Channel("paper", 1)),  # no listed type fits: the first address
    ([], [(1, "thuis")], True, Channel("paper", 1)),
    (["emailonly"], [], True, Channel("email", None)),
    (["emailonly"], [], False, Channel("none", None)),
    (["email"], [], True, Channel("email", None)),
])
def test_where_an_invoice_goes(listed: list[str], addresses: list[tuple[int, str]], recipient: bool,
                               expected: Channel) -> None:
    assert decide_channel(listed, addresses, has_recipient=recipient, has_email_contact=recipient) == expected


@pytest.mark.parametrize("listed, addresses, expected", [
    (["thuis", "emailonly"], [(1, "thuis")], Channel("both", 1)),  # mailed without recipients, and printed
    (["emailonly"], [], Channel("email", None)),  # nowhere to print: the diagnosis is all there is
    (["thuis"], [(1, "thuis")], Channel("paper", 1)),
])
def test_a_customer_whose_flags_keep_pom_from_mailing(listed: list[str], addresses: list[tuple[int, str]],
                                                     expected: Channel) -> None:
    assert decide_channel(listed, addresses, has_recipient=False, has_email_contact=True) == expected


@pytest.mark.parametrize("status, open_amount, invoiced, expected", [
    ("sealed", "10.00", None, Step.MAKE),
    ("sealed", "10.00", "10.00", Step.KEEP),
    ("sealed", "4.00", "10.00", Step.REMAKE),
    ("sealed", "0.00", None, Step.KEEP),
    ("paid", "0.00", "10.00", Step.KEEP),
    ("draft", "10.00", "10.00", Step.WITHDRAW),
    ("draft", "10.00", None, Step.KEEP),
    ("deleted", "10.00", "10.00", Step.WITHDRAW),
    ("expired", "10.00", "10.00", Step.WITHDRAW),
])
def test_what_a_reference_s_invoice_needs(status: str, open_amount: str, invoiced: str | None, expected: Step) -> None:
    assert decide(status, Decimal(open_amount), Decimal(invoiced) if invoiced else None) is expected


# --- the QR codes as printed: read back the way a phone reads a page ----------------------------------------------

TRANSFER = dict(name="Bibliotheek Crèvecœur & Co", iban="BE68539007547034", amount=Decimal("20.50"), bic="GKCCBEBB",
                reference="+++062/0004/71114+++")
PAY_LINK = "https://pay.pom.be/pay/qr_3f9a1c7e5b2d4086"
# The largest codes an invoice may carry: the EPC payload near its 331 bytes (version 12), a long pay link.
LONGEST_TRANSFER = dict(
    name="Académie Royale des Beaux-Arts de Bruxelles – École supérieure des Arts ÉÉÉ", iban="BE68539007547034",
    amount=Decimal("999999999.99"), bic="GKCCBEBB",
    text="Inscription année académique 2026–2027 — œuvre « Crèvecœur » — frais de dossier, matériel et assurance "
         "étudiante à payer avant fin")
LONG_PAY_LINK = ("https://pay.pom.be/payment-requests/pr_0123456789abcdef0123456789abcdef/qr/"
                 "qr_0123456789abcdef0123456789abcdef?lang=fr&utm=invoice")


def _with_codes(transfer: dict, link: str, language: str = "nl") -> tuple[bytes, str]:
    """The shipped template's invoice carrying ``transfer``'s EPC code and POM's image (its simulated layout) of
    ``link``, and the EPC payload."""
    from include.config import templates_dir
    from include.invoices.epc_qr import epc_payload, epc_svg
    from include.pom.qr_layout import QrLayout, svg

    pom = svg(QrLayout(link, "20.50", "+++062/0004/71114+++", "2026-12-24"))
    data = DATA | {"language": language, "epc_svg": epc_svg(**transfer).decode(), "pom_svg": pom, "pay_url": link}
    pdf = Renderer(templates_dir()).render(templates_dir() / f"default.{language}.typ", data)
    return pdf, epc_payload(**transfer)


@pytest.mark.parametrize(("transfer", "link", "dpi", "blur"), [
    (TRANSFER, PAY_LINK, 72, 2),  # printed 5 cm wide, zbar lost both codes here
    (LONGEST_TRANSFER, LONG_PAY_LINK, 100, 2),  # 5 cm: both lost
    # Printed 7 and 8 cm wide (one 8 cm column each), zbar lost one of the two codes in these views of the page; side
    # by side at EPC_WIDTH_MM and POM_WIDTH_MM, filling the width between the margins, it keeps both.
    (TRANSFER, PAY_LINK, 70, 3),
    (LONGEST_TRANSFER, LONG_PAY_LINK, 90, 3),
], ids=["usual", "longest", "usual-70dpi-more-blur", "longest-90dpi-more-blur"])
def test_both_codes_read_from_a_coarse_blurred_view_of_the_page(transfer: dict, link: str, dpi: int,
                                                                 blur: int) -> None:
    from tests.qr_reading import phone_payloads

    pdf, payload = _with_codes(transfer, link)
    # blur=2: two passes, a blur of sigma 1 pixel, 0.35 mm on paper at 72 dpi; blur=3: sigma 1.22 pixels
    assert sorted(phone_payloads(pdf, dpi=dpi, blur=blur)) == sorted([payload, link])


def test_the_transfer_code_is_printed_with_big_modules_and_nothing_in_its_quiet_zone() -> None:
    from include.invoices.epc_qr import epc_qr
    from include.invoices.qr_codes import EPC_WIDTH_MM, QUIET_ZONE, module_mm
    from tests.qr_reading import light_everywhere, square_placements

    for transfer, usual_version in ((TRANSFER, 6), (LONGEST_TRANSFER, 12)):
        pdf, _payload = _with_codes(transfer, PAY_LINK)
        qr = epc_qr(**transfer)
        units = qr.symbol_size(scale=1, border=QUIET_ZONE)[0]
        [placed] = square_placements(pdf, units)
        printed_mm = placed.unit * 25.4 / 72
        assert qr.version == usual_version and qr.error == "M"
        assert printed_mm == pytest.approx(module_mm(qr, EPC_WIDTH_MM), abs=0.001)
        assert printed_mm >= (1.4 if qr.version <= 6 else 0.9)
        dpi = 150
        left, top, right, bottom = placed.box(dpi, inset_units=QUIET_ZONE)
        assert light_everywhere(pdf, placed.page, [placed.box(dpi), (left - 1, top - 1, right + 1, bottom + 1)],
                                dpi=dpi)


def test_pom_s_image_is_printed_so_that_its_code_has_big_modules() -> None:
    """POM's layout puts texts around its code; printed POM_WIDTH_MM wide, the code still gets 1-1.4 mm modules."""
    import re

    from include.invoices.qr_codes import POM_WIDTH_MM
    from include.pom.qr_layout import MODULE_PX, QrLayout, svg

    for link, version, least_mm in ((PAY_LINK, 3, 1.4), (LONG_PAY_LINK, 8, 1.2)):
        image = svg(QrLayout(link, "999999999.99", "+++062/0004/71114+++", "2026-12-24"))
        width = int(re.match(r'<svg xmlns="http://www.w3.org/2000/svg" width="(\d+)"', image).group(1))
        assert segno_version(link) == version and POM_WIDTH_MM * MODULE_PX / width >= least_mm


def segno_version(link: str) -> int:
    import segno

    return segno.make(link, error="m", micro=False).version


def _facts(lines: list[tuple[str, str]], amount: str, open_amount: str, language: str = "nl"):
    """An invoice's facts: debt lines (amount, open), the reference's amount (what its lines held when it was
    sealed) and what is open on it."""
    from datetime import date

    from include.invoices.facts import InvoiceFacts

    return InvoiceFacts(
        reference_id=1, loi="fp:BIB:1", type_id=1, print_state=None, language=language, invoice_number="BIB-1",
        reference_number="090933755493", open_amount=Decimal(open_amount), currency="EUR", due_date=date(2026, 12, 24),
        description=None, first_name="Zoë", last_name="D'Hondt", eloi="e:1", creditor_name="Bibliotheek",
        creditor_iban="BE68539007547034", creditor_bic=None, creditor_id=None, channel=Channel("paper", None),
        recipients=(), address=None,
        lines=tuple(("LID", "Lidgeld", Decimal(amount), Decimal(left)) for amount, left in lines),
        amount=Decimal(amount))


@pytest.mark.parametrize("lines, amount, open_amount, total, paid, said", [
    ([("12.50", "12.50"), ("7.25", "7.25")], "19.75", "19.75", "", "", "Gelieve 19,75 EUR"),  # nothing paid: no rows
    ([("12.50", "0.00"), ("7.25", "7.25")], "19.75", "7.25", "19,75", "12,50",
     "Van het totaal van 19,75 EUR is al 12,50 EUR betaald. Gelieve 7,25 EUR"),
    # A line paid in part under an earlier reference (expired since): the table still adds up
    ([("1250.00", "1000.00"), ("7.25", "7.25")], "1007.25", "1007.25", "1.257,25", "250,00",
     "Van het totaal van 1.257,25 EUR is al 250,00 EUR betaald. Gelieve 1.007,25 EUR"),
])
def test_what_an_invoice_says_was_paid(lines: list[tuple[str, str]], amount: str, open_amount: str, total: str,
                                       paid: str, said: str) -> None:
    from include.invoices.facts import invoice_data

    data = invoice_data(_facts(lines, amount, open_amount), None)
    assert (data["amount_total"], data["amount_paid"]) == (total, paid)
    assert data["instructions"].startswith(said)
