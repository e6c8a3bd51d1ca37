"""Invoices made from the database, rendered to real PDFs and read back as a phone reads them (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import io
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import Engine, func, select

from include.config import invoices_dir
from include.finance.db import transaction
from include.finance.models import Address, AuditLog, BankHub, Contact, EndUser, Invoice, PaymentReference
from include.finance.reference_numbers import format_ogm, rf
from include.invoices.making import make_invoices
from tests.factories import make_institution, make_reference, make_user
from tests.qr_reading import parse_epc, qr_payloads

NOW = datetime(2026, 12, 4, 2, 30, tzinfo=timezone.utc)
DAY = date(2026, 12, 4)


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def _setup(engine: Engine, *, language: str = "nl", description: str = "Lidgeld 2027\nBoete & herinnering") -> int:
    with transaction(engine) as session:
        inst = make_institution(session)
        inst.system.merchant_name = "Bibliotheek Crèvecœur & Co"
        inst.recurring.print_state = "FAC"
        inst.recurring.address_types = "thuis;emailonly"
        user = make_user(session, "Zoë", "D'Hondt & Çelik")
        user.language = language
        session.add(Address(end_user_id=user.id, position=1, address_type="thuis", street="Rue de l'Étuve",
                            house_number="12", postal_code="1000", city="Brussel"))
        ref = make_reference(session, inst, user, ("12.50", "7.25", "0.75"), number=4711)
        ref.invoice_number = "BIB-000123"
        ref.due_date = date(2026, 12, 24)
        ref.description = description
        return ref.id


def _current(engine: Engine, ref_id: int) -> tuple[Invoice, bytes]:
    with transaction(engine, readonly=True) as session:
        row = session.scalars(select(Invoice).where(Invoice.payment_reference_id == ref_id,
                                                    Invoice.withdrawn_at.is_(None))).one()
        session.expunge(row)
    return row, (invoices_dir() / row.file_path).read_bytes()


def test_an_invoice_carries_the_transfer_qr_of_its_reference(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine)
    run = make_invoices(engine, "test", NOW, print_day=DAY)
    assert run.counts["made"] == 1
    invoice, pdf = _current(engine, ref_id)
    assert pdf.startswith(b"%PDF-") and invoice.pages == 1 and invoice.channel == "paper"
    assert invoice.document_id == "BIB-000123" and invoice.amount == Decimal("20.50")
    with transaction(engine, readonly=True) as session:
        ref = session.get(PaymentReference, ref_id)
        hub_iban, hub_bic = session.execute(select(BankHub.creditor_iban, BankHub.creditor_bic)).one()
        assert ref is not None
        number = ref.reference_number
    payloads = qr_payloads(pdf, dpi=100)
    assert len(payloads) == 1
    assert qr_payloads(pdf, dpi=55) == payloads  # a coarse scan of the page still reads the transfer code
    assert parse_epc(payloads[0]) == {  # field by field, as a banking app reads the printed code
        "service_tag": "BCD", "version": "002", "charset": "1", "identification": "SCT", "bic": hub_bic,
        "name": "Bibliotheek Crèvecœur & Co", "iban": hub_iban, "amount": Decimal("20.50"), "purpose": "",
        "reference": number, "text": "", "information": ""}
    assert len(payloads[0].encode()) <= 331 and "\r" not in payloads[0] and not payloads[0].endswith("\n")
    text = _pdf_text(pdf)
    assert format_ogm(number) in text and format_ogm(number) == "+++062/0004/71114+++"
    assert "20,50" in text and "24/12/2026" in text and "Boete & herinnering" in text
    assert "Datum: 04/12/2026" in text  # the print day: an invoice has a date
    assert "D'Hondt & Çelik" in text and "Rue de l'Étuve 12" in text


def test_line_breaks_and_tabs_stored_in_names_do_not_break_the_address_block(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine)
    with transaction(engine) as session:
        ref = session.get(PaymentReference, ref_id)
        session.get(EndUser, ref.end_user_id).last_name = "D'Hondt\n&\tÇelik "
        session.scalars(select(Address)).one().street = "Rue de\r\nl'Étuve"
    make_invoices(engine, "test", NOW, print_day=DAY)
    lines = _pdf_text(_current(engine, ref_id)[1]).splitlines()
    at = lines.index("Zoë D'Hondt & Çelik")  # the address block: name, street, postcode and city, a line each
    assert lines[at + 1 : at + 3] == ["Rue de l'Étuve 12", "1000 Brussel"]


def test_without_a_print_day_an_invoice_belongs_to_the_day_in_brussels(engine: Engine, var_dir: Path) -> None:
    """Made at 00:30 in Brussels (23:30 UTC the day before), as a payer's download may remake it: it belongs to
    that Brussels day's printing, not to the day before."""
    ref_id = _setup(engine)
    run = make_invoices(engine, "test", datetime(2026, 12, 3, 23, 30, tzinfo=timezone.utc))
    assert run.print_day == "2026-12-04"
    invoice, _ = _current(engine, ref_id)
    assert invoice.print_day == DAY and invoice.file_path == "2026-12-04/BIB-000123.pdf"


