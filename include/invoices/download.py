"""A payer downloads their invoice again (seed 000, 4.4: "the PDF downloaded again gets a new QR code").

The stored invoice is handed out while its POM code still works. When the
code expired (POM ends a code after 90 days) or its request was cancelled,
POM is asked for a fresh code first (a new code on the same request, or a
new request), and the invoice is made anew with it: the old one is
withdrawn, the new one gets the next document id. A reference that may not
be paid online, or is paid, gets its current invoice as it is.

The new invoice belongs to today's printing in Brussels (a download puts no
letter in the post), unless the one it replaces was still waiting for a later
day's printing (a type printed at once, made today for the next night): then
it takes that day, so the print room still gets the letter, once.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine, select

from include.config import invoices_dir
from include.finance.db import transaction
from include.finance.models import Invoice, PaymentReference, PaymentReferenceType, PomPaymentRequest
from include.finance.statuses import PomRequestStatus, ReferenceStatus
from include.invoices.making import make_invoices
from include.invoices.withdrawal import withdraw_current
from include.pom.accounts import PomClients
from include.pom.payment_requests import sync_payment_requests
from include.runtime import brussels_day

ACTOR = "payer:download"


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


def invoice_pdf(engine: Engine, clients: PomClients, loi: str, now: datetime) -> bytes | None:
    """The PDF a payer gets for reference ``loi`` (None: no invoice to give)."""
    with transaction(engine, readonly=True) as session:
        found = session.execute(
            select(PaymentReference.id, PaymentReference.status, PaymentReference.open_amount,
                   PaymentReference.mandate_id, PaymentReferenceType.allowed_online, PaymentReferenceType.pom_account)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(PaymentReference.loi == loi)).one_or_none()
        if found is None:
            return None
        ref_id, status, open_amount, mandate_id, online, account_name = found
        current = session.execute(
            select(Invoice.file_path, PomPaymentRequest.status, PomPaymentRequest.qr_expires_at, Invoice.print_day)
            .outerjoin(PomPaymentRequest, PomPaymentRequest.id == Invoice.pom_payment_request_id)
            .where(Invoice.payment_reference_id == ref_id, Invoice.withdrawn_at.is_(None))).one_or_none()
    wants_code = status == ReferenceStatus.SEALED and open_amount > 0 and online and mandate_id is None
    account = clients.accounts.get(account_name or "default")
    if account is not None and account.min_amount is not None and open_amount < account.min_amount:
        wants_code = False  # below the account's minimum: no POM request is made for it (seed 004, 2.5.6)
    print_day = None  # today's in Brussels
    if current is not None:
        path, request_status, expires, printed_on = current
        expires = _aware(expires)
        # Not printed yet (a later day's printing): the new version takes its place there.
        print_day = max(printed_on, brussels_day(now))
        if not wants_code or (request_status == PomRequestStatus.OPEN and expires is not None and expires > now):
            return (invoices_dir() / path).read_bytes()
    elif status != ReferenceStatus.SEALED or open_amount <= 0:
        return None
    if wants_code:
        sync_payment_requests(engine, clients, ACTOR, now, reference_ids={ref_id}, renew_within_days=0)
        with transaction(engine) as session:
            withdraw_current(session, [ref_id], ACTOR, now, reason="downloaded again: new POM code")
    make_invoices(engine, ACTOR, now, print_day=print_day, reference_ids={ref_id})
    with transaction(engine, readonly=True) as session:
        path = session.scalar(select(Invoice.file_path).where(Invoice.payment_reference_id == ref_id,
                                                               Invoice.withdrawn_at.is_(None)))
    return (invoices_dir() / path).read_bytes() if path else None
