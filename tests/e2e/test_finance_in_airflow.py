"""Finance working inside a real Airflow: roles, approvals of bank files and the confirmation of a run, over REST.

One Airflow (api-server, scheduler, dag-processor; FAB auth manager, Innen's roles, one user per role) on a
fresh metadata database, and the demo institution in a fresh Innen database. Every step is what a person does
through Airflow's REST API; every assertion reads Innen's database or the outbox.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from include.finance.db import get_engine, transaction
from include.finance.models import AuditLog, BankFileApproval, BankHub, CollectionRun
from sandbox.airflow_services import AirflowServices
from tests.e2e.bank_files_waiting import RUN_DAY, bank_files_waiting
from tests.smtp_sink import SmtpSink as _SmtpSink

pytestmark = pytest.mark.timeout(900)


@dataclass
class Innen:
    services: AirflowServices
    db_url: str
    var_dir: Path
    export_run: str  # pain_export's run, triggered by "finance"
    waiting: dict[str, dict]  # collection run → its approval task instance
    mailbox: _SmtpSink


def _engine(innen: Innen):  # type: ignore[no-untyped-def]
    return get_engine(innen.db_url)


@pytest.fixture(scope="module")
def innen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Innen]:
    sink = _SmtpSink()  # finance's mailbox: a waiting approval is mailed
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    mail = json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": sink.server_address[1],
                       "extra": {"to": "finance@example.be", "from_email": "innen@example.be", "disable_ssl": True,
                                 "disable_tls": True, "timeout": 10, "retry_limit": 0}})
    try:
        with bank_files_waiting(tmp_path_factory.mktemp("airflow"), env={"AIRFLOW_CONN_INNEN_FINANCE_MAIL": mail},
                                unpause=("pain_export", "collection_confirm")) as state:
            yield Innen(state.services, state.db_url, state.var_dir, state.export_run, state.waiting, sink)
    finally:
        sink.shutdown()
        sink.server_close()


def _run(innen: Innen, loi: str) -> CollectionRun:
    with transaction(_engine(innen), readonly=True) as session:
        run = session.scalars(select(CollectionRun).where(CollectionRun.loi == loi)).one()
        session.expunge(run)
        return run


def _approval(innen: Innen, loi: str) -> BankFileApproval:
    with transaction(_engine(innen), readonly=True) as session:
        approval = session.scalars(select(BankFileApproval).join(CollectionRun).where(CollectionRun.loi == loi)
                                   .order_by(BankFileApproval.attempt.desc())).first()
        session.expunge(approval)
        return approval


def _refusals(innen: Innen) -> list[AuditLog]:
    with transaction(_engine(innen), readonly=True) as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.entity == "bank_file_approval",
                                                      AuditLog.action == "answer_refused")).all()
        session.expunge_all()
        return list(rows)


def test_the_waiting_approval_shows_what_a_treasurer_checks(innen: Innen) -> None:
    services = innen.services
    loi = sorted(innen.waiting)[0]
    with services.client("finance") as finance:
        ti = innen.waiting[loi]
        detail = finance.get(f"/api/v2/dags/pain_export/dagRuns/{innen.export_run}/taskInstances/bank_file.approve/"
                             f"{ti['map_index']}/hitlDetails").json()
    approval = _approval(innen, loi)
    with transaction(_engine(innen), readonly=True) as session:
        hub = session.scalars(select(BankHub).join(CollectionRun).where(CollectionRun.loi == loi)).one()
        run = session.scalars(select(CollectionRun).where(CollectionRun.loi == loi)).one()
        expected_iban = " ".join(hub.creditor_iban[i:i + 4] for i in range(0, len(hub.creditor_iban), 4))
        total = f"{run.total_amount:.2f}"
        count = run.transaction_count
    assert detail["options"] == ["Approve", "Reject"] and detail["response_received"] is False
    body = detail["body"]
    for shown in (hub.code, expected_iban, run.collection_date.isoformat(), approval.file_sha256, total, str(count),
                  f"/innen-finance/bank-files/{approval.id}"):
        assert shown in body, shown
    assert f"{count} collections, EUR {total}" in detail["subject"]
    # nothing in the outbox yet; the file is in staging, byte for byte what the approval names
    assert not list((innen.var_dir / "outbox").glob("*.xml"))
    from include.files import sha256_of

    assert sha256_of(Path(approval.staged_path)) == approval.file_sha256


def test_an_operator_can_neither_approve_nor_trigger_a_bank_file(innen: Innen) -> None:
    services = innen.services
    loi = sorted(innen.waiting)[0]
    with services.client("operator") as operator:
        answer = services.answer(operator, "pain_export", innen.export_run, "bank_file.approve",
                                 innen.waiting[loi]["map_index"], "Approve")
        assert answer.status_code == 403, answer.text
        assert services.trigger(operator, "pain_export").status_code == 403
        assert services.trigger(operator, "collection_confirm", {"collection_run": loi}).status_code == 403
        # nor start the export through its asset ("collection runs ready"), which schedules pain_export
        assets = operator.get("/api/v2/assets", params={"uri_pattern": "innen://collection-runs"}).json()["assets"]
        (ready,) = [asset for asset in assets if asset["uri"] == "innen://collection-runs/ready"]
        assert operator.post("/api/v2/assets/events", json={"asset_id": ready["id"]}).status_code == 403
    with services.client("viewer") as viewer:
        assert services.answer(viewer, "pain_export", innen.export_run, "bank_file.approve", innen.waiting[loi]["map_index"],
                               "Approve").status_code == 403
        assert services.trigger(viewer, "mandate_execution").status_code == 403
    with services.client("operator") as operator:  # the pipelines are the operators' (paused here: nothing runs)
        assert services.trigger(operator, "mandate_execution", {"run_date": RUN_DAY.isoformat()}).status_code == 200
    with services.client("finance") as finance:
        assert services.trigger(finance, "payment_reference_delete", {"references": []}).status_code == 403
    assert _approval(innen, loi).status == "waiting"


def test_four_eyes_approving_your_own_export_is_refused_and_someone_else_releases_it(innen: Innen) -> None:
    services = innen.services
    loi = sorted(innen.waiting)[0]
    index = innen.waiting[loi]["map_index"]
    with services.client("finance") as finance:
        own = services.answer(finance, "pain_export", innen.export_run, "bank_file.approve", index, "Approve", {"reason": ""})
        assert own.status_code == 200, own.text  # Airflow takes the answer; Innen refuses it and asks again
        detail = f"/api/v2/dags/pain_export/dagRuns/{innen.export_run}/taskInstances/bank_file.approve/{index}/hitlDetails"
        services.wait_until(finance, "pain_export", innen.export_run, lambda tis: any(
            t["task_id"] == "bank_file.approve" and t["map_index"] == index and t["state"] == "awaiting_input"
            for t in tis) and finance.get(detail).json()["response_received"] is False
            and _refusals(innen), what="asking again")
        services.parked("pain_export", innen.export_run, "bank_file.approve", [index], times=2)  # asked again
    assert _run(innen, loi).status == "ready" and not list((innen.var_dir / "outbox").glob("*.xml"))
    assert [r.after["refused"] for r in _refusals(innen)] == ["finance"]

    with services.client("finance2") as finance2:
        assert services.answer(finance2, "pain_export", innen.export_run, "bank_file.approve", index, "Approve",
                               {"reason": ""}).status_code == 200
        services.wait_until(finance2, "pain_export", innen.export_run, lambda tis: any(
            t["task_id"] == "bank_file.release" and t["map_index"] == index and t["state"] == "success" for t in tis),
            what="released")
    run, approval = _run(innen, loi), _approval(innen, loi)
    assert run.status == "exported" and approval.status == "approved" and approval.decided_by == "finance2"
    released = Path(run.file_path)
    assert released.parent == innen.var_dir / "outbox" and not Path(approval.staged_path).exists()
    from include.files import sha256_of

    assert sha256_of(released) == approval.file_sha256 == run.file_sha256
    assert released.with_name(released.name + ".sha256").read_text().split()[0] == run.file_sha256
    with transaction(_engine(innen), readonly=True) as session:
        approved = session.scalars(select(AuditLog).where(AuditLog.entity == "bank_file_approval",
                                                          AuditLog.action == "approved")).one()
        exported = session.scalars(select(AuditLog).where(AuditLog.entity == "collection_run",
                                                          AuditLog.action == "exported")).one()
    assert approved.after["approved_by"] == "finance2" and approved.after["shown"]["sha256"] == run.file_sha256
    assert exported.actor.endswith("approved by finance2")


def test_a_rejected_file_never_reaches_the_outbox_and_the_run_says_who_and_why(innen: Innen) -> None:
    services = innen.services
    loi = sorted(innen.waiting)[1]
    index = innen.waiting[loi]["map_index"]
    with services.client("finance-admin") as admin:
        assert services.answer(admin, "pain_export", innen.export_run, "bank_file.approve", index, "Reject",
                               {"reason": "collection date one day too early"}).status_code == 200
        assert services.finished(admin, "pain_export", innen.export_run) == "success"
    run, approval = _run(innen, loi), _approval(innen, loi)
    assert approval.status == "rejected" and approval.decided_by == "finance-admin"
    assert approval.reason == "collection date one day too early"
    assert run.status == "ready" and "rejected by finance-admin" in run.error and "one day too early" in run.error
    assert not Path(approval.staged_path).exists()
    assert not [p for p in (innen.var_dir / "outbox").iterdir() if p.name.startswith(Path(approval.staged_path).stem)]
    from include.sepa.export import runs_to_export

    with transaction(_engine(innen), readonly=True) as session:
        assert loi not in runs_to_export(session)  # not picked up again by itself


def test_confirming_a_run_is_one_run_the_dry_run_then_finances_answer(innen: Innen) -> None:
    services = innen.services
    exported = [loi for loi in innen.waiting if _run(innen, loi).status == "exported"]
    if not exported:
        pytest.fail("the four-eyes test exports one run first; run the module in order")
    loi = exported[0]
    total = _run(innen, loi).total_amount
    with services.client("finance") as finance:
        started = services.trigger(finance, "collection_confirm", {"collection_run": loi})
        assert started.status_code == 200, started.text
        run_id = started.json()["dag_run_id"]
        services.awaiting(finance, "collection_confirm", run_id, "decide")
        detail = finance.get(f"/api/v2/dags/collection_confirm/dagRuns/{run_id}/taskInstances/decide/-1"
                             "/hitlDetails").json()
        assert detail["options"] == ["Confirm", "Abort"] and f"{total:.2f}" in detail["body"]
        with services.client("operator") as operator:
            assert services.answer(operator, "collection_confirm", run_id, "decide", -1, "Confirm",
                                   {"received_amount": f"{total:.2f}"}).status_code == 403
        assert services.answer(finance, "collection_confirm", run_id, "decide", -1, "Confirm",
                               {"received_amount": f"{total:.2f}"}).status_code == 200
        assert services.finished(finance, "collection_confirm", run_id) == "success"
    assert _run(innen, loi).status == "confirmed"
    with transaction(_engine(innen), readonly=True) as session:
        confirmed = session.scalars(select(AuditLog).where(AuditLog.entity == "collection_run",
                                                           AuditLog.action == "confirmed")).one()
        paid = session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "confirmed"))
    assert "finance" in confirmed.actor and Decimal(str(total)) > 0 and paid == 1


def test_the_approvals_file_link_shows_the_file_to_finance_only(innen: Innen) -> None:
    services = innen.services
    approved = [loi for loi in innen.waiting if _approval(innen, loi).status == "approved"]
    assert approved, "the four-eyes test approves one file first"
    approval = _approval(innen, approved[0])
    with services.client("finance") as finance:
        shown = finance.get(f"/innen-finance/bank-files/{approval.id}")
        assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/plain")
        from include.files import sha256_bytes

        assert sha256_bytes(shown.content) == approval.file_sha256
        page = finance.get("/innen-finance/finance")
        assert page.status_code == 200 and approved[0] in page.text  # released today
    anonymous = httpx.get(f"{services.base}/innen-finance/bank-files/{approval.id}", timeout=30)
    assert anonymous.status_code in (401, 403)
    for role in ("operator", "viewer"):  # they read the export's runs, not the debtors' accounts
        with services.client(role) as other:
            assert other.get(f"/innen-finance/bank-files/{approval.id}").status_code == 403, role
            assert other.get("/api/v2/dags/pain_export/dagRuns").status_code == 200, role


def test_finance_is_mailed_when_a_bank_file_waits(innen: Innen) -> None:
    subjects = {str(message["subject"]) for message in innen.mailbox.messages}  # a retried question mails again
    assert subjects == {f"Innen: bank file {_approval(innen, loi).summary['file_name']} ({loi}) waits for approval"
                        for loi in innen.waiting}
    body = innen.mailbox.messages[0].get_body(("html",)).get_content()
    assert "someone other than finance must approve it" in body and "/tasks/bank_file.approve/mapped/" in body
    assert innen.mailbox.recipients[0] == ["finance@example.be"]