def test_a_reference_that_cannot_make_an_invoice_is_named_and_the_others_are_made(engine: Engine,
                                                                                  var_dir: Path) -> None:
    ref_id = _setup(engine)
    with transaction(engine) as session:
        inst = make_institution(session, "ACA")
        user = make_user(session, "Jan", "Peeters")
        too_much = make_reference(session, inst, user, ("1000000000.00",), number=4712)  # beyond an EPC code's limit
        too_much_loi, too_much_id = too_much.loi, too_much.id
    run = make_invoices(engine, "test", NOW, print_day=DAY)
    assert (run.counts["made"], run.counts["refused"]) == (1, 1)
    assert run.refused == [f"{too_much_loi}: EPC QR amount must be between 0.01 and 999999999.99 EUR, "
                           "got 1000000000.00"]
    assert run.as_dict()["refused"] == run.refused
    _current(engine, ref_id)  # made all the same
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Invoice)
                              .where(Invoice.payment_reference_id == too_much_id)) == 0
    again = make_invoices(engine, "test", NOW, print_day=DAY)  # a rerun tries only what is still missing
    assert (again.counts["made"], again.counts["refused"]) == (0, 1)


def test_the_payee_account_is_printed_as_the_transfer_code_carries_it(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    pdf = _current(engine, ref_id)[1]
    epc, text = parse_epc(qr_payloads(pdf)[0]), " ".join(_pdf_text(pdf).split())
    iban = epc["iban"]
    assert f"IBAN {iban[:4]} {iban[4:8]} {iban[8:12]} {iban[12:]}" in text and f"BIC {epc['bic']}" in text
    # A hub without a BIC (optional in EPC version 002 and for SEPA transfers): the code leaves the field empty and
    # the invoice prints no "BIC" with nothing after it.
    with transaction(engine) as session:
        session.scalars(select(BankHub)).one().creditor_bic = None
        session.get(PaymentReference, ref_id).open_amount = Decimal("19.50")  # a new amount: a new invoice
    make_invoices(engine, "test", NOW, print_day=DAY)
    pdf = _current(engine, ref_id)[1]
    epc, text = parse_epc(qr_payloads(pdf)[0]), _pdf_text(pdf)
    assert epc["bic"] == "" and epc["iban"] == iban
    assert "BIC" not in text and f"IBAN {iban[:4]}" in text


@pytest.mark.parametrize(("language", "label"), [("nl", "Te betalen tegen"), ("fr", "payer avant le")])
def test_without_a_due_date_the_invoice_prints_no_empty_pay_by_line(engine: Engine, var_dir: Path, language: str,
                                                                      label: str) -> None:
    ref_id = _setup(engine, language=language)
    make_invoices(engine, "test", NOW, print_day=DAY)
    assert label in _pdf_text(_current(engine, ref_id)[1])  # with its due date: the line and the date
    with transaction(engine) as session:
        ref = session.get(PaymentReference, ref_id)
        ref.due_date, ref.open_amount = None, Decimal("19.50")  # a new amount: a new invoice
    make_invoices(engine, "test", NOW, print_day=DAY)
    invoice, pdf = _current(engine, ref_id)
    assert invoice.amount == Decimal("19.50") and label not in _pdf_text(pdf)


@pytest.mark.parametrize(("language", "label"), [("nl", "Betreft"), ("fr", "Objet")])
def test_without_a_description_the_invoice_prints_no_empty_subject_line(engine: Engine, var_dir: Path, language: str,
                                                                        label: str) -> None:
    ref_id = _setup(engine, language=language, description="Lidgeld 2027")
    make_invoices(engine, "test", NOW, print_day=DAY)
    assert label in _pdf_text(_current(engine, ref_id)[1])
    with transaction(engine) as session:
        ref = session.get(PaymentReference, ref_id)
        ref.description, ref.open_amount = None, Decimal("19.50")  # the description is optional
    make_invoices(engine, "test", NOW, print_day=DAY)
    assert label not in _pdf_text(_current(engine, ref_id)[1])


@pytest.mark.parametrize(("language", "label"), [("nl", "Nummer"), ("fr", "Numéro")])
def test_a_type_that_numbers_no_invoices_shows_no_invoice_number(engine: Engine, var_dir: Path, language: str,
                                                                  label: str) -> None:
    """Seed 2.5.2 (geninv): without a generator no invoice number is ever given; the reference's id is no number."""
    ref_id = _setup(engine, language=language)
    with transaction(engine) as session:
        ref = session.get(PaymentReference, ref_id)
        ref.invoice_number = None
        loi = ref.loi
    make_invoices(engine, "test", NOW, print_day=DAY)
    invoice, pdf = _current(engine, ref_id)
    text = _pdf_text(pdf)
    assert label not in text and text.count(loi) == 1  # once, as the reference ("Kenmerk"), not as a number
    assert pypdf.PdfReader(io.BytesIO(pdf)).metadata.title == loi  # the document still has a name
    assert invoice.document_id == loi  # what POM is sent as the document's id


def test_the_same_reference_and_template_give_the_same_bytes(engine: Engine, var_dir: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ref_id = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    first, pdf = _current(engine, ref_id)
    monkeypatch.setenv("INNEN_VAR_DIR", str(tmp_path / "again"))
    with transaction(engine) as session:
        session.execute(Invoice.__table__.delete())
    make_invoices(engine, "another run", NOW.replace(hour=5), print_day=DAY)
    second, again = _current(engine, ref_id)
    assert again == pdf and second.sha256 == first.sha256


def test_a_rerun_makes_nothing_and_a_changed_amount_makes_a_new_invoice(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    assert make_invoices(engine, "test", NOW, print_day=DAY).counts["made"] == 0
    with transaction(engine) as session:
        ref = session.get(PaymentReference, ref_id)
        assert ref is not None
        ref.open_amount = Decimal("8.00")
    run = make_invoices(engine, "test", NOW, print_day=DAY)
    assert run.counts["made"] == 1 and run.counts["withdrawn"] == 1
    invoice, pdf = _current(engine, ref_id)
    assert invoice.version == 2 and invoice.document_id == "BIB-000123-2"
    assert parse_epc(qr_payloads(pdf)[0])["amount"] == Decimal("8.00")
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 2
        actions = session.scalars(select(AuditLog.action).where(AuditLog.entity == "invoice")).all()
    assert sorted(actions) == ["made", "made", "withdrawn"]


def _pay(engine: Engine, ref_id: int, amount: str) -> None:
    from include.finance.payments import Ledger

    with transaction(engine) as session:
        ledger = Ledger(session, "test", NOW)
        ledger.pay(ledger.load([ref_id])[ref_id], Decimal(amount), source="bank_statement")
        ledger.flush()


def test_a_partly_paid_reference_asks_what_is_open_and_says_what_was_paid(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine)  # lines of 12,50, 7,25 and 0,75
    _pay(engine, ref_id, "12.50")
    make_invoices(engine, "test", NOW, print_day=DAY)
    invoice, pdf = _current(engine, ref_id)
    text = " ".join(_pdf_text(pdf).split())
    assert invoice.amount == parse_epc(qr_payloads(pdf)[0])["amount"] == Decimal("8.00")
    assert "Totaal EUR 20,50 Reeds betaald EUR 12,50 Te betalen EUR 8,00" in text
    assert "Van het totaal van 20,50 EUR is al 12,50 EUR betaald. Gelieve 8,00 EUR over te schrijven" in text
    with transaction(engine) as session:
        session.get(EndUser, session.get(PaymentReference, ref_id).end_user_id).language = "fr"
    _pay(engine, ref_id, "1.00")
    make_invoices(engine, "test", NOW, print_day=DAY)
    invoice, pdf = _current(engine, ref_id)
    text = " ".join(_pdf_text(pdf).split())
    assert invoice.amount == parse_epc(qr_payloads(pdf)[0])["amount"] == Decimal("7.00")
    assert "Total EUR 20,50 Déjà payé EUR 13,50 À payer EUR 7,00" in text
    assert "Sur le total de 20,50 EUR, 13,50 EUR ont déjà été payés. Veuillez virer 7,00 EUR" in text


def test_an_unsealed_reference_has_no_invoice(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    with transaction(engine) as session:
        ref = session.get(PaymentReference, ref_id)
        assert ref is not None
        ref.status = "draft"
    run = make_invoices(engine, "test", NOW, print_day=DAY)
    assert run.counts["withdrawn"] == 1 and run.counts["made"] == 0
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Invoice).where(Invoice.withdrawn_at.is_(None))) == 0


def test_french_invoice_with_an_rf_reference_and_title_lines(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine, language="fr", description="Première ligne\nDeuxième ligne")
    with transaction(engine) as session:
        ref = session.get(PaymentReference, ref_id)
        assert ref is not None
        ref.reference_number = rf("71", 4711)
        user_id = ref.end_user_id
        session.add(Contact(end_user_id=user_id, kind="email", value="zoe@example.be", email_recipient=True))
    make_invoices(engine, "test", NOW, print_day=DAY)
    invoice, pdf = _current(engine, ref_id)
    assert invoice.language == "fr" and invoice.channel == "email"
    text = _pdf_text(pdf)
    assert "Facture" in text and "Première ligne" in text and "Deuxième ligne" in text and "Date : 04/12/2026" in text
    epc = parse_epc(qr_payloads(pdf)[0])
    assert epc["reference"] == rf("71", 4711)


def test_a_direct_debit_reference_gets_a_notice_without_transfer_code(engine: Engine, var_dir: Path) -> None:
    from include.finance.models import CollectionRun
    from include.sepa.mandate_execution import execute_mandates
    from tests.factories import add_debt, make_mandate

    with transaction(engine) as session:
        inst = make_institution(session)
        inst.recurring.print_state = "FAC"
        user = make_user(session, "Jef", "Peeters")
        session.add(Address(end_user_id=user.id, position=1, address_type="thuis", street="Tiensestraat",
                            house_number="5", postal_code="3000", city="Leuven"))
        mandate = make_mandate(session, inst, user, first=date(2026, 12, 5))
        add_debt(session, inst, user, "LID", "30.00")
        debtor_iban = mandate.debtor_iban
    with transaction(engine) as session:
        execute_mandates(session, date(2026, 12, 4), "test")
    make_invoices(engine, "test", NOW, print_day=DAY)
    with transaction(engine, readonly=True) as session:
        ref_id, collected = session.execute(select(PaymentReference.id, CollectionRun.collection_date)
                                            .join(CollectionRun, CollectionRun.hub_id == PaymentReference.hub_id)).one()
    _invoice, pdf = _current(engine, ref_id)
    assert qr_payloads(pdf) == []  # nobody is invited to pay what the bank collects
    text = " ".join(_pdf_text(pdf).split())
    assert collected == date(2026, 12, 7) and "07/12/2026" in text and "30,00" in text  # Sunday 6th: Monday
    assert f"{debtor_iban[:4]} **** **** {debtor_iban[-4:]}" in text and debtor_iban not in text.replace(" ", "")


def test_worker_processes_write_the_same_invoices_as_one_process(engine: Engine, var_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        for n in range(1, 8):
            user = make_user(session, f"Léa {n}", "Crèvecœur")
            session.add(Address(end_user_id=user.id, position=1, address_type="thuis", street="Naamsestraat",
                                house_number=str(n), postal_code="3000", city="Leuven"))
            make_reference(session, inst, user, (f"{n}.25", "3.10", "0.99"), number=100 + n)
    alone = make_invoices(engine, "test", NOW, print_day=DAY, workers=1)
    with transaction(engine, readonly=True) as session:
        single = {row.document_id: (row.sha256, (invoices_dir() / row.file_path).read_bytes())
                  for row in session.scalars(select(Invoice))}
    with transaction(engine) as session:
        session.execute(Invoice.__table__.delete())
    monkeypatch.setenv("INNEN_VAR_DIR", str(tmp_path / "pooled"))
    pooled = make_invoices(engine, "test", NOW, print_day=DAY, workers=2)
    with transaction(engine, readonly=True) as session:
        rows = session.scalars(select(Invoice)).all()
        both = {row.document_id: (row.sha256, (invoices_dir() / row.file_path).read_bytes()) for row in rows}
    assert alone.counts["made"] == pooled.counts["made"] == 7
    assert both == single and str(invoices_dir()).startswith(str(tmp_path / "pooled"))
    assert all(hashlib.sha256(pdf).hexdigest() == sha for sha, pdf in both.values())


def _pom_request(engine: Engine, ref_id: int, amount: str, link: str) -> None:
    """An open POM request for ``ref_id`` asking ``amount``, with POM's image of ``link``."""
    from include.finance.models import PaymentReferenceType, PomPaymentRequest
    from include.pom.qr_layout import QrLayout, svg

    with transaction(engine) as session:
        ref = session.get(PaymentReference, ref_id)
        assert ref is not None
        type_ = session.get(PaymentReferenceType, ref.type_id)
        assert type_ is not None
        type_.allowed_online = True
        session.add(PomPaymentRequest(
            payment_reference_id=ref_id, account="default", pom_id="pr_1", idempotency_key=f"k-{ref_id}",
            amount=Decimal(amount), communication=ref.reference_number, status="open", qr_id="qr_1",
            qr_payload=link, pay_url=link, qr_svg=svg(QrLayout(link, amount, format_ogm(ref.reference_number),
                                                               "2026-12-24")),
            created_at=NOW, updated_at=NOW))


def test_the_pom_code_is_printed_only_when_it_asks_the_amount_the_invoice_asks(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine)
    link = "https://pay.pom.be/pay/qr_0001"
    _pom_request(engine, ref_id, "20.50", link)
    make_invoices(engine, "test", NOW, print_day=DAY)
    invoice, pdf = _current(engine, ref_id)
    assert invoice.pom_payment_request_id is not None and link in qr_payloads(pdf)
    # A partial payment lowered the open amount, and POM's request could not be replaced (refused, or the direct
    # print ran before the nightly sync): its code would have the payer pay the old amount.
    with transaction(engine) as session:
        ref = session.get(PaymentReference, ref_id)
        assert ref is not None
        ref.open_amount = Decimal("8.00")
    make_invoices(engine, "test", NOW, print_day=DAY)
    invoice, pdf = _current(engine, ref_id)
    payloads = qr_payloads(pdf)
    assert invoice.amount == Decimal("8.00") and invoice.pom_payment_request_id is None
    assert link not in payloads and [parse_epc(p)["amount"] for p in payloads] == [Decimal("8.00")]


def test_a_long_invoice_numbers_its_pages_and_names_itself_on_each(engine: Engine, var_dir: Path) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        user = make_user(session, "Veel", "Lijnen")
        session.add(Address(end_user_id=user.id, position=1, address_type="thuis", street="Naamsestraat",
                            house_number="1", postal_code="3000", city="Leuven"))
        ref = make_reference(session, inst, user, tuple(f"{n}.00" for n in range(1, 61)), number=4712)
        ref.invoice_number = "BIB-000124"
        ref_id = ref.id
    make_invoices(engine, "test", NOW, print_day=DAY)
    invoice, pdf = _current(engine, ref_id)
    pages = [" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]
    assert invoice.pages == len(pages) >= 2
    for n, text in enumerate(pages, 1):
        assert f"BIB-000124 – {n}/{len(pages)}" in text


def test_a_one_page_invoice_has_no_page_number(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    _invoice, pdf = _current(engine, ref_id)
    assert "1/1" not in _pdf_text(pdf)


def test_the_language_is_read_whatever_its_case(engine: Engine, var_dir: Path) -> None:
    ref_id = _setup(engine, language="FR")
    make_invoices(engine, "test", NOW, print_day=DAY)
    invoice, pdf = _current(engine, ref_id)
    assert invoice.language == "fr" and "Facture" in _pdf_text(pdf)


@pytest.mark.parametrize(("now", "day"), [
    (datetime(2026, 12, 3, 23, 30, tzinfo=timezone.utc), date(2026, 12, 4)),  # 00:30 in Brussels (CET)
    (datetime(2026, 3, 28, 23, 30, tzinfo=timezone.utc), date(2026, 3, 29)),  # the night summer time starts
    (datetime(2026, 7, 1, 22, 15, tzinfo=timezone.utc), date(2026, 7, 2)),  # 00:15 CEST
    (datetime(2026, 12, 31, 23, 5, tzinfo=timezone.utc), date(2027, 1, 1)),  # across the year
    (datetime(2026, 12, 4, 12, 0), date(2026, 12, 4)),  # naive, as SQLite gives times back: UTC
])
def test_an_invoice_made_without_a_print_day_belongs_to_the_day_in_brussels(engine: Engine, var_dir: Path,
                                                                             now: datetime, day: date) -> None:
    ref_id = _setup(engine)
    assert make_invoices(engine, "payer:download", now, reference_ids={ref_id}).counts["made"] == 1
    invoice, _ = _current(engine, ref_id)
    assert invoice.print_day == day
