"""Making invoices: which references need one, rendering them, and recording them once.

The rule (:func:`decide`, pure): a sealed reference with something left to
pay has exactly one current invoice, asking for its open amount. No invoice
yet → make one; an invoice for another amount (a partial payment, lines
changed) → withdraw it and make a new one; a reference unsealed (back to
draft), deleted or expired → its invoice is withdrawn (seed 2.3.1: unsealing
removes the link to the document). A paid reference keeps the invoice it was
paid on.

Every invoice is written to its file first (atomically; same reference,
template and data → same bytes, so a rerun or a concurrent run writes the
identical file), then recorded with its SHA-256 in one transaction per
chunk. The unique index on a reference's current invoice makes a second
invoice impossible when two runs race; the loser's rows are skipped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from include.config import invoices_dir, templates_dir
from include.files import atomic_write, make_durable
from include.finance.audit import audit_row, record_many
from include.finance.bulk import insert_many, reserve_ids
from include.finance.db import transaction
from include.finance.models import Invoice, PaymentReference, PaymentReferenceType
from include.finance.statuses import RELEASED_REFERENCE, ReferenceStatus
from include.invoices.epc_qr import EpcQrError, epc_payload
from include.invoices.facts import InvoiceFacts, gather, invoice_data
from include.invoices.render_pool import MadeInvoice, RenderJob, RenderPool, pipelined
from include.invoices.templates import template_path
from include.invoices.withdrawal import withdraw_current
from include.runtime import brussels_day

log = logging.getLogger(__name__)

CHUNK = 200
REFUSED_SHOWN = 50  # refusals named in a run's result (and log); the count has them all


class Step(str, Enum):
    MAKE = "make"
    REMAKE = "remake"  # withdraw the current invoice (other amount), then make
    WITHDRAW = "withdraw"
    KEEP = "keep"


def decide(status: str, open_amount: Decimal, invoice_amount: Decimal | None) -> Step:
    """What a reference's invoice needs, from its status, open amount and current invoice's amount (None: none).

    >>> decide("sealed", Decimal("12.50"), None)
    <Step.MAKE: 'make'>
    >>> decide("sealed", Decimal("7.50"), Decimal("12.50"))
    <Step.REMAKE: 'remake'>
    >>> decide("draft", Decimal("12.50"), Decimal("12.50"))
    <Step.WITHDRAW: 'withdraw'>
    >>> decide("paid", Decimal("0.00"), Decimal("12.50"))
    <Step.KEEP: 'keep'>
    """
    if status == ReferenceStatus.SEALED and open_amount > 0:
        if invoice_amount is None:
            return Step.MAKE
        return Step.KEEP if invoice_amount == open_amount else Step.REMAKE
    if status in (ReferenceStatus.DRAFT, *RELEASED_REFERENCE) and invoice_amount is not None:
        return Step.WITHDRAW
    return Step.KEEP


def next_print_day(day: date) -> date:
    """The print day of an invoice made at once on ``day`` (seed 2.5.2 ``direct``: made when the reference is
    sealed, printed "bij een volgende run"): the next day's, whose nightly ``invoice_run`` puts it in its print
    overview and ``print.pdf``. ``day``'s own run has already been (it runs at 02:30), so ``day`` would never
    print it. Every day has its nightly run, weekends and holidays too: simply the next calendar day.

    >>> next_print_day(date(2026, 11, 20))
    datetime.date(2026, 11, 21)
    >>> next_print_day(date(2026, 12, 31))  # across the year
    datetime.date(2027, 1, 1)
    >>> next_print_day(date(2028, 2, 28))  # a leap year's February
    datetime.date(2028, 2, 29)
    >>> next_print_day(date(2026, 3, 28))  # the night summer time starts is a day like another
    datetime.date(2026, 3, 29)
    """
    return day + timedelta(days=1)


@dataclass
class InvoiceRun:
    """What a run did: counts per step and the invoices it made (document ids)."""

    print_day: str
    counts: Counter[str] = field(default_factory=Counter)
    made: list[str] = field(default_factory=list)
    # References that got no invoice because their own data cannot make one (the hub's account, the amount for an
    # EPC code), "<reference>: <why>": the others' invoices are made all the same.
    refused: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"print_day": self.print_day, "counts": dict(sorted(self.counts.items())), "made": len(self.made),
                "refused": self.refused[:REFUSED_SHOWN]}


def planned(engine: Engine, reference_ids: Iterable[int] | None = None) -> dict[int, Step]:
    """Reference id → step, for every reference whose invoice needs something (optionally only ``reference_ids``)."""
    current = select(Invoice.payment_reference_id, Invoice.amount).where(Invoice.withdrawn_at.is_(None)).subquery()
    query = (
        select(PaymentReference.id, PaymentReference.status, PaymentReference.open_amount, current.c.amount)
        .outerjoin(current, current.c.payment_reference_id == PaymentReference.id)
        .where((PaymentReference.status == ReferenceStatus.SEALED) | current.c.amount.is_not(None))
    )
    wanted = None if reference_ids is None else set(reference_ids)
    steps = {}
    with transaction(engine, readonly=True) as session:
        for ref_id, status, open_amount, amount in session.execute(query):
            if wanted is not None and ref_id not in wanted:
                continue
            step = decide(status, open_amount, amount)
            if step is not Step.KEEP:
                steps[ref_id] = step
    return steps


def waiting_for_pom(engine: Engine) -> set[int]:
    """References about to get an invoice that should carry a POM code: their POM request is brought up to date first."""
    steps = planned(engine)
    wanted = [ref_id for ref_id, step in steps.items() if step in (Step.MAKE, Step.REMAKE)]
    if not wanted:
        return set()
    with transaction(engine, readonly=True) as session:
        return set(session.scalars(
            select(PaymentReference.id).join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(PaymentReference.id.in_(wanted), PaymentReferenceType.allowed_online.is_(True),
                   PaymentReference.mandate_id.is_(None))))


def direct_references_of_runs(engine: Engine, run_lois: Iterable[str]) -> set[int]:
    """The sealed references collected in ``run_lois`` whose type prints at once (seed 2.5.2 ``direct``)."""
    from include.finance.models import Collection, CollectionRun

    lois = list(run_lois)
    if not lois:
        return set()
    with transaction(engine, readonly=True) as session:
        return set(session.scalars(
            select(PaymentReference.id)
            .join(Collection, Collection.payment_reference_id == PaymentReference.id)
            .join(CollectionRun, CollectionRun.id == Collection.run_id)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(CollectionRun.loi.in_(lois), PaymentReferenceType.direct_print.is_(True),
                   PaymentReference.status == ReferenceStatus.SEALED)))


def make_invoices(
    engine: Engine, actor: str, now: datetime, *, print_day: date | None = None,
    reference_ids: Iterable[int] | None = None, workers: int | None = None,
) -> InvoiceRun:
    """Bring every reference's invoice in line with :func:`decide` (or only those of ``reference_ids``).

    Many invoices are rendered on every core (:mod:`include.invoices.render_pool`); ``workers`` caps that.
    Without ``print_day`` the invoices belong to the printing of ``now``'s day in Brussels (not the UTC day, which
    is still yesterday shortly after midnight). The nightly run passes its run date; an invoice made at once for a
    ``direct`` type passes :func:`next_print_day`, so that the next night prints it.
    """
    # Without a print day (an invoice made again on a payer's download) it is today in Brussels: just after
    # midnight the UTC date is still yesterday's. Not the next day: a download must not put a letter in the post.
    day = print_day or brussels_day(now)
    run = InvoiceRun(day.isoformat())
    steps = planned(engine, reference_ids)
    withdrawals = [ref_id for ref_id, step in steps.items() if step is Step.WITHDRAW]
    if withdrawals:
        with transaction(engine) as session:
            run.counts["withdrawn"] += withdraw_current(session, withdrawals, actor, now, reason="reference not sealed")
    to_make = sorted(ref_id for ref_id, step in steps.items() if step in (Step.MAKE, Step.REMAKE))
    if not to_make:
        return run

    def jobs() -> Iterator[list[RenderJob]]:
        for start in range(0, len(to_make), CHUNK):
            chunk = to_make[start : start + CHUNK]
            with transaction(engine, readonly=True) as session:
                facts = gather(session, chunk)
                versions = dict(session.execute(
                    select(Invoice.payment_reference_id, func.max(Invoice.version))
                    .where(Invoice.payment_reference_id.in_(chunk)).group_by(Invoice.payment_reference_id)).all())
            chunks.append({item.reference_id: item for item in facts})
            rendering = []
            for item in facts:
                try:
                    rendering.append(render_job_of(folder, item, versions.get(item.reference_id, 0) + 1, day))
                except EpcQrError as refused:  # this reference's data: its invoice waits, the others' do not
                    run.counts["refused"] += 1
                    run.refused.append(f"{item.loi}: {refused}")
            yield rendering

    folder = templates_dir()
    chunks: list[dict[int, InvoiceFacts]] = []
    with RenderPool(folder, len(to_make), workers) as pool:
        for _jobs, made in pipelined(jobs(), pool):
            for m in made:
                if m.pdf is not None:  # rendered for an object store: put whole, durable once put
                    atomic_write(m.path, m.pdf)
            make_durable([m.path for m in made])  # on disk before the database says they exist
            facts_of = chunks.pop(0)
            if not made:
                continue
            _record(engine, [(facts_of[m.reference_id], m) for m in made], steps, actor, now, run)
    return run


def document_id(facts: InvoiceFacts, version: int) -> str:
    """The id POM sees for this invoice: its number (or reference), with the version from the second on."""
    base = facts.invoice_number or facts.loi
    return base if version == 1 else f"{base}-{version}"


def _file_name(document: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in document) + ".pdf"


def render_job_of(template_folder: Path, facts: InvoiceFacts, version: int, day: date) -> RenderJob:
    """What a worker needs to render an invoice: the template, the placeholders' values, the EPC payload."""
    payload = None
    if facts.transfer_qr and facts.open_amount > 0:
        payload = epc_payload(facts.creditor_name, facts.creditor_iban or "", facts.open_amount,
                              bic=facts.creditor_bic, reference=facts.reference_number).encode("utf-8")
    document = document_id(facts, version)
    return RenderJob(facts.reference_id, version, document,
                     template_path(template_folder, facts.print_state, facts.language),
                     invoices_dir() / day.isoformat() / _file_name(document), invoice_data(facts, None, day), payload, day)


