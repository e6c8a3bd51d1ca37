"""What deciding a statement's lines needs to know, read from the database in bulk (:class:`FactsReader`).

For the new lines of a statement: the payment references their numbers name
in the hub's financial system, the collections their end-to-end ids name and
the payment blocks their batch credits name, the references of both with their
debt lines, and for the debits that may undo something, the payments standing
on those references and the credits a return or reversal may take back. The
numbers and end-to-end ids are staged in temporary tables and joined (one
query each, not an IN-list per thousand); what an earlier statement of the
file left in the facts is kept, never read again.

Also here: the references an unmatched credit's payer may have meant
(:func:`candidates`), for the control list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

from sqlalchemy import String, and_, or_, select
from sqlalchemy.orm import Session

from include.finance.bulk import in_ids, restage, staged, stream_records
from include.finance.models import (
    BankEntry,
    BankHub,
    Collection,
    CollectionRun,
    DebtLine,
    EndUser,
    FinancialSystem,
    Mandate,
    Payment,
    PaymentAllocation,
    PaymentReference,
    PaymentReferenceLine,
    in_cents,
)
from include.finance.money import from_cents
from include.finance.names import orderings
from include.finance.payments import OpenLine
from include.finance.reference_numbers import display_reference
from include.finance.statuses import OPEN_REFERENCE, SENT_RUN
from include.sepa.camt import EntryLine, Statement
from include.sepa.camt_decision import (
    DIRECT_DEBIT_FAMILIES,
    Block,
    Collection as CollectionFacts,
    Credit,
    Facts,
    Hub,
    Reference,
    StatementFacts,
    StoredPayment,
    batch_key,
    books_a_batch,
    references_in,
)

CANDIDATES = 5  # references suggested for an unmatched credit


class FactsReader:
    """The :class:`Facts` of one file, read statement by statement, with what each reference and debt line held
    was before the file (for the writes and their audit rows)."""

    def __init__(self, session: Session, file_name: str, undoable: bool, stage: ExitStack) -> None:
        self.session, self.file_name = session, file_name
        self.facts = Facts(StatementFacts("", "", None, False), undoable=undoable)
        self.references_before: dict[int, tuple[str, Decimal]] = {}  # reference id -> (status, open amount)
        self.lines: dict[int, OpenLine] = {}  # debt lines of the held references, shared between references
        self.lines_before: dict[int, Decimal] = {}
        self.stored_held: set[int] = set()  # references whose standing payments are held
        self.credits_held: set[int] = set()  # stored payments held as credits a return may take back
        self.numbers = stage.enter_context(staged(session, "camt_number", {"number": String(40)}))
        self.named = stage.enter_context(staged(session, "camt_end_to_end_id", {"end_to_end_id": String(100)}))

    def read(self, st: Statement, hub: BankHub | None, foreign: bool, lines: list[EntryLine]) -> None:
        """Make ``self.facts`` know what deciding the statement's new ``lines`` needs, beside what the statements
        before left in it."""
        facts = self.facts
        hub_facts = None
        if hub is not None:
            hub_facts = Hub(hub.id, hub.financial_system_id, frozenset((hub.fatal_return_reasons or "").split()))
        facts.statement = StatementFacts(st.account, f"{self.file_name} {st.statement_id}", hub_facts, foreign)
        facts.numbers, facts.by_number, facts.blocks = {}, {}, {}
        if hub is None or foreign or not lines:
            return
        facts.blocks = self._blocks(hub, [line for line in lines if books_a_batch(line)])
        for line in lines:
            numbers = references_in(line)
            if numbers:
                facts.numbers[line.entry_index, line.tx_index] = numbers
        facts.by_number = self._references_by_number(hub.financial_system_id)
        named = {(line.end_to_end_id,) for line in lines if line.end_to_end_id}
        if named:
            wanted = restage(self.session, self.named, named)
            self._collections(Collection.end_to_end_id.in_(select(wanted.c.end_to_end_id)))
        # Debits and reversals may undo: a collection named by its end-to-end id, else a credit booked earlier.
        undoing = [line for line in lines if not line.credit or line.reversal]
        returned = {c.reference_id for line in undoing if (c := facts.collection(line.end_to_end_id)) is not None}
        credits = self._credits_taken_back(st.account, [
            line for line in undoing if not line.credit and (line.return_reason is not None or line.reversal)
            and facts.collection(line.end_to_end_id) is None
        ])
        self._hold({*facts.by_number.values(), *(c.reference_id for c in facts.collections.values()),
                    *(reference_id for _, reference_id, _ in credits)})
        self._stored_payments(returned | {reference_id for _, reference_id, _ in credits})
        for keys, reference_id, (payment_id, booked_on) in credits:
            payment = next((p for p in facts.references[reference_id].stored if p.id == payment_id), None)
            if payment is None or payment_id in self.credits_held:
                continue
            self.credits_held.add(payment_id)
            credit = Credit(payment, booked_on)
            by_e2e, by_number = keys
            if by_e2e is not None:
                facts.credits_by_end_to_end_id.setdefault(by_e2e, []).append(credit)
            if by_number is not None:
                facts.credits_by_number.setdefault(by_number, []).append(credit)

    def _references_by_number(self, system_id: int) -> dict[str, int]:
        """Reference number -> id, for every number the lines carry, in the hub's financial system."""
        wanted = restage(self.session, self.numbers, {(n,) for found in self.facts.numbers.values() for n in found})
        return {row.reference_number: row.id for row in stream_records(self.session, (
            select(PaymentReference.reference_number, PaymentReference.id)
            .where(PaymentReference.financial_system_id == system_id,
                   PaymentReference.reference_number.in_(select(wanted.c.number)))
        ))}

    def _collections(self, *where: Any) -> list[CollectionFacts]:
        """The collections selected by ``where``, in id order, held once each (a collection this file changed
        keeps its state), with their mandates' blocks."""
        facts = self.facts
        found = []
        for row in self.session.execute(
            select(Collection.id, Collection.end_to_end_id, Collection.payment_reference_id, Collection.mandate_id,
                   Collection.run_id, Collection.amount, Collection.status, Mandate.blocked_reason)
            .outerjoin(Mandate, Mandate.id == Collection.mandate_id).where(*where).order_by(Collection.id)
        ):
            held = facts.collections.get(row.id)
            if held is None:
                held = facts.collections[row.id] = CollectionFacts(
                    row.id, row.end_to_end_id, row.payment_reference_id, row.mandate_id, row.run_id, row.amount,
                    row.status)
                facts.by_end_to_end_id[row.end_to_end_id] = row.id
                if row.blocked_reason:
                    facts.blocked_mandates.add(row.mandate_id)
            found.append(held)
        return found

    def _blocks(self, hub: BankHub, lines: list[EntryLine]) -> dict[str, Block]:
        """Our collection runs' payment blocks (``fj:SYS:n/FRST``) or whole runs (``fj:SYS:n``) that batch
        credits name, on this statement's hub, by the name the credit gives."""
        wanted: dict[str, tuple[str, str | None]] = {}  # batch key -> (run id, sequence type or None: the whole run)
        for line in lines:
            key = batch_key(line)
            if line.batch_payment_id and "/" in line.batch_payment_id:
                run, sequence_type = line.batch_payment_id.rsplit("/", 1)
                wanted[key] = (run, sequence_type)
            elif line.batch_message_id:
                wanted[key] = (line.batch_message_id, None)
        if not wanted:
            return {}
        runs = {loi: run_id for run_id, loi in self.session.execute(
            select(CollectionRun.id, CollectionRun.loi).where(
                CollectionRun.hub_id == hub.id, CollectionRun.loi.in_(sorted({run for run, _ in wanted.values()})),
                CollectionRun.status.in_(SENT_RUN),  # a run never sent cannot have been credited
            ))}
        blocks: dict[str, Block] = {}
        for key, (run, sequence_type) in wanted.items():
            run_id = runs.get(run)
            if run_id is None:
                continue
            in_block = [Collection.run_id == run_id]
            if sequence_type is not None:
                in_block.append(Collection.sequence_type == sequence_type)
            found = self._collections(*in_block)
            if found:
                blocks[key] = Block(key, run, tuple(c.id for c in found))
        return blocks

    def _credits_taken_back(self, account: str, lines: list[EntryLine]) -> list[tuple[Any, int, tuple[int, Any]]]:
        """Stored credits on ``account`` a return or reversal among ``lines`` may take back: of the same amount,
        with its end-to-end id or carrying one of its reference numbers; each with its keys (by end-to-end id,
        by communication), its reference and (payment id, booking date)."""
        if not lines:
            return []
        e2e = {(line.amount, line.end_to_end_id) for line in lines if line.end_to_end_id}
        numbers = {(line.amount, n) for line in lines for n in self.facts.numbers_in(line)}
        undone = select(Payment.reverses_payment_id).where(Payment.reverses_payment_id.is_not(None))
        query = (
            select(Payment.id, Payment.payment_reference_id, BankEntry.amount, BankEntry.end_to_end_id,
                   BankEntry.reference, BankEntry.booking_date)
            .join(BankEntry, BankEntry.id == Payment.bank_entry_id)
            .where(BankEntry.account == account, BankEntry.credit.is_(True), Payment.amount > 0,
                   ~Payment.id.in_(undone),
                   BankEntry.amount.in_(sorted({amount for amount, _ in e2e | numbers})),
                   or_(BankEntry.end_to_end_id.in_(sorted({e for _, e in e2e})),
                       BankEntry.reference.in_(sorted({n for _, n in numbers}))))
            .order_by(Payment.id)
        )
        found = []
        for row in self.session.execute(query):
            by_e2e = (account, row.amount, row.end_to_end_id) if (row.amount, row.end_to_end_id) in e2e else None
            by_number = (account, row.amount, row.reference) if (row.amount, row.reference) in numbers else None
            if by_e2e or by_number:
                found.append(((by_e2e, by_number), row.payment_reference_id, (row.id, row.booking_date)))
        return found

    def _hold(self, reference_ids: Iterable[int]) -> None:
        """Read the references (with their debt lines) not held yet, as they are before this file."""
        facts = self.facts
        wanted = sorted(set(reference_ids) - facts.references.keys())
        if not wanted:
            return
        query = (
            select(PaymentReference.id, PaymentReference.loi, PaymentReference.reference_number,
                   PaymentReference.status,
                   in_cents(PaymentReference.open_amount).label("open_cents"),
                   FinancialSystem.partial_payment_strategy.label("strategy"),
                   DebtLine.id.label("line_id"), in_cents(DebtLine.open_amount).label("line_open_cents"))
            .join(FinancialSystem, FinancialSystem.id == PaymentReference.financial_system_id)
            .outerjoin(PaymentReferenceLine, PaymentReferenceLine.payment_reference_id == PaymentReference.id)
            .outerjoin(DebtLine, DebtLine.id == PaymentReferenceLine.debt_line_id)
            .where(in_ids(self.session, PaymentReference.id, wanted))
            .order_by(PaymentReference.id, DebtLine.created_on, DebtLine.id)  # oldest first, as the ledger
        )
        reference = None
        for row in stream_records(self.session, query):
            if reference is None or reference.id != row.id:
                open_amount = from_cents(row.open_cents)
                reference = facts.references[row.id] = Reference(
                    row.id, row.loi, row.reference_number, row.status, open_amount, row.strategy or "first_transaction")
                self.references_before[row.id] = (row.status, open_amount)
            if row.line_id is not None:
                line = self.lines.get(row.line_id)
                if line is None:
                    line = self.lines[row.line_id] = OpenLine(row.line_id, from_cents(row.line_open_cents))
                    self.lines_before[row.line_id] = line.open_amount
                reference.lines.append(line)

    def _stored_payments(self, reference_ids: Iterable[int]) -> None:
        """The standing payments of references a return may undo (booked before this file, not undone)."""
        wanted = sorted(set(reference_ids) - self.stored_held)
        if not wanted:
            return
        self.stored_held.update(wanted)
        undone = select(Payment.reverses_payment_id).where(Payment.reverses_payment_id.is_not(None))
        # Booked by the reference's collection: the run's confirmation, a credit naming the collection, a batch
        # credit (an entry that books several references and names none), or a direct-debit credit.
        of_collection = or_(
            Payment.source == "collection_confirm",
            BankEntry.collection_id.is_not(None),
            and_(Payment.source == "bank_statement", BankEntry.id.is_not(None), BankEntry.payment_reference_id.is_(None)),
            *(BankEntry.bank_tx_code.startswith(family) for family in DIRECT_DEBIT_FAMILIES),
        )
        payments = self.session.execute(
            select(Payment.id, Payment.payment_reference_id, Payment.amount, of_collection.label("of_collection"))
            .outerjoin(BankEntry, BankEntry.id == Payment.bank_entry_id)
            .where(Payment.payment_reference_id.in_(wanted), Payment.amount > 0, ~Payment.id.in_(undone))
            .order_by(Payment.id)
        ).all()
        shares: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
        for allocation in self.session.execute(
            select(PaymentAllocation.payment_id, PaymentAllocation.debt_line_id, PaymentAllocation.amount)
            .where(PaymentAllocation.payment_id.in_([p.id for p in payments])).order_by(PaymentAllocation.id)
        ):
            shares[allocation.payment_id].append((allocation.debt_line_id, allocation.amount))
        for payment in payments:
            self.facts.references[payment.payment_reference_id].stored.append(
                StoredPayment(payment.id, payment.payment_reference_id, payment.amount, tuple(shares[payment.id]),
                              bool(payment.of_collection)))


