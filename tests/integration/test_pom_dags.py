"""The POM DAGs run for real with ``dag.test()`` on the demo institution, against the simulator."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from include.finance.db import transaction
from include.finance.models import PaymentReference, PomPaymentRequest
from include.runtime import LOCAL_ZONE
from tests.integration.pom_fixtures import *  # noqa: F403
from tests.integration.pom_fixtures import SimApi, dag_named, succeeded

RUN = date(2026, 11, 20)


@pytest.fixture
def demo(demo_with_pom):  # type: ignore[no-untyped-def]
    return demo_with_pom


def _dag(dag_id: str):  # type: ignore[no-untyped-def]
    return dag_named(dag_id)


def _ok(run) -> None:  # type: ignore[no-untyped-def]
    succeeded(run)


def test_requests_reconciliation_and_expiry_through_airflow(demo, var_dir: Path, sim_api: SimApi) -> None:
    as_of = datetime.combine(RUN, time(2), tzinfo=LOCAL_ZONE).isoformat()
    _ok(_dag("pom_payment_requests").test(run_conf={"as_of": as_of}))
    with transaction(demo, readonly=True) as session:
        open_requests = session.scalar(select(func.count()).select_from(PomPaymentRequest).where(PomPaymentRequest.status == "open"))
        wanted = session.scalar(select(func.count()).select_from(PaymentReference).where(
            PaymentReference.status == "sealed", PaymentReference.mandate_id.is_(None), PaymentReference.due_date >= RUN))
    assert open_requests == wanted == sim_api.request_count() > 20

    with transaction(demo, readonly=True) as session:
        first = session.scalars(select(PomPaymentRequest).order_by(PomPaymentRequest.id)).first()
    sim_api.control("POST", f"pay/{first.pom_id}", {"channel": "bancontact", "callback": False})
    _ok(_dag("pom_reconciliation").test(run_conf={"as_of": as_of}))
    assert (var_dir / "reports" / "pom_reconciliation" / RUN.isoformat() / "pom_reconciliation.html").is_file()
    with transaction(demo, readonly=True) as session:
        assert session.get(PaymentReference, first.payment_reference_id).status == "paid"

    _ok(_dag("payment_reference_expiry").test(run_conf={"as_of": as_of}))
    with transaction(demo, readonly=True) as session:
        expired = session.scalar(select(func.count()).select_from(PaymentReference).where(PaymentReference.status == "expired"))
    assert expired == 6  # the demo's academy bookings made nine days before, on a type living seven days


def test_deleting_a_reference_cancels_its_pom_request_at_once(demo, sim_api: SimApi,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from include import airflow_roles

    # Deleting needs the demo types' admin lock, finance-admin (dag.test() runs hold no roles of their own).
    monkeypatch.setattr(airflow_roles, "run_roles", lambda context: ("greta", frozenset({"finance-admin"})))
    as_of = datetime.combine(RUN, time(2), tzinfo=LOCAL_ZONE).isoformat()
    _ok(_dag("pom_payment_requests").test(run_conf={"as_of": as_of}))
    with transaction(demo, readonly=True) as session:
        request, loi = session.execute(
            select(PomPaymentRequest, PaymentReference.loi)
            .join(PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
            .where(PomPaymentRequest.status == "open").order_by(PomPaymentRequest.id)
        ).first()
    _ok(_dag("payment_reference_delete").test(run_conf={"references": loi, "dry_run": False}))
    with transaction(demo, readonly=True) as session:
        row = session.get(PomPaymentRequest, request.id)
        assert session.get(PaymentReference, request.payment_reference_id).status == "deleted"
    assert row.status == "cancelled"
    assert sim_api.get(request.pom_id).json()["status"] == "cancelled"


def test_a_transfer_paying_an_invoice_cancels_its_pom_request(demo, var_dir: Path, sim_api: SimApi) -> None:
    from decimal import Decimal

    from include.finance.models import BankHub, PaymentReferenceType
    from sandbox.camt_writer import Entry, Tx, write_camt053

    as_of = datetime.combine(RUN, time(2), tzinfo=LOCAL_ZONE).isoformat()
    _ok(_dag("pom_payment_requests").test(run_conf={"as_of": as_of}))
    with transaction(demo, readonly=True) as session:
        paid, partly = session.execute(
            select(PomPaymentRequest, PaymentReference.reference_number)
            .join(PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(PomPaymentRequest.status == "open", PaymentReferenceType.code == "FACTUUR-BIB")
            .order_by(PomPaymentRequest.id)
        ).all()[:2]
        account = session.scalars(select(BankHub.creditor_iban).where(BankHub.code == "KBC-BIB")).one()
    day = RUN + timedelta(days=1)
    path = var_dir / "inbox" / "camt053" / "transfers.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_camt053(path, account_iban=account, statement_id="2026-900", electronic_seq=900,
                  created_at=datetime(2026, 11, 21, 6, tzinfo=LOCAL_ZONE), from_date=day, to_date=day,
                  opening_balance=Decimal("0.00"), entries=[
                      Entry(True, day, (Tx(paid[0].amount, structured_reference=paid[1], account_servicer_ref="T-1"),)),
                      Entry(True, day, (Tx(Decimal("1.00"), structured_reference=partly[1], account_servicer_ref="T-2"),)),
                  ])
    _ok(_dag("camt053_import").test())
    with transaction(demo, readonly=True) as session:
        rows = {r.payment_reference_id: r for r in session.scalars(
            select(PomPaymentRequest).where(PomPaymentRequest.payment_reference_id.in_(
                [paid[0].payment_reference_id, partly[0].payment_reference_id])).order_by(PomPaymentRequest.id))}
    assert sim_api.get(paid[0].pom_id).json()["status"] == "cancelled"
    assert sim_api.get(partly[0].pom_id).json()["status"] == "cancelled"
    assert rows[paid[0].payment_reference_id].status == "cancelled"
    assert rows[partly[0].payment_reference_id].amount == partly[0].amount - Decimal("1.00")  # remade for the rest
    assert rows[partly[0].payment_reference_id].status == "open"


def test_a_status_pom_did_not_give_fails_the_reconciliation_so_it_is_retried(
        demo, var_dir: Path, sim_api: SimApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """POM answering 503 for a request's status was a row on the report ("the next run tries again") and a green
    task: a payment without its callback waited a whole day to be booked. The task now fails (a plain error, so
    Airflow retries it; the booking is idempotent), naming the count, after the others were done and the report
    written; its result is pushed first, so the run's Reports tab shows that report."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    as_of = datetime.combine(RUN, time(2), tzinfo=LOCAL_ZONE).isoformat()
    _ok(_dag("pom_payment_requests").test(run_conf={"as_of": as_of}))
    with transaction(demo, readonly=True) as session:
        first, second = session.scalars(select(PomPaymentRequest).order_by(PomPaymentRequest.id)).all()[:2]
    sim_api.control("POST", f"pay/{second.pom_id}", {"channel": "bancontact", "callback": False})
    sim_api.control("POST", "faults", {"kind": "status", "status": 503, "path_contains": first.pom_id,
                                       "method": "GET", "times": None})
    pushed: dict = {}
    ti = SimpleNamespace(dag_id="pom_reconciliation", run_id="scheduled__test", task_id="reconcile_requests",
                         xcom_push=lambda key, value: pushed.__setitem__(key, value))
    work = _dag("pom_reconciliation").get_task("reconcile_requests").python_callable
    monkeypatch.setitem(work.__globals__, "get_current_context", lambda: {"params": {"as_of": as_of}, "ti": ti})
    with pytest.raises(Exception, match=r"^1 open request\(s\) not reconciled: POM did not answer") as failed:
        work()
    assert not isinstance(failed.value, AirflowFailException)
    with transaction(demo, readonly=True) as session:  # what POM did answer is booked
        assert session.get(PaymentReference, second.payment_reference_id).status == "paid"
    assert pushed["return_value"]["counts"]["error"] == 1
    assert pushed["return_value"]["html"] == str(var_dir / "reports" / "pom_reconciliation" / RUN.isoformat()
                                                 / "pom_reconciliation.html")


