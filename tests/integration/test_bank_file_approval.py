"""Bank files waiting for approval: what the export task returns (Airflow logs it), and one answer only."""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from schwifty import IBAN
from sqlalchemy import select

from include.errors import ExportRejected, InnenError
from include.finance.db import get_engine, transaction
from include.finance.models import AuditLog, BankFileApproval, BankHub, Collection, CollectionRun, PaymentReferenceType
from include.finance.reference_deletion import delete_references
from include.sepa import bank_file_approval
from include.sepa.bank_file_approval import approval_body, reject, release, stage_run
from include.sepa.mandate_execution import execute_mandates
from tests.conftest import _postgres_database
from tests.factories import add_debt, make_institution, make_mandate, make_user
from tests.integration.test_export import _prepare


def _hub_iban(engine) -> str:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return session.scalars(select(BankHub.creditor_iban)).one()


def test_what_the_export_task_returns_names_no_creditor_account(engine, var_dir: Path) -> None:
    loi = _prepare(engine, approval_required=True)
    iban = _hub_iban(engine)
    formatted = IBAN(iban).formatted
    staged = stage_run(loi, "pain_export", requested_by="operator", engine=engine)
    again = stage_run(loi, "pain_export", requested_by="operator", airflow_task="d/r/t/0", engine=engine)  # retried
    assert again["approval_id"] == staged["approval_id"] and staged["approval_required"] is True
    for returned in (staged, again):
        shown = json.dumps(returned)
        assert iban not in shown and formatted not in shown and iban[4:] not in shown, shown
    # The approver still sees the account in full: the body is read from the approval, not passed on.
    body = approval_body(staged["approval_id"], view_url="/innen-finance/bank-files/{approval_id}", engine=engine)
    assert f"| Creditor account | {formatted} |" in body
    assert f"[View the file](/innen-finance/bank-files/{staged['approval_id']})" in body
    with pytest.raises(InnenError, match="does not exist"):
        approval_body(staged["approval_id"] + 1, engine=engine)


def test_a_release_and_a_reject_of_one_approval_at_once_decide_it_once(
    postgres, var_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = get_engine(_postgres_database(postgres))
    loi = _prepare(engine, approval_required=True)
    staged = stage_run(loi, "pain_export", requested_by="operator", engine=engine)
    approval_id = staged["approval_id"]

    # Both have read the approval before either writes, unless the first holds it locked: then the second waits
    # for the lock (and the first for the barrier, in vain, two seconds).
    barrier = threading.Barrier(2, timeout=2)
    read = bank_file_approval._approval

    def read_together(session, approval):  # type: ignore[no-untyped-def]
        found = read(session, approval)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return found

    monkeypatch.setattr(bank_file_approval, "_approval", read_together)
    results: dict[str, Any] = {}

    def attempt(what: str) -> None:
        try:
            if what == "release":
                results[what] = release(approval_id, "anna", "pain_export", engine=engine)
            else:
                results[what] = reject(approval_id, "bram", "wrong amounts", "pain_export", engine=engine)
        except Exception as exc:  # noqa: BLE001 - reported below
            results[what] = exc

    threads = [threading.Thread(target=attempt, args=(what,)) for what in ("release", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    won = [what for what, result in results.items() if isinstance(result, dict)]
    lost = [what for what, result in results.items() if isinstance(result, InnenError)]
    assert len(won) == 1 and len(lost) == 1, results
    assert str(results[lost[0]]).endswith(
        "was already approved" if lost == ["reject"] else "was rejected: wrong amounts"), results
    outbox = var_dir / "outbox"
    released = sorted(p.name for p in outbox.iterdir()) if outbox.exists() else []
    with transaction(engine, readonly=True) as session:
        approval = session.get(BankFileApproval, approval_id)
        run = session.scalars(select(CollectionRun).where(CollectionRun.loi == loi)).one()
        actions = sorted(session.scalars(select(AuditLog.action).where(
            AuditLog.entity.in_(("bank_file_approval", "collection_run")),
            AuditLog.action.in_(("approved", "rejected", "exported", "export_rejected")))))
    assert not Path(approval.staged_path).exists()
    if won == ["release"]:
        assert (approval.status, approval.decided_by, run.status) == ("approved", "anna", "exported")
        assert len(released) == 2 and run.error is None
        assert actions == ["approved", "exported"]
    else:
        assert (approval.status, approval.decided_by, run.status) == ("rejected", "bram", "ready")
        assert released == [] and "wrong amounts" in run.error
        assert actions == ["export_rejected", "rejected"]




def _staged_run(engine):  # type: ignore[no-untyped-def]
    """Collections of 25.00 and 9.00 for Monday 23 November, their file staged on Friday 20th: (institution, run,
    the staged file)."""
    with transaction(engine) as session:
        inst = make_institution(session, approval_required=True, four_eyes=False)
        for amount in ("25.00", "9.00"):
            owner = make_user(session)
            make_mandate(session, inst, owner, first=date(2026, 11, 21))
            add_debt(session, inst, owner, "LID", amount)
        execute_mandates(session, date(2026, 11, 20), "test")
        for type_ in session.scalars(select(PaymentReferenceType)):
            type_.access_admin = "finance-admin"
        loi = session.scalars(select(CollectionRun.loi)).one()
    return inst, loi, stage_run(loi, "pain_export", requested_by="operator", engine=engine)


def test_collections_made_while_a_file_waits_for_approval_go_to_a_new_run(engine, var_dir: Path) -> None:
    # Friday's file waits for finance over the weekend; Saturday's execution finds another collection for the same
    # Monday. It is not in the staged file, so it may not join that run (the release would mark it exported).
    inst, loi, staged = _staged_run(engine)
    with transaction(engine) as session:
        owner = make_user(session)
        make_mandate(session, inst, owner, first=date(2026, 11, 22))
        add_debt(session, inst, owner, "LID", "4.00")
        later = execute_mandates(session, date(2026, 11, 21), "test")
    assert later.collections == 1 and [r["loi"] for r in later.runs] != [loi]
    release(staged["approval_id"], "finance", "test", engine=engine, outbox=var_dir / "outbox")
    with transaction(engine, readonly=True) as session:
        runs = sorted((r.status, r.transaction_count, r.total_amount) for r in session.scalars(select(CollectionRun)))
        assert runs == [("exported", 2, Decimal("34.00")), ("ready", 1, Decimal("4.00"))]
        assert sorted(session.scalars(select(Collection.status))) == ["exported", "exported", "pending"]


@pytest.mark.parametrize("deleted", [["fp:BIB:1"], ["fp:BIB:1", "fp:BIB:2"]], ids=["one", "all"])
def test_a_file_whose_run_changed_while_it_waited_is_not_released(engine, var_dir: Path, deleted) -> None:
    # A reference of the staged file is deleted (paid at the counter): the file would still collect it.
    _inst, loi, staged = _staged_run(engine)
    with transaction(engine) as session:
        delete_references(session, "test", roles={"finance-admin"}, reference_lois=deleted, dry_run=False)
    with pytest.raises(ExportRejected, match="changed while its file waited"):
        release(staged["approval_id"], "finance", "test", engine=engine, outbox=var_dir / "outbox")
    assert not (var_dir / "outbox").exists() or not any((var_dir / "outbox").iterdir())
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(BankFileApproval.status)).one() == "waiting"
        assert session.scalars(select(CollectionRun.status)).one() == ("ready" if len(deleted) == 1 else "deleted")