def candidates(session: Session, system: int, line: EntryLine) -> list[dict[str, str]]:
    """Open references of financial system ``system`` the payer of an unmatched credit may have meant: by the
    payer's account (its mandates and earlier payments), by amount, by name."""
    found: dict[int, str] = {}
    # Only equality conditions: next to "open_amount > 0" SQLite scans the (system, open amount) index
    # range instead of looking the payer or the amount up; a still open reference has an amount left.
    open_refs = select(PaymentReference.id).where(
        PaymentReference.financial_system_id == system,
        PaymentReference.status.in_(OPEN_REFERENCE),
    )

    def add(refs: Any, why: str) -> None:
        for ref_id in session.scalars(refs.limit(CANDIDATES)):
            found.setdefault(ref_id, why)

    users: set[int] = set()
    if line.counterparty_iban:
        users.update(session.scalars(select(Mandate.end_user_id).where(Mandate.debtor_iban == line.counterparty_iban)))
        users.update(session.scalars(
            select(PaymentReference.end_user_id).join(BankEntry, BankEntry.payment_reference_id == PaymentReference.id)
            .where(BankEntry.counterparty_iban == line.counterparty_iban)
        ))
    if users:
        add(open_refs.where(PaymentReference.end_user_id.in_(users)), "account of the payer")
    add(open_refs.where(PaymentReference.open_amount == line.amount), "same amount")
    keys = orderings(line.counterparty_name)
    if keys and len(found) < CANDIDATES:
        named = session.scalars(select(EndUser.id).where(EndUser.name_key.in_(keys)).limit(CANDIDATES)).all()
        if named:
            add(open_refs.where(PaymentReference.end_user_id.in_(named)), "name of the payer")
    rows = session.execute(
        select(PaymentReference.id, PaymentReference.loi, PaymentReference.reference_number,
               PaymentReference.open_amount)
        .where(PaymentReference.id.in_(list(found)), PaymentReference.open_amount > 0)
    ).all()
    return [
        {"reference": row.loi, "communication": display_reference(row.reference_number) if row.reference_number else "",
         "open_amount": str(row.open_amount), "why": found[row.id]}
        for row in rows[:CANDIDATES]
    ]

