"""Bank files waiting for approval: what the export task returns (Airflow logs it), and one answer only."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from schwifty import IBAN
from sqlalchemy import select

from include.errors import InnenError
from include.finance.db import get_engine, transaction
from include.finance.models import AuditLog, BankFileApproval, BankHub, CollectionRun
from include.sepa import bank_file_approval
from include.sepa.bank_file_approval import approval_body, reject, release, stage_run
from tests.conftest import _postgres_database
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
