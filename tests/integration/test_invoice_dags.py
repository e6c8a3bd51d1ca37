"""``invoice_run`` for real with ``dag.test()`` on the demo institution, against the POM simulator."""

from __future__ import annotations

import io
from datetime import date, datetime, time
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import delete, func, select

from include.finance.db import transaction
from include.finance.models import BankHub, Contact, Invoice, PaymentReference, PaymentReferenceType, PomPaymentRequest
from include.runtime import LOCAL_ZONE
from tests.integration.pom_fixtures import *  # noqa: F403
from tests.integration.pom_fixtures import dag_named, succeeded
from tests.qr_reading import parse_epc, qr_payloads

RUN = date(2026, 11, 20)


def test_invoice_run_makes_every_invoice_with_both_codes_and_the_print_overview(demo_with_pom, var_dir: Path) -> None:
    demo = demo_with_pom
    with transaction(demo) as session:  # three customers without e-mail: their invoices go on paper
        owners = session.scalars(select(PaymentReference.end_user_id).join(
            PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(PaymentReferenceType.code == "FACTUUR-BIB").order_by(PaymentReference.id).limit(3)).all()
        session.execute(delete(Contact).where(Contact.end_user_id.in_(owners)))
    conf = {"run_date": RUN.isoformat(), "as_of": datetime.combine(RUN, time(2, 30), tzinfo=LOCAL_ZONE).isoformat()}
    succeeded(dag_named("invoice_run").test(run_conf=conf))
    with transaction(demo, readonly=True) as session:
        sealed = set(session.scalars(select(PaymentReference.id).where(
            PaymentReference.status == "sealed", PaymentReference.open_amount > 0)))
        invoices = session.scalars(select(Invoice).where(Invoice.withdrawn_at.is_(None))).all()
        online = session.execute(
            select(Invoice, PomPaymentRequest.pay_url, PaymentReference.reference_number, PaymentReference.open_amount)
            .join(PaymentReference, PaymentReference.id == Invoice.payment_reference_id)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .join(PomPaymentRequest, PomPaymentRequest.id == Invoice.pom_payment_request_id)
            .where(PaymentReferenceType.code == "FACTUUR-BIB").order_by(Invoice.id)
        ).all()
        hub_iban = session.scalar(select(BankHub.creditor_iban).where(BankHub.code == "KBC-BIB"))
        session.expunge_all()
    assert sealed and {i.payment_reference_id for i in invoices} == sealed
    assert online, "the library's invoices carry POM's code"
    invoice, pay_url, number, open_amount = online[0]
    payloads = qr_payloads((var_dir / "invoices" / invoice.file_path).read_bytes(), dpi=110)
    assert pay_url in payloads
    (epc,) = [parse_epc(p) for p in payloads if p.startswith("BCD")]
    assert (epc["iban"], epc["amount"], epc["reference"]) == (hub_iban, open_amount, number)

    folder = var_dir / "reports" / "invoice_run" / RUN.isoformat()
    paper = [i for i in invoices if i.channel in ("paper", "both")]
    assert (folder / "index.html").is_file() and (folder / "overview.csv").is_file()
    combined = pypdf.PdfReader(io.BytesIO((folder / "print.pdf").read_bytes()))
    # the three without e-mail, and the demo's customer who switched off "e-mail recipient"
    assert len(paper) == 4 and len(combined.pages) == sum(i.pages for i in paper)
    overview = (folder / "overview.csv").read_text(encoding="utf-8-sig").splitlines()
    counted = sum(int(line.split(";")[4]) for line in overview[1:])
    assert counted == len(invoices)

    before = (folder / "print.pdf").read_bytes()
    succeeded(dag_named("invoice_run").test(run_conf=conf))
    with transaction(demo, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == len(invoices)
    assert (folder / "print.pdf").read_bytes() == before


def test_the_run_fails_naming_the_references_that_got_no_invoice() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from tests.dag_bag import parsed_dag

    dag = parsed_dag("invoice_run")
    refusals = dag.get_task("refusals").python_callable
    assert [t.task_id for t in dag.get_task("overview").downstream_list] == ["refusals"]  # after the others' work
    assert refusals({"counts": {"made": 3}, "refused": []}) is None
    with pytest.raises(AirflowFailException, match=r"1 reference\(s\) got no invoice: fp:ACA:1: EPC QR amount"):
        refusals({"counts": {"made": 3, "refused": 1}, "refused": ["fp:ACA:1: EPC QR amount must be …"]})
