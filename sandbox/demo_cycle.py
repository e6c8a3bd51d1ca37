"""The people and systems around the demo's nightly cycle, shared by ``make demo`` and ``make cluster-check``.

Payers paying at POM, the recipients' mail servers answering, POM's delivery
reports landing two days later, and the figures by which two runs of the
cycle are compared (:func:`cycle_figures`): the demo on one machine and the
same cycle on the cluster must give the same ones.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select

from include.finance.db import transaction
from include.finance.models import (
    BankEntry,
    Collection,
    CollectionRun,
    Contact,
    ControlListItem,
    DeliveryDiagnosis,
    Invoice,
    Payment,
    PaymentReference,
    PaymentReferenceType,
    PomEvent,
    PomPaymentRequest,
    SentDocument,
)
from include.finance.statuses import PomRequestStatus, ReferenceStatus
from sandbox import pom_simulator as simulator

# What the demo's first recipients' mail servers answer (the seed's messages), one script per address.
MAIL_OUTCOMES = (
    ("MAILBOX_FULL", [("FAILED", 0.0), ("FAILED", 24.0)]),  # full for two days: given up
    ("RETRYING", [("FAILED", 0.0), ("DELIVERED", 3.0)]),  # temporary, then delivered
    ("RETRYING", [("FAILED", 30.0)]),  # temporary, still within POM's 48 hours
    ("BOUNCE_BLACKLISTED", [("FAILED", 0.0)]),
    ("BLACKLISTED", [("FAILED", 0.0)]),
    ("UNSUBSCRIBED", [("FAILED", 0.0)]),
    ("", [("FAILED", 0.0)]),  # a text nobody has seen before
)


def fresh_pom_account() -> dict[str, Any]:
    """The demo's POM account with fresh random credentials (registered with the simulator, given to Airflow)."""
    return {"env": "beta", "username": "bib-leuven", "password": secrets.token_urlsafe(16),
            "sender_id": "BIB-LEUVEN", "sender_contract_number": "C-2026-0042",
            "callback_secret": secrets.token_urlsafe(24), "auto_cancel": False}


def pom_connection(account: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The Airflow Connection ``pom_default`` for ``account`` on the simulator at ``base_url``."""
    return {"conn_type": "http", "host": base_url, "login": account["username"], "password": account["password"],
            "extra": {k: account[k] for k in ("env", "sender_id", "sender_contract_number", "callback_secret")}}


def pay_some(engine: Engine, base_url: str, *, callbacks_expected: bool = True) -> tuple[int, int]:
    """Payers pay every third open request, one in four of them without a callback reaching us.

    Returns (paid with a callback, paid without); waits until the callbacks are taken."""
    with transaction(engine, readonly=True) as session:
        pom_ids = list(session.scalars(select(PomPaymentRequest.pom_id)
                                       .where(PomPaymentRequest.status == PomRequestStatus.OPEN)
                                       .order_by(PomPaymentRequest.id)))[::3]
    counts = [0, 0]
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for n, pom_id in enumerate(pom_ids):
            callback = n % 4 != 3
            http.post(f"/_sim/pay/{pom_id}", json={"channel": "bancontact", "callback": callback}).raise_for_status()
            counts[0 if callback else 1] += 1
    deadline = time.monotonic() + 60
    while callbacks_expected and time.monotonic() < deadline:  # the simulator posts from a background thread
        with transaction(engine, readonly=True) as session:
            if session.scalar(select(func.count()).select_from(PomEvent)) >= counts[0]:
                break
        time.sleep(0.2)
    return counts[0], counts[1]


def script_mail_servers(engine: Engine, base_url: str) -> None:
    """The first e-mail recipients' mail servers answer with :data:`MAIL_OUTCOMES` (before the mailing)."""
    with transaction(engine, readonly=True) as session:
        emails = session.scalars(
            select(Contact.value).join(PaymentReference, PaymentReference.end_user_id == Contact.end_user_id)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .join(Invoice, Invoice.payment_reference_id == PaymentReference.id)
            .where(PaymentReferenceType.code == "FACTUUR-BIB", Invoice.channel == "email", Contact.email_recipient)
            .order_by(PaymentReference.id, Contact.id)).all()
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for email, (message, attempts) in zip(emails, MAIL_OUTCOMES):
            text = getattr(simulator, f"MSG_{message}") if message else "Mailbox unavailable: 550 5.1.1 user unknown"
            http.post("/_sim/delivery-outcomes", json={"email_contains": email, "outcomes": [
                [status, "" if status == "DELIVERED" else text, hours] for status, hours in attempts]}).raise_for_status()


def mailed_batches(engine: Engine) -> list[tuple[str, int]]:
    with transaction(engine, readonly=True) as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(SentDocument.batch, func.count()).group_by(SentDocument.batch).order_by(SentDocument.batch))]


def deliver_reports(engine: Engine, base_url: str, client: Any, inbox: Path) -> str:
    """POM's clock moves two days on and each mailed batch's delivery report lands in ``inbox``.

    ``client``: our POM client for the account. Returns POM's new now (the moment to analyse the reports at)."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        now = http.post("/_sim/clock", json={"advance_seconds": 50 * 3600}).json()["now"]
    inbox.mkdir(parents=True, exist_ok=True)
    for batch, _count in mailed_batches(engine):
        (inbox / f"{batch}.csv").write_bytes(client.delivery_report(batch))
    return now


def _grouped(session: Any, *columns: Any, where: Any = None) -> dict[str, int]:
    query = select(*columns, func.count()).group_by(*columns)
    if where is not None:
        query = query.where(where)
    return {"/".join(str(value) for value in row[:-1]): row[-1] for row in session.execute(query)}


def cycle_figures(engine: Engine) -> dict[str, Any]:
    """What one run of the cycle left in Innen's database, free of ids, times and random secrets."""
    with transaction(engine, readonly=True) as session:
        return {
            "collections": _grouped(session, CollectionRun.collection_date, Collection.sequence_type,
                                    where=Collection.run_id == CollectionRun.id),
            "collected_total": str(session.scalar(select(func.sum(Collection.amount))) or 0),
            "bank_entries": _grouped(session, BankEntry.outcome),
            "payments": {source: [count, str(total)] for source, count, total in session.execute(
                select(Payment.source, func.count(), func.sum(Payment.amount)).group_by(Payment.source))},
            "control_list": _grouped(session, ControlListItem.source, ControlListItem.kind),
            "references": _grouped(session, PaymentReference.status),
            "expired": session.scalar(select(func.count()).select_from(PaymentReference)
                                      .where(PaymentReference.status == ReferenceStatus.EXPIRED)),
            "pom_requests": _grouped(session, PomPaymentRequest.status),
            # What POM told (by type), not how each callback was taken: a cancellation's callback finds the request
            # cancelled already or not, depending on which commit came first.
            "pom_events": _grouped(session, PomEvent.event_type),
            "invoices": _grouped(session, Invoice.channel, where=Invoice.withdrawn_at.is_(None)),
            "diagnoses": _grouped(session, DeliveryDiagnosis.diagnosis),
        }