Made = tuple[InvoiceFacts, MadeInvoice]


def _record(engine: Engine, made: list[Made], steps: dict[int, Step], actor: str, now: datetime,
            run: InvoiceRun) -> None:
    try:
        with transaction(engine) as session:
            _insert(session, made, steps, actor, now, run)
        return
    except IntegrityError:  # another run recorded some of these meanwhile: one by one, skipping those
        log.info("invoices of %d references raced with another run; recording one by one", len(made))
    for invoice in made:
        try:
            with transaction(engine) as session:
                _insert(session, [invoice], steps, actor, now, run)
        except IntegrityError:
            run.counts["skipped_concurrent"] += 1


def _insert(session: Any, made: list[Made], steps: dict[int, Step], actor: str, now: datetime,
            run: InvoiceRun) -> None:
    remade = [m.reference_id for _facts, m in made if steps.get(m.reference_id) is Step.REMAKE]
    withdrawn = withdraw_current(session, remade, actor, now, reason="amount changed") if remade else 0
    ids = reserve_ids(session, Invoice.__table__, len(made))
    insert_many(session, Invoice.__table__, [
        {"id": invoice_id, "payment_reference_id": m.reference_id, "version": m.version,
         "document_id": m.document_id, "template": m.template, "language": facts.language,
         "channel": facts.channel.kind, "postal_address_id": facts.channel.address_id,
         "amount": facts.open_amount, "pom_payment_request_id": facts.pom_request_id,
         "file_path": str(m.path.relative_to(invoices_dir())), "sha256": m.sha256, "pages": m.pages,
         "print_day": m.print_day, "made_at": now, "made_by": actor, "withdrawn_at": None, "withdrawn_reason": None}
        for invoice_id, (facts, m) in zip(ids, made, strict=True)])
    audits = [audit_row("invoice", invoice_id, "made", actor, after={
        "reference": facts.loi, "document_id": m.document_id, "amount": facts.open_amount,
        "channel": facts.channel.kind, "sha256": m.sha256, "template": m.template}, at=now)
        for invoice_id, (facts, m) in zip(ids, made, strict=True)]
    record_many(session, audits)
    run.counts["withdrawn"] += withdrawn
    run.counts["made"] += len(made)
    run.made.extend(m.document_id for _facts, m in made)
