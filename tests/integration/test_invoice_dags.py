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
ROOT = Path(__file__).resolve().parents[2]


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
    paper = sorted((i for i in invoices if i.channel in ("paper", "both")), key=lambda i: i.document_id)
    assert (folder / "index.html").is_file() and (folder / "overview.csv").is_file()
    combined = pypdf.PdfReader(io.BytesIO((folder / "print.pdf").read_bytes()))
    # the three without e-mail, and the demo's customer who switched off "e-mail recipient"
    # printed on both sides: an invoice of odd pages gets a blank back, but the last one
    backs = sum(1 for i in paper[:-1] if i.pages % 2)
    assert len(paper) == 4 and len(combined.pages) == sum(i.pages for i in paper) + backs
    overview = (folder / "overview.csv").read_text(encoding="utf-8-sig").splitlines()
    counted = sum(int(line.split(";")[3]) for line in overview[1:])
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


def test_a_template_that_cannot_be_read_fails_the_invoice_run_at_once_naming_it(
        demo_with_pom, var_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An institution's template with a placeholder Innen does not know is its own file to fix: the task was
    retried twice, twenty minutes, against the same file, then failed with a traceback. It now fails at once with
    the template's name, line and placeholder."""
    import shutil
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates" / "invoices", folder)
    for template in folder.glob("*.typ"):
        template.write_text("Te betalen: $State.Cbedrag\n" + template.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("INNEN_TEMPLATE_DIR", str(folder))
    ti = SimpleNamespace(dag_id="invoice_run", run_id="manual__test", task_id="make")
    work = dag_named("invoice_run").get_task("make").python_callable
    monkeypatch.setitem(work.__globals__, "get_current_context", lambda: {
        "params": {"run_date": RUN.isoformat(), "as_of": None}, "ti": ti})
    with pytest.raises(AirflowFailException, match=r"^template default\.(nl|fr)\.typ, line 1: unknown placeholder "
                                                   r"\$State\.Cbedrag"):
        work()
