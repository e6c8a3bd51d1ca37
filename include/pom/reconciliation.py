"""The nightly backstop (seed 000, 4.5): ask POM about every open request, book what was paid, then cancel.

Callbacks can be lost (endpoint down, misconfigured at POM). So every night,
for every open request we hold:

1. POM's status is read (all of an account's requests, paced to its rate
   limit, a few at a time);
2. paid → booked, exactly once, in batches (see :mod:`include.pom.booking`);
   cancelled or expired at POM → recorded here; unknown to POM (404) while
   it reads the account's other requests → closed here as cancelled (its
   code can never be paid; the sync makes a new request), and on the report;
   any other status (one
   API.md does not name, or "paid" without a payment above zero) → on the
   report for a person, and left alone;
3. only then, requests still open whose reference is overdue and whose type
   auto-cancels are cancelled at POM (a payer who paid last minute is booked,
   never cancelled).

The report (``var/reports/pom_reconciliation/<date>/``, CSV ``;`` and HTML)
lists every request that changed or needs a person, with the action.

Accounts are independent (seed 000, 3): one whose credentials POM refuses, or
whose Connection is missing, is named in the report and skipped; the others
go through all three steps, and only then does the run fail
(:class:`PomSyncIncomplete`), naming it. Rerunning is safe: what was booked is
recognised, and cancelling twice is harmless.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from include.config import reports_dir
from include.errors import ConfigError
from include.finance.db import transaction
from include.finance.models import PaymentReference, PaymentReferenceType, PomPaymentRequest
from include.finance.money import ZERO
from include.finance.statuses import ENDED_UNPAID_POM_REQUEST, PomRequestStatus
from include.finance.statuses import ReconciliationOutcome as Outcome
from include.pom.accounts import PomClients
from include.pom.booking import PaidAtPom, book_paid_requests
from include.pom.client import PomAuthError, PomError, PomNotFound, PomRequest, PomUnavailable
from include.pom.payment_requests import (
    PomSyncIncomplete,
    RequestSteps,
    SyncSummary,
    overdue,
    paid_with_payment,
    unknown_status,
)
from include.reports import Table, write_csv, write_html
from include.runtime import brussels_day

log = logging.getLogger(__name__)

BOOKING_BATCH = 500
ACTIONS = {
    Outcome.PAID: "none: paid and booked",
    Outcome.PARTIAL: "none: part paid and booked; the rest stays open",
    Outcome.OVERPAID: "refund the payer the excess",
    Outcome.CLOSED_REFERENCE: "refund the payer: the reference was already paid, deleted or expired",
    Outcome.ALREADY_BOOKED: "none",
    Outcome.CANCELLED_OVERDUE: "none: overdue, cancelled at POM",
    Outcome.PAID_WHILE_CANCELLING: "none: paid at POM before our cancel, so booked instead; a refund due is in a note",
    Outcome.FOUND_CANCELLED: "none: cancelled at POM; a new request follows if the reference is still open",
    Outcome.FOUND_EXPIRED: "none: expired at POM",
    Outcome.ERROR: "look at the message; the next run tries again",
    Outcome.NOTE: "read the note",
}
NEEDS_A_PERSON = (Outcome.OVERPAID, Outcome.CLOSED_REFERENCE, Outcome.ERROR)
FOUND = {PomRequestStatus.CANCELLED: Outcome.FOUND_CANCELLED, PomRequestStatus.EXPIRED: Outcome.FOUND_EXPIRED}


@dataclass
class ReconciliationReport:
    counts: Counter[str] = field(default_factory=Counter)
    rows: list[list[Any]] = field(default_factory=list)
    booked_total: Any = ZERO
    csv: str | None = None
    html: str | None = None
    # Requests whose status, or cancel, POM did not answer (5xx, 429, timeout, after the client's retries): a retry
    # soon may cure these, unlike the other errors (a status Innen does not know, a 404 for all of an account's
    # requests, a request refused): those are a person's, on the report.
    unanswered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(sorted(self.counts.items())), "booked_total": str(self.booked_total),
                "csv": self.csv, "html": self.html}


class ReconciliationIncomplete(PomSyncIncomplete):
    """An account could not be reconciled; the others were, and ``report`` was written all the same."""

    def __init__(self, message: str, report: ReconciliationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, slots=True)
class _Open:
    id: int
    pom_id: str
    account: str
    loi: str
    overdue: bool


def reconcile(engine: Engine, clients: PomClients, actor: str, now: datetime, *, folder: Path | None = None) -> ReconciliationReport:
    """Steps 1–3 of the module docstring, then the report."""
    report = ReconciliationReport()
    with transaction(engine, readonly=True) as session:
        rows = session.execute(
            select(PomPaymentRequest.id, PomPaymentRequest.pom_id, PomPaymentRequest.account, PaymentReference.loi,
                   PaymentReference.due_date, PaymentReferenceType.pom_auto_cancel)
            .join(PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(PomPaymentRequest.status == PomRequestStatus.OPEN, PomPaymentRequest.pom_id.is_not(None))
            .order_by(PomPaymentRequest.id)
        ).all()
    by_account: dict[str, list[_Open]] = {}
    for request_id, pom_id, account, loi, due, auto_cancel in rows:
        by_account.setdefault(account, []).append(_Open(request_id, pom_id, account, loi, overdue(due, auto_cancel, now)))
    report.counts["open_requests"] = len(rows)
    still_open: list[_Open] = []
    failed: dict[str, str] = {}
    for account, requests in sorted(by_account.items()):
        try:
            still_open.extend(_read_and_book(engine, clients, account, requests, actor, now, report))
        except (PomAuthError, ConfigError) as exc:  # this account only: the others are read, booked and cancelled
            failed[account] = str(exc)
            report.counts[Outcome.ERROR] += 1
            report.rows.append(["", account, "", Outcome.ERROR, ACTIONS[Outcome.ERROR], "",
                                f"account {account} not reconciled ({len(requests)} open request(s)): {exc}"])
            log.error("POM account %s not reconciled: %s", account, exc)
    sync = RequestSteps(engine, clients, actor, now, SyncSummary())
    for request in still_open:
        if not request.overdue:
            continue
        with transaction(engine, readonly=True) as session:
            row = session.get(PomPaymentRequest, request.id)
            assert row is not None
            session.expunge(row)
        try:
            cancelled = sync.cancel(row, "overdue: due date passed and the type cancels automatically")
        except PomError as exc:
            report.unanswered += isinstance(exc, PomUnavailable)
            _note(report, request, Outcome.ERROR, f"cancel failed: {exc}")
            continue
        _note(report, request, Outcome.CANCELLED_OVERDUE if cancelled else Outcome.PAID_WHILE_CANCELLING, "")
    for outcome, count in sync.summary.counts.items():
        report.counts[outcome] += count
    for problem in sync.summary.problems:
        report.rows.append(["", "", "", Outcome.NOTE, ACTIONS[Outcome.NOTE], "", problem])
    _write(report, folder or reports_dir() / "pom_reconciliation" / brussels_day(now).isoformat(), now)
    if failed:
        raise ReconciliationIncomplete(
            f"POM account(s) {', '.join(sorted(failed))} not reconciled; the others are done (report {report.html}): "
            + "; ".join(f"{name}: {problem}" for name, problem in sorted(failed.items())), report)
    return report


def _read_and_book(engine: Engine, clients: PomClients, account: str, requests: list[_Open], actor: str,
                   now: datetime, report: ReconciliationReport) -> list[_Open]:
    """POM's status of ``requests``; books the paid ones in batches; returns those still open."""
    by_pom_id = {request.pom_id: request for request in requests}
    paid: dict[int, PaidAtPom] = {}
    still_open: list[_Open] = []
    closed: list[tuple[_Open, PomRequest]] = []
    unknown: list[_Open] = []  # POM answered 404
    answered = False  # POM read at least one of the account's requests
    for pom_id, answer in clients.client(account).get_many(list(by_pom_id)):
        request = by_pom_id[pom_id]
        if isinstance(answer, PomNotFound):
            unknown.append(request)
            continue
        if isinstance(answer, PomError):
            report.unanswered += isinstance(answer, PomUnavailable)
            _note(report, request, Outcome.ERROR, f"status not read: {answer}")
            continue
        answered = True
        if paid_with_payment(answer):
            assert answer.payment is not None
            paid[request.id] = PaidAtPom(answer.payment.amount, answer.payment.paid_at, answer.payment.channel)
            if len(paid) >= BOOKING_BATCH:
                _book(engine, paid, by_pom_id, actor, now, report)
                paid = {}
        elif answer.status in ENDED_UNPAID_POM_REQUEST:
            closed.append((request, answer))
        elif answer.status == PomRequestStatus.OPEN:
            still_open.append(request)
        else:  # not open: never cancelled as overdue (it may be a payment under way); a person looks
            _note(report, request, Outcome.ERROR, f"POM reports {unknown_status(answer)}: left as it is, not cancelled")
    _book(engine, paid, by_pom_id, actor, now, report)
    if not answered:  # every read failed: more likely the Connection names another account than POM forgot them
        for request in unknown:
            _note(report, request, Outcome.ERROR, f"POM does not know this request (404): check that Connection "
                  f"pom_{account} is the account (and test mode or production) that made it")
        unknown = []
    if closed or unknown:
        sync = RequestSteps(engine, clients, actor, now, SyncSummary())
        for request, answer in closed:
            with transaction(engine, readonly=True) as session:
                row = session.get(PomPaymentRequest, request.id)
                assert row is not None
                session.expunge(row)
            sync.close_here(row, answer.status, answer.cancelled_reason or f"{answer.status} at POM", None)
            _note(report, request, FOUND[answer.status], answer.cancelled_reason or "")
        for request in unknown:  # its code can never be paid: closed here, and the sync makes a new request
            with transaction(engine, readonly=True) as session:
                row = session.get(PomPaymentRequest, request.id)
                assert row is not None
                session.expunge(row)
            sync.close_here(row, PomRequestStatus.CANCELLED, "POM no longer knows this request (404)", None)
            _note(report, request, Outcome.FOUND_CANCELLED, "", note="POM no longer knows this request (404), "
                  "though it read the account's others: closed here; a new request follows if the reference is open")
    return still_open


