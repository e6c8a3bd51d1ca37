"""Making payment references by hand, sealing and unsealing them (seed 2.3.1), and their transaction costs.

**Create** ("Nieuw/bewerk betalingskenmerk"): a type and an end user's open
debt lines of one financial system — lines with something left to pay, in no
open payment reference, not taken back — chosen by id or by a transaction-code
pattern (``LID``, ``BOETE*``). The reference is numbered as its type says
(:mod:`include.finance.numbering`), holds the lines' open amounts, and starts
as a draft; it may be sealed at once ("Maak op (en verzegel)").

**Seal**: draft → sealed. Only a sealed reference gets an invoice and can be
collected. When the type names a transaction cost (seed 2.5.2 ``transcost``)
and the financial system has a tariff for that code, sealing adds one debt
line of that code and amount to the reference — once per reference, however
often it is unsealed and sealed again (``debt_line.cost_of_reference_id`` is
unique).

**Unseal** ("ontdooien"): sealed → draft, to edit it. Refused for a paid
reference and for one being collected: a collection of it (not returned or
cancelled) is in a run, ready or sent — a ready run's file would still carry
it, and the bank holds a sent one. Unsealing withdraws the reference's
current invoice (seed 2.3.1: the link to the document goes).

**Transaction costs of deleted or expired references** are taken back when
the ledger releases them (:func:`include.finance.payments.reverse_transaction_costs`).

Everything happens in the caller's transaction and is audited; a refusal
raises :class:`~include.errors.InnenError` with a message for people and
changes nothing. Sealing a sealed reference, or unsealing a draft, is a no-op,
so a rerun does no harm.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.errors import InnenError
from include.finance.audit import audit_row, record_many
from include.finance.db import hold_ledger
from include.finance.models import (
    OPEN_REFERENCE_STATUSES,
    Collection,
    CollectionRun,
    DebtLine,
    EndUser,
    FinancialSystem,
    PaymentReference,
    PaymentReferenceLine,
    PaymentReferenceType,
    TransactionCost,
)
from include.finance.money import ZERO
from include.finance.numbering import reference_numbers
from include.finance.statuses import SETTLED_COLLECTION, ReferenceStatus
from include.invoices.withdrawal import withdraw_current
from include.runtime import brussels_day
from include.sepa.transaction_codes import matcher

log = logging.getLogger(__name__)

ID_BATCH = 5_000
# A collection that came back, or was cancelled, no longer ties its reference to the bank's file.
SETTLED_COLLECTIONS = SETTLED_COLLECTION
UNSEAL_REASON = "unsealed"


def _day(now: datetime) -> date:
    return brussels_day(now)  # a naive time is SQLite's UTC, not a Brussels wall-clock time


# -- create -------------------------------------------------------------------------------------------


def create_reference(
    session: Session,
    *,
    end_user: str,
    type_code: str,
    financial_system: str | None = None,
    debt_line_ids: Sequence[int] | None = None,
    pattern: str | None = None,
    due_date: date | None = None,
    description: str | None = None,
    seal: bool,
    actor: str,
    now: datetime,
) -> PaymentReference:
    """A new payment reference over ``end_user``'s open debt lines (see the module docstring).

    ``end_user`` is the e-loi; ``type_code`` the payment reference type;
    ``financial_system`` a system code, or None for the system of the chosen
    lines. Give ``debt_line_ids`` or ``pattern`` (one or more transaction-code
    patterns, comma-separated; a ``*`` at the end matches a prefix), not both.
    With ``seal`` the reference is sealed at once (:func:`seal`).
    """
    hold_ledger(session)  # the debt lines it takes, and their open amounts, change under the ledger only
    user = session.scalars(select(EndUser).where(EndUser.eloi == (end_user or "").strip())).one_or_none()
    if user is None:
        raise InnenError(f"end user {end_user!r} does not exist")
    type_ = session.scalars(
        select(PaymentReferenceType).where(PaymentReferenceType.code == (type_code or "").strip())
    ).one_or_none()
    if type_ is None:
        raise InnenError(f"payment reference type {type_code!r} does not exist")
    system = None
    if financial_system and financial_system.strip():
        system = session.scalars(
            select(FinancialSystem).where(FinancialSystem.code == financial_system.strip())
        ).one_or_none()
        if system is None:
            raise InnenError(f"financial system {financial_system!r} does not exist")
    ids = list(dict.fromkeys(int(line_id) for line_id in debt_line_ids or ()))
    patterns = [p.strip() for p in (pattern or "").split(",") if p.strip()]
    if ids and patterns:
        raise InnenError("give either the debt lines (their ids) or a transaction-code pattern, not both")
    if not ids and not patterns:
        raise InnenError("choose the debt for the payment reference: debt line ids, or a transaction-code pattern "
                         "such as BOETE*")
    codes = dict(session.execute(select(FinancialSystem.id, FinancialSystem.code)).all())
    if ids:
        lines = _chosen_lines(session, user, system, ids, codes)
    else:
        lines = _matching_lines(session, user, system, patterns)
    systems: defaultdict[int, list[int]] = defaultdict(list)
    for line in lines:
        systems[line.financial_system_id].append(line.id)
    if len(systems) > 1:
        spread = "; ".join(
            f"{codes[sid]}: debt line {', '.join(map(str, line_ids))}" for sid, line_ids in sorted(systems.items())
        )
        raise InnenError(f"the debt lies in {len(systems)} financial systems ({spread}): a payment reference holds the "
                         "debt of one financial system; choose the lines of one, or name it")
    system_id = next(iter(systems))

    numbers = reference_numbers(session, [(system_id, type_.id)])[0]
    amount = sum((line.open_amount for line in lines), ZERO)
    reference = PaymentReference(
        loi=numbers["loi"], financial_system_id=system_id, type_id=type_.id, end_user_id=user.id,
        status=ReferenceStatus.DRAFT, amount=amount, open_amount=amount, reference_number=numbers["reference_number"],
        invoice_number=numbers["invoice_number"], due_date=due_date, description=description or None, created_at=now,
    )
    session.add(reference)
    session.flush()
    for line in lines:
        line.payment_reference_id = reference.id
        session.add(PaymentReferenceLine(payment_reference_id=reference.id, debt_line_id=line.id,
                                         transaction_code=line.transaction_code, amount=line.open_amount))
    session.flush()
    record_many(session, [audit_row(
        "payment_reference", reference.id, "created", actor,
        after={
            "loi": reference.loi, "status": ReferenceStatus.DRAFT, "type": type_.code, "end_user": user.eloi,
            "amount": amount, "reference_number": reference.reference_number,
            "invoice_number": reference.invoice_number, "due_date": due_date,
            "debt_line_ids": [line.id for line in lines],
        },
        at=now,
    )])
    if seal:
        _seal(session, [reference.id], actor, now)
    return reference


def _chosen_lines(
    session: Session, user: EndUser, system: FinancialSystem | None, ids: list[int], codes: dict[int, str]
) -> list[DebtLine]:
    """The lines of ``ids``, each checked: the user's, open, in no open reference, in ``system`` if given."""
    found = {
        line.id: line
        for line in session.scalars(
            select(DebtLine).where(DebtLine.id.in_(ids)).order_by(DebtLine.id).with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    holders = {
        ref_id: (loi, status)
        for ref_id, loi, status in session.execute(
            select(PaymentReference.id, PaymentReference.loi, PaymentReference.status).where(
                PaymentReference.id.in_(sorted({line.payment_reference_id for line in found.values()} - {None}))
            )
        )
    }
    problems = []
    for line_id in ids:
        line = found.get(line_id)
        if line is None:
            problems.append(f"debt line {line_id} does not exist")
            continue
        name = f"debt line {line_id} ({line.transaction_code}, {line.open_amount})"
        if line.end_user_id != user.id:
            problems.append(f"debt line {line_id} is not a debt of {user.eloi}")
        elif line.reversed_at is not None:
            problems.append(f"{name} was taken back on {_day(line.reversed_at)}")
        elif line.payment_reference_id is not None:
            loi, status = holders.get(line.payment_reference_id, ("?", "?"))
            problems.append(f"{name} is already in payment reference {loi} ({status})")
        elif line.open_amount <= 0:
            problems.append(f"{name} has nothing left to pay")
        elif system is not None and line.financial_system_id != system.id:
            problems.append(f"{name} is in financial system {codes[line.financial_system_id]}, not {system.code}")
    if problems:
        raise InnenError("no payment reference made: " + "; ".join(problems))
    return [found[line_id] for line_id in sorted(ids)]


def _matching_lines(session: Session, user: EndUser, system: FinancialSystem | None, patterns: list[str]) -> list[DebtLine]:
    """The user's open lines in no open reference whose transaction code matches ``patterns``, oldest first."""
    query = select(DebtLine).where(
        DebtLine.end_user_id == user.id,
        DebtLine.payment_reference_id.is_(None),
        DebtLine.open_amount > 0,
        DebtLine.reversed_at.is_(None),
    )
    if system is not None:
        query = query.where(DebtLine.financial_system_id == system.id)
    matches = matcher(patterns)
    query = query.order_by(DebtLine.id).with_for_update().execution_options(populate_existing=True)
    lines = [line for line in session.scalars(query) if matches(line.transaction_code)]
    if not lines:
        where = f" in financial system {system.code}" if system is not None else ""
        raise InnenError(f"{user.eloi} has no open debt{where} matching {', '.join(patterns)} that is in no open "
                         "payment reference: nothing to make a payment reference of")
    return lines


# -- seal and unseal ----------------------------------------------------------------------------------


def _references(session: Session, reference_ids: Iterable[int]) -> list[PaymentReference]:
    """The references of ``reference_ids``, locked for this transaction; a missing one is refused."""
    hold_ledger(session)  # sealing adds a transaction cost to the open amount a booking reads
    ids = sorted(set(reference_ids))
    if not ids:
        raise InnenError("name at least one payment reference")
    found: list[PaymentReference] = []
    for start in range(0, len(ids), ID_BATCH):
        found.extend(session.scalars(
            select(PaymentReference).where(PaymentReference.id.in_(ids[start : start + ID_BATCH]))
            .order_by(PaymentReference.id).with_for_update().execution_options(populate_existing=True)
        ))
    missing = sorted(set(ids) - {ref.id for ref in found})
    if missing:
        raise InnenError(f"payment reference id {', '.join(map(str, missing))} does not exist")
    return found


def seal(session: Session, reference_ids: Iterable[int], actor: str, now: datetime) -> list[str]:
    """Seal the draft references of ``reference_ids`` (adding their transaction cost); returns their lois.

    A sealed one is left as it is; a paid, deleted or expired one is refused (nothing is sealed).
    """
    references = _references(session, reference_ids)
    refused = [f"{ref.loi} is {ref.status}: only a draft payment reference can be sealed"
               for ref in references if ref.status not in OPEN_REFERENCE_STATUSES]
    if refused:
        raise InnenError("nothing sealed: " + "; ".join(refused))
    audits: list[dict[str, Any]] = []
    sealed = []
    for ref in references:
        if ref.status != ReferenceStatus.DRAFT:
            continue
        ref.status, ref.sealed_at = ReferenceStatus.SEALED, now
        audits.append(audit_row("payment_reference", ref.id, "sealed", actor, before={"status": ReferenceStatus.DRAFT},
                                after={"status": ReferenceStatus.SEALED, "sealed_at": now}, at=now))
        cost = _add_transaction_cost(session, ref, actor, now)
        if cost is not None:
            audits.append(cost)
        sealed.append(ref.loi)
    session.flush()
    record_many(session, audits)
    return sealed


_seal = seal  # for create_reference, whose ``seal`` argument hides the function


def direct_print_ids(session: Session, lois: Iterable[str]) -> list[int]:
    """The ids of the sealed references of ``lois`` whose type prints at once (seed 2.5.2 ``direct``)."""
    wanted = sorted(set(lois))
    found: list[int] = []
    for start in range(0, len(wanted), ID_BATCH):
        found.extend(session.scalars(
            select(PaymentReference.id)
            .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(PaymentReference.loi.in_(wanted[start : start + ID_BATCH]),
                   PaymentReference.status == ReferenceStatus.SEALED, PaymentReferenceType.direct_print.is_(True))
        ))
    return sorted(found)


def _add_transaction_cost(session: Session, ref: PaymentReference, actor: str, now: datetime) -> dict[str, Any] | None:
    """The type's transaction cost as a debt line of ``ref``, unless it has one; the audit row, or None."""
    code = session.scalar(
        select(PaymentReferenceType.transaction_cost_code).where(PaymentReferenceType.id == ref.type_id)
    )
    if not code:
        return None
    if session.scalar(select(DebtLine.id).where(DebtLine.cost_of_reference_id == ref.id)) is not None:
        return None  # added by an earlier sealing: once per reference
    tariff = session.scalars(
        select(TransactionCost).where(TransactionCost.financial_system_id == ref.financial_system_id,
                                      TransactionCost.transaction_code == code)
    ).one_or_none()
    if tariff is None:
        log.warning("%s: its type names transaction cost %s, which has no tariff in its financial system: "
                    "no cost added", ref.loi, code)
        return None
    line = DebtLine(
        financial_system_id=ref.financial_system_id, end_user_id=ref.end_user_id, transaction_code=code,
        description=tariff.description, amount=tariff.amount, open_amount=tariff.amount, created_on=_day(now),
        payment_reference_id=ref.id, cost_of_reference_id=ref.id,
    )
    session.add(line)
    session.flush()
    session.add(PaymentReferenceLine(payment_reference_id=ref.id, debt_line_id=line.id, transaction_code=code,
                                     amount=tariff.amount))
    before = {"amount": ref.amount, "open_amount": ref.open_amount}
    ref.amount += tariff.amount
    ref.open_amount += tariff.amount
    return audit_row("payment_reference", ref.id, "transaction_cost_added", actor, before=before,
                     after={"amount": ref.amount, "open_amount": ref.open_amount, "debt_line_id": line.id,
                            "transaction_code": code, "cost": tariff.amount}, at=now)


def unseal(session: Session, reference_ids: Iterable[int], actor: str, now: datetime) -> list[str]:
    """Unseal ("ontdooien") the sealed references of ``reference_ids`` and withdraw their invoices; returns their lois.

    A draft is left as it is. Refused, for all of them, when one is paid, deleted or expired, or is being
    collected (a live collection in a run of any status).
    """
    references = _references(session, reference_ids)
    at_the_bank = {
        ref_id: (loi, status)
        for ref_id, loi, status in session.execute(
            select(Collection.payment_reference_id, CollectionRun.loi, CollectionRun.status)
            .join(CollectionRun, CollectionRun.id == Collection.run_id)
            .where(Collection.payment_reference_id.in_([ref.id for ref in references]),
                   Collection.status.not_in(SETTLED_COLLECTIONS))
        )
    }
    refused = []
    for ref in references:
        if ref.status == ReferenceStatus.PAID:
            refused.append(f"{ref.loi} is paid: a paid payment reference cannot be unsealed")
        elif ref.status not in OPEN_REFERENCE_STATUSES:
            refused.append(f"{ref.loi} is {ref.status}: only a sealed payment reference can be unsealed")
        elif ref.status == ReferenceStatus.SEALED and ref.id in at_the_bank:
            run, run_status = at_the_bank[ref.id]
            refused.append(f"{ref.loi} is collected in run {run} ({run_status}): delete the run's references instead "
                           "(payment_reference_delete)")
    if refused:
        raise InnenError("nothing unsealed: " + "; ".join(refused))
    audits: list[dict[str, Any]] = []
    unsealed = [ref for ref in references if ref.status == ReferenceStatus.SEALED]
    for ref in unsealed:
        audits.append(audit_row("payment_reference", ref.id, "unsealed", actor,
                                before={"status": ReferenceStatus.SEALED, "sealed_at": ref.sealed_at},
                                after={"status": ReferenceStatus.DRAFT},
                                at=now))
        ref.status, ref.sealed_at = ReferenceStatus.DRAFT, None
    session.flush()
    record_many(session, audits)
    if unsealed:
        withdraw_current(session, [ref.id for ref in unsealed], actor, now, reason=UNSEAL_REASON)
    return [ref.loi for ref in unsealed]