def _reconcile_task(as_of: str, monkeypatch: pytest.MonkeyPatch) -> tuple:  # type: ignore[type-arg]
    """The reconciliation task's own code, with a task instance that keeps what it pushes."""
    from types import SimpleNamespace

    pushed: dict = {}
    ti = SimpleNamespace(dag_id="pom_reconciliation", run_id="scheduled__test", task_id="reconcile_requests",
                         xcom_push=lambda key, value: pushed.__setitem__(key, value))
    work = _dag("pom_reconciliation").get_task("reconcile_requests").python_callable
    monkeypatch.setitem(work.__globals__, "get_current_context", lambda: {"params": {"as_of": as_of}, "ti": ti})
    return work, pushed


def test_errors_a_retry_cannot_cure_leave_the_reconciliation_green_with_its_report(
        demo, var_dir: Path, sim_api: SimApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """POM answering 404 for every request of the account (the Connection names another account) is an error on
    the report for a person: asking again ten minutes later gets the same 404s. It must not fail the task as
    "POM did not answer", which only the requests POM did not answer (5xx, timeouts) do."""
    as_of = datetime.combine(RUN, time(2), tzinfo=LOCAL_ZONE).isoformat()
    _ok(_dag("pom_payment_requests").test(run_conf={"as_of": as_of}))
    sim_api.control("POST", "faults", {"kind": "status", "status": 404, "path_contains": "/payment-requests/",
                                       "method": "GET", "times": None})
    work, _pushed = _reconcile_task(as_of, monkeypatch)
    result = work()
    assert result["counts"]["error"] == result["counts"]["open_requests"] > 20
    report = (var_dir / "reports" / "pom_reconciliation" / RUN.isoformat() / "pom_reconciliation.csv")
    assert "check that Connection pom_default" in report.read_text(encoding="utf-8-sig")
    with transaction(demo, readonly=True) as session:  # nothing closed on a 404 for all
        assert session.scalar(select(func.count()).select_from(PomPaymentRequest)
                              .where(PomPaymentRequest.status != "open")) == 0


def test_an_account_pom_refuses_fails_the_reconciliation_with_its_report_on_the_reports_tab(
        demo, var_dir: Path, sim_api: SimApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused login (a password changed at POM) fails the run after the report is written; the failed task
    returns nothing, so its result is pushed first: the run's Reports tab shows the report naming the account."""
    import json
    import os

    from include.pom.payment_requests import PomSyncIncomplete

    as_of = datetime.combine(RUN, time(2), tzinfo=LOCAL_ZONE).isoformat()
    _ok(_dag("pom_payment_requests").test(run_conf={"as_of": as_of}))
    connection = json.loads(os.environ["AIRFLOW_CONN_POM_DEFAULT"])
    monkeypatch.setenv("AIRFLOW_CONN_POM_DEFAULT", json.dumps({**connection, "password": "changed-at-pom"}))
    work, pushed = _reconcile_task(as_of, monkeypatch)
    with pytest.raises(PomSyncIncomplete, match="default"):
        work()
    html = var_dir / "reports" / "pom_reconciliation" / RUN.isoformat() / "pom_reconciliation.html"
    assert pushed["return_value"]["html"] == str(html)
    assert pushed["return_value"]["counts"]["error"] == 1
    assert "not reconciled" in html.read_text(encoding="utf-8")
