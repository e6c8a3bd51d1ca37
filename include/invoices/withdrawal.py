"""Withdrawing a reference's current invoice: the link to the document goes (seed 2.3.1), the file stays.

Kept apart from the making of invoices so that sealing (include/finance/sealing.py) can withdraw one
without loading the rendering machinery.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from include.finance.audit import audit_row, record_many
from include.finance.bulk import in_ids
from include.finance.models import Invoice


def withdraw_current(session: Any, reference_ids: Iterable[int], actor: str, now: datetime, *, reason: str) -> int:
    """Withdraw the current invoice of each reference, audited; returns how many were withdrawn. Any number of
    references: their ids go to the database as one value (:func:`~include.finance.bulk.in_ids`)."""
    ids = list(reference_ids)
    if not ids:
        return 0
    rows = session.scalars(select(Invoice).where(in_ids(session, Invoice.payment_reference_id, ids),
                                                 Invoice.withdrawn_at.is_(None)).order_by(Invoice.id).with_for_update()).all()
    for row in rows:
        row.withdrawn_at, row.withdrawn_reason = now, reason
    session.flush()
    record_many(session, [audit_row("invoice", row.id, "withdrawn", actor, before={"document_id": row.document_id},
                                    after={"reason": reason}, at=now) for row in rows])
    return len(rows)