def _book(engine: Engine, paid: dict[int, PaidAtPom], by_pom_id: dict[str, _Open], actor: str, now: datetime,
          report: ReconciliationReport) -> None:
    if not paid:
        return
    with transaction(engine) as session:
        bookings = book_paid_requests(session, paid, actor, now, via="pom_reconciliation")
    by_id = {request.id: request for request in by_pom_id.values()}
    for booking in bookings:
        report.booked_total += booking.booked
        request = by_id[booking.request_id]
        detail = f"paid {booking.paid}, booked {booking.booked}"
        if booking.excess:
            detail += f", refund {booking.excess}"
        _note(report, request, Outcome(booking.outcome), detail)


def _note(report: ReconciliationReport, request: _Open, outcome: Outcome, detail: str, *, note: str = "") -> None:
    report.counts[outcome] += 1
    report.rows.append([request.loi, request.account, request.pom_id, outcome, ACTIONS[outcome], detail, note])


HEADER = ["reference", "account", "POM request", "outcome", "action", "detail", "note"]


def _write(report: ReconciliationReport, folder: Path, now: datetime) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = sorted(report.rows, key=lambda row: (row[3], row[0]))
    csv_path = folder / "pom_reconciliation.csv"
    write_csv(csv_path, HEADER, rows)
    needs_a_person = Table("Needs a person", HEADER, csv_name=csv_path.name)
    everything = Table("Every change", HEADER, csv_name=csv_path.name)
    for row in rows:
        everything.add(row)
        if row[3] in NEEDS_A_PERSON or row[6]:
            needs_a_person.add(row)
    html_path = folder / "pom_reconciliation.html"
    summary = [("run at", now.isoformat(timespec="seconds")), *((k, v) for k, v in sorted(report.counts.items())),
               ("total booked", f"{report.booked_total:.2f}")]
    write_html(html_path, "POM reconciliation", [needs_a_person, everything], summary)
    report.csv, report.html = str(csv_path), str(html_path)
