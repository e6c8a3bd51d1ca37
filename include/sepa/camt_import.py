"""Importing bank statements: no statement twice, every new line decided, the decisions written in bulk.

One file is one transaction: either every statement in it is booked, or
(refused file, balance that does not add up, crash) nothing is. A statement
is known by account + statement id + electronic sequence number (+ currency
other than the euro, + page from the second of a statement sent in pages); the
same statement again adds nothing. Entries are known per account by the bank's
reference for the transaction (``TxDtls/Refs/AcctSvcrRef``), else the
entry's (``Ntry/AcctSvcrRef`` + position in the batch), either with its rank
when the statement repeats it on several lines, else a fingerprint
(booking and value date, direction, amount, counterparty IBAN, end-to-end id,
references and text, entry reference, position in the batch, and how many
identical entries came before it in the statement); so overlapping
statements and copies (``CpyDplctInd`` DUPL/CODU) add only what is new.

What each new line does is decided by :func:`include.sepa.camt_decision.decide`
(matching, payments, batch credits, returns, reversals, the control list).
This module gathers the facts the statement's lines need, in a few joins
against a staged copy of what the file names (reference numbers, end-to-end
ids, entry keys), and writes the decisions in bulk: entries and control-list
items per statement; payments, allocations, references, debt lines and their
audit rows once for the file, computed by the database from staged rows.
An exported run that the file's credits leave with no collection waiting is
confirmed, as by hand.

Everything that needs a person lands on the control list of its statement.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import BigInteger, Integer, String, case, cast, func, insert, literal, null, select
from sqlalchemy.orm import Session

from include.files import sha256_of
from include.finance.audit import audit_row, record_many
from include.finance.bulk import (
    as_json,
    copy_tuples,
    id_reserver,
    reserve_ids,
    restage,
    staged,
    update_by_id,
    update_from,
)
from include.finance.db import hold_ledger
from include.finance.models import (
    AuditLog,
    BankEntry,
    BankHub,
    BankStatement,
    Collection,
    CollectionRun,
    ControlListItem,
    DebtLine,
    Mandate,
    Money,
    Payment,
    PaymentAllocation,
    PaymentReference,
)
from include.finance.money import ZERO
from include.finance.payments import reverse_transaction_costs
from include.finance.statuses import BOOKED_OUTCOMES, WAITING_COLLECTION, ControlListKind, ReferenceStatus, RunStatus
from include.invoices.withdrawal import withdraw_current
from include.sepa.camt import RETURN_REASON_MAX, CamtFile, CamtRefused, EntryLine, Statement
from include.sepa.camt_decision import Booking, Decision, decide_all
from include.sepa.camt_facts import FactsReader, candidates
from include.storage import location, name_of

CANDIDATE_SEARCHES = 500  # unmatched entries per file for which we look for likely payers
CANDIDATES = 5
SOURCE = "bank_statement"

ENTRY_COLUMNS = (
    "id", "statement_id", "account", "entry_key", "entry_index", "tx_index", "amount", "credit", "reversal", "status",
    "booking_date", "value_date", "entry_ref", "account_servicer_ref", "end_to_end_id", "bank_tx_code",
    "counterparty_name", "counterparty_iban", "counterparty_bic", "reference", "remittance", "return_reason",
    "outcome", "payment_reference_id", "collection_id", "booked_amount",
)
ITEM_COLUMNS = ("statement_id", "bank_entry_id", "kind", "reason", "action", "amount", "details")
ENTRY_CHUNK = 10_000  # lines decided and written at a time
PAYMENT_STAGE = {
    "id": BigInteger(), "payment_reference_id": Integer(), "amount": Money(), "amount_text": String(),
    "bank_entry_id": Integer(), "reverses_payment_id": Integer(), "note": String(), "note_json": String(),
}
ALLOCATION_STAGE = {"seq": Integer(), "payment_id": BigInteger(), "debt_line_id": Integer(), "amount": Money()}
# A payment's note is made of the file's name and what the bank wrote (statement id, end-to-end id, return reason,
# batch name): it is cut to what its column holds (the whole story stays on the entry and the control list).
NOTE_MAX = Payment.__table__.c.note.type.length


def entry_keys(statement: Statement) -> list[str]:
    """The identity of each line of ``statement`` on its account (see the module docstring)."""
    keys = []
    seen: Counter[str] = Counter()
    for line in statement.lines:
        if line.tx_servicer_ref or line.entry_servicer_ref:
            # A bank may repeat one reference on several lines (the batch's on each of its transactions): the
            # second and later take their rank, as two lines cannot share a key.
            key = (f"tx:{line.tx_servicer_ref}" if line.tx_servicer_ref
                   else f"ntry:{line.entry_servicer_ref}:{line.tx_index}")
            seen[key] += 1
            keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
        else:
            facts = "|".join(
                str(value or "")
                for value in (
                    line.booking_date, line.value_date, line.credit, line.amount, line.counterparty_iban,
                    line.end_to_end_id, ";".join(line.structured_refs), line.unstructured, line.entry_ref,
                    line.tx_index, line.reversal,
                )
            )
            digest = hashlib.sha256(facts.encode()).hexdigest()[:32]
            seen[digest] += 1
            keys.append(f"fp:{digest}:{seen[digest]}")
    return keys


@dataclass
class StatementResult:
    statement: str
    account: str
    status: str  # imported, already_imported
    lines: int = 0
    new_lines: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    booked: str = "0.00"
    control_items: int = 0
    statement_db_id: int | None = None


@dataclass
class ImportResult:
    file: str
    sha256: str
    status: str  # imported, already_imported
    statements: list[StatementResult] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.status == "already_imported":
            return f"{self.file}: already imported ({len(self.statements)} statement(s)), nothing new"
        new = sum(s.new_lines for s in self.statements)
        return f"{self.file}: {len(self.statements)} statement(s), {new} new line(s)"


def check_balances(camt: CamtFile) -> None:
    """Opening balance + booked entries must give the closing balance, for every statement that has both."""
    name = name_of(camt.path)
    for statement in camt.statements:
        if statement.opening_balance is None or statement.closing_balance is None:
            continue
        expected = statement.opening_balance + statement.booked_movement()
        if expected != statement.closing_balance:
            raise CamtRefused(
                name,
                f"opening balance {statement.opening_balance} + booked entries {statement.booked_movement()} = "
                f"{expected}, but the closing balance is {statement.closing_balance}",
                statement=statement.statement_id,
                element="Bal[CLBD]",
            )


def import_statements(session: Session, camt: CamtFile, actor: str, *, now: datetime | None = None) -> ImportResult:
    """Book every statement of a parsed file in ``session`` (the caller's transaction); refuses bad balances first."""
    check_balances(camt)
    sha256 = sha256_of(location(camt.path))
    hold_ledger(session)  # before the first read: the facts a line is decided on must be committed money
    return _Import(session, camt, sha256, actor, now or datetime.now(timezone.utc)).run()


def outcome_counts(results: Iterable[StatementResult]) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for result in results:
        for outcome, count in result.outcomes.items():
            total[outcome] += count
    return dict(total)


def _identity(statement: Statement) -> str:
    """Account, statement id and electronic sequence number; the currency, when not the euro (one IBAN can carry
    several currency accounts, each with its statement, which may share id and number); and the page, from the
    second (each page of a statement in pages carries the statement's id and number). Without them, the second
    statement or page would be taken for the first, its entries never booked."""
    sequence = statement.electronic_seq if statement.electronic_seq is not None else ""
    currency = f"|{statement.currency}" if statement.currency not in (None, "EUR") else ""
    page = f"|page {statement.page}" if statement.page is not None and statement.page > 1 else ""
    return f"{statement.account}|{statement.statement_id}|{sequence}{currency}{page}"


@lru_cache(maxsize=1024)
def _json_text(value: str) -> str:
    """``value`` as a JSON string, as the database's JSON serializer writes it."""
    return json.dumps(value, ensure_ascii=False)


def _item(statement_id: int, entry_id: int | None, kind: ControlListKind, reason: str, action: str,
          amount: Decimal | None, details: dict[str, Any] | None = None) -> tuple[Any, ...]:
    return statement_id, entry_id, kind, reason, action, amount, details


class _Import:
    """One file: per statement, its facts gathered and its lines decided, entries and items written; then the
    file's payments and everything they change, written together."""

    def __init__(self, session: Session, camt: CamtFile, sha256: str, actor: str, now: datetime) -> None:
        self.session, self.camt, self.sha256, self.actor, self.now = session, camt, sha256, actor, now
        self.file_name = name_of(camt.path)
        self.hubs = {
            (hub.creditor_iban or "").replace(" ", "").upper(): hub
            for hub in session.scalars(select(BankHub)) if hub.creditor_iban
        }
        self.undoable = any(not line.credit or line.reversal for st in camt.statements for line in st.lines)
        self.released: set[int] = set()  # references closed by a returned collection
        self.payment_ids: dict[Booking, int] = {}  # this file's bookings, for a reversal of one later in the file
        self.collection_updates: dict[int, dict[str, Any]] = {}
        self.mandate_updates: list[dict[str, Any]] = []
        self.audits: list[dict[str, Any]] = []
        self.candidate_searches = 0

    def run(self) -> ImportResult:
        result = ImportResult(self.file_name, self.sha256, "already_imported")
        session = self.session
        with ExitStack() as stage:
            self.reader = FactsReader(session, self.file_name, self.undoable, stage)
            self.facts = self.reader.facts
            self.keys = stage.enter_context(staged(session, "camt_entry_key", {"entry_key": String(200)}))
            # The file's payments and their allocations, staged as their lines are decided, written at the end.
            self.payments = stage.enter_context(staged(session, "camt_payment", PAYMENT_STAGE))
            self.allocations = stage.enter_context(staged(session, "camt_allocation", ALLOCATION_STAGE))
            self.next_payment_ids = id_reserver(session, Payment.__table__)
            self.allocation_count = 0
            for statement in self.camt.statements:
                outcome = self._statement(statement)
                result.statements.append(outcome)
                if outcome.status == "imported":
                    result.status = "imported"
            self._write_payments()
        self._write_references()
        self._write_debt_lines()
        self._release()
        update_by_id(session, Collection.__table__, list(self.collection_updates.values()))
        update_by_id(session, Mandate.__table__, self.mandate_updates)
        self._confirm_paid_runs()
        record_many(session, self.audits)
        return result

    # -- one statement -----------------------------------------------------------------------

    def _statement(self, st: Statement) -> StatementResult:
        session = self.session
        identity = _identity(st)
        result = StatementResult(st.statement_id, st.account, "already_imported", lines=len(st.lines))
        existing = session.scalar(select(BankStatement.id).where(BankStatement.identity == identity))
        if existing is not None:
            result.statement_db_id = existing
            return result
        hub = self.hubs.get(st.account_iban or "")
        keys = entry_keys(st)
        known = self._known_keys(st.account, keys)
        # Numbered per currency account: a dollar account's statements are not missing euro statements.
        previous_seq = session.scalar(
            select(func.max(BankStatement.electronic_seq)).where(
                BankStatement.account == st.account,
                func.coalesce(BankStatement.currency, "EUR") == (st.currency or "EUR"))
        )
        record = BankStatement(
            identity=identity, kind=st.kind, version=st.version, account=st.account, statement_id=st.statement_id,
            electronic_seq=st.electronic_seq, legal_seq=st.legal_seq, message_id=self.camt.message_id,
            created_on_bank=st.created_at, from_date=st.from_date, to_date=st.to_date, copy_indicator=st.copy,
            currency=st.currency, opening_balance=st.opening_balance, closing_balance=st.closing_balance,
            hub_id=hub.id if hub else None, file_name=self.file_name, file_sha256=self.sha256, entries=st.entries,
            new_lines=0, imported_at=self.now, imported_by=self.actor,
        )
        session.add(record)
        session.flush()
        result.status, result.statement_db_id = "imported", record.id
        new = [(line, key) for line, key in zip(st.lines, keys, strict=True) if key not in known]
        record.new_lines = result.new_lines = len(new)
        items: list[tuple[Any, ...]] = []
        if st.electronic_seq is not None and previous_seq is not None and st.electronic_seq > previous_seq + 1:
            items.append(_item(record.id, None, ControlListKind.SEQUENCE_GAP,
                               f"electronic sequence jumps from {previous_seq} to {st.electronic_seq}: "
                               f"statement(s) {previous_seq + 1}..{st.electronic_seq - 1} are missing",
                               "ask the bank for the missing statements and import them", None))
        # References and collections are in euro: a statement of another currency (one IBAN can carry several
        # currency accounts) is stored, never booked.
        foreign = hub is not None and bool(new) and (record.currency or "EUR").upper() != "EUR"
        if foreign:
            items.append(_item(record.id, None, ControlListKind.FOREIGN_CURRENCY,
                               f"statement {record.statement_id} is in {record.currency}, not in euro: none of its "
                               f"{len(new)} entries was booked", "book what concerns us by hand, in euro", None))
        self.reader.read(st, hub, foreign, [line for line, _ in new])
        ids = iter(reserve_ids(session, BankEntry.__table__, len(new)))
        outcomes: Counter[str] = Counter()
        booked = ZERO
        # A chunk of lines at a time decided and written (the unmatched ones' candidates see the entries of the
        # chunks before).
        for start in range(0, len(new), ENTRY_CHUNK):
            chunk = new[start : start + ENTRY_CHUNK]
            lines = [line for line, _ in chunk]
            entries: list[tuple[Any, ...]] = []
            paying: list[tuple[int, Decision]] = []
            for (line, key), decision in zip(chunk, decide_all(lines, self.facts), strict=True):
                entry_id = next(ids)
                outcomes[decision.outcome] += 1
                if decision.outcome in BOOKED_OUTCOMES:
                    booked += decision.booked or ZERO
                if decision.bookings or decision.reversals:
                    paying.append((entry_id, decision))
                self._changes(decision)
                if decision.item is not None:
                    item = decision.item
                    details = {"candidates": self._candidates(hub, line)} if item.candidates else item.details
                    items.append(_item(record.id, entry_id, item.kind, item.reason, item.action, item.amount,
                                       details))
                entries.append(_entry(record, entry_id, line, key, decision))
            copy_tuples(session, BankEntry.__table__, ENTRY_COLUMNS, entries)
            self._stage_payments(paying)
        copy_tuples(session, ControlListItem.__table__, ITEM_COLUMNS, items)
        result.outcomes = {str(outcome): count for outcome, count in sorted(outcomes.items())}
        result.booked = str(booked)
        result.control_items = len(items)
        self.audits.append(audit_row("bank_statement", record.id, "imported", self.actor,
                                     after={"identity": identity, "file": self.file_name, "new_lines": len(new),
                                            "outcomes": result.outcomes}, at=self.now))
        return result

    def _known_keys(self, account: str, keys: list[str]) -> set[str]:
        wanted = restage(self.session, self.keys, ((key,) for key in set(keys)))
        return set(self.session.scalars(
            select(BankEntry.entry_key).where(BankEntry.account == account,
                                              BankEntry.entry_key.in_(select(wanted.c.entry_key)))
        ))

    def _changes(self, decision: Decision) -> None:
        """What a decision changes beside payments and references: collections and mandates, with audit rows."""
        self.released.update(change.id for change in decision.references if change.released)
        for change in decision.collections:
            values = {"id": change.id, "status": change.status, "return_reason": change.reason}
            self.collection_updates[change.id] = values
            self.audits.append(audit_row("collection", change.id, change.status, self.actor,
                                         before={"status": change.before},
                                         after={"status": change.status, "return_reason": change.reason}, at=self.now))
        block = decision.mandate_block
        if block is not None:
            self.mandate_updates.append({"id": block.mandate_id, "blocked_reason": block.reason})
            self.audits.append(audit_row("mandate", block.mandate_id, "blocked", self.actor,
                                         before={"blocked_reason": None}, after={"blocked_reason": block.reason},
                                         at=self.now))

    def _candidates(self, hub: BankHub | None, line: EntryLine) -> list[dict[str, str]]:
        """The references the payer may have meant, for the first :data:`CANDIDATE_SEARCHES` of the file."""
        if hub is None or self.candidate_searches >= CANDIDATE_SEARCHES:
            return []
        self.candidate_searches += 1
        return candidates(self.session, hub.financial_system_id, line)

    # -- the file's payments and what they change ----------------------------------------------------

    def _stage_payments(self, paying: list[tuple[int, Decision]]) -> None:
        """Stage the payments and reversals of decisions (with their entry ids), and their allocations, in order."""
        payments = [(payment, entry_id) for entry_id, decision in paying
                    for payment in (*decision.bookings, *decision.reversals)]
        rows, allocations = [], []
        for (payment, entry_id), payment_id in zip(payments, self.next_payment_ids(len(payments)), strict=True):
            if isinstance(payment, Booking):
                if self.undoable:
                    self.payment_ids[payment] = payment_id
                amount, reverses, shares = payment.amount, None, payment.shares
            else:
                undone = payment.reverses
                amount = -payment.amount
                reverses = self.payment_ids[undone] if isinstance(undone, Booking) else undone.id
                shares = tuple((line_id, -share) for line_id, share in undone.shares)
            note = payment.note[:NOTE_MAX]
            rows.append((payment_id, payment.reference_id, amount, str(amount), entry_id, reverses, note,
                         _json_text(note)))
            for line_id, share in shares:
                self.allocation_count += 1
                allocations.append((self.allocation_count, payment_id, line_id, share))
        copy_tuples(self.session, self.payments, list(PAYMENT_STAGE), rows)
        copy_tuples(self.session, self.allocations, list(ALLOCATION_STAGE), allocations)

    def _write_payments(self) -> None:
        """The staged payments and allocations, and an audit row per payment (as the Ledger writes it:
        ``{"payment_reference_id": …, "amount": "…", …, "note": "…"}``), computed by the database."""
        session, s, a = self.session, self.payments.c, self.allocations.c
        session.execute(insert(Payment).from_select(
            ["id", "payment_reference_id", "amount", "source", "bank_entry_id", "reverses_payment_id", "booked_at",
             "booked_by", "note"],
            select(s.id, s.payment_reference_id, s.amount, literal(SOURCE), s.bank_entry_id, s.reverses_payment_id,
                   literal(self.now, Payment.booked_at.type), literal(self.actor), s.note).order_by(s.id),
        ))
        session.execute(insert(PaymentAllocation).from_select(
            ["payment_id", "debt_line_id", "amount"], select(a.payment_id, a.debt_line_id, a.amount).order_by(a.seq),
        ))
        after = (literal('{"payment_reference_id": ') + cast(s.payment_reference_id, String)
                 + literal(', "amount": "') + s.amount_text + literal(f'", "source": "{SOURCE}", "bank_entry_id": ')
                 + cast(s.bank_entry_id, String) + literal(', "reverses_payment_id": ')
                 + func.coalesce(cast(s.reverses_payment_id, String), literal("null")) + literal(', "note": ')
                 + s.note_json + literal("}"))
        self._audit_from("payment", s.id, case((s.amount < 0, literal("reversed")), else_=literal("booked")),
                         null(), after, self.payments, s.id)

    def _write_references(self) -> None:
        """The references the file changed: their new status and open amount, an audit row each (in the order
        they were first held)."""
        changed = []
        for order, reference in enumerate(self.facts.references.values()):
            before_status, before_open = self.reader.references_before[reference.id]
            if (reference.status, reference.open_amount) != (before_status, before_open):
                changed.append((reference.id, order, str(reference.status), reference.open_amount,
                                str(reference.open_amount), before_status, str(before_open)))
        if not changed:
            return
        with staged(self.session, "camt_reference", {
            "id": Integer(), "seq": Integer(), "status": String(), "open_amount": Money(), "open_text": String(),
            "before_status": String(), "before_text": String(),
        }, changed) as references:
            update_from(self.session, PaymentReference.__table__, references, ["status", "open_amount"])
            s = references.c

            def state(status: Any, amount: Any) -> Any:
                return literal('{"status": "') + status + literal('", "open_amount": "') + amount + literal('"}')

            action = case((s.status != s.before_status, s.status), else_=literal("open_amount_changed"))
            self._audit_from("payment_reference", s.id, action, state(s.before_status, s.before_text),
                             state(s.status, s.open_text), references, s.seq)

    def _write_debt_lines(self) -> None:
        before = self.reader.lines_before
        lines = [(line_id, line.open_amount) for line_id, line in self.reader.lines.items()
                 if line.open_amount != before[line_id]]
        if lines:
            with staged(self.session, "camt_debt_line", {"id": Integer(), "open_amount": Money()}, lines) as changed:
                update_from(self.session, DebtLine.__table__, changed, ["open_amount"])

    def _audit_from(self, entity: str, entity_id: Any, action: Any, before: Any, after: Any, source: Any,
                    order: Any) -> None:
        """One audit row per row of the staged ``source``, before and after given as JSON text."""
        session = self.session
        session.execute(insert(AuditLog).from_select(
            ["entity", "entity_id", "action", "before", "after", "actor", "at"],
            select(literal(entity), entity_id, action, as_json(session, before), as_json(session, after),
                   literal(self.actor), literal(self.now, AuditLog.at.type)).select_from(source).order_by(order),
        ))

    def _release(self) -> None:
        """Returned collections' references are closed: their debt lines are free, their transaction cost undone,
        their invoice (the direct-debit notice) withdrawn, as for any deleted reference."""
        released = sorted(self.released)
        if not released:
            return
        session = self.session
        freed: dict[int, list[int]] = defaultdict(list)
        for line_id, reference_id in session.execute(
            select(DebtLine.id, DebtLine.payment_reference_id).where(DebtLine.payment_reference_id.in_(released))
            .order_by(DebtLine.id)
        ):
            freed[reference_id].append(line_id)
        update_by_id(session, DebtLine.__table__,
                     [{"id": line_id, "payment_reference_id": None} for ids in freed.values() for line_id in ids])
        record_many(session, [audit_row("payment_reference", reference_id, "debt_released", self.actor,
                                        after={"debt_line_ids": line_ids}, at=self.now)
                              for reference_id, line_ids in freed.items()])
        reverse_transaction_costs(session, released, self.actor, self.now)
        withdraw_current(session, released, self.actor, self.now, reason=f"reference {ReferenceStatus.DELETED}")

    def _confirm_paid_runs(self) -> None:
        """An exported run that this file's credits left with no collection waiting is confirmed, as by hand."""
        for run in self.session.scalars(
            select(CollectionRun).where(CollectionRun.id.in_(sorted(self.facts.paid_runs)),
                                        CollectionRun.status == RunStatus.EXPORTED)
        ):
            waiting = self.session.scalar(
                select(func.count()).where(Collection.run_id == run.id, Collection.status.in_(WAITING_COLLECTION))
            )
            if waiting == 0:
                run.status = RunStatus.CONFIRMED
                self.audits.append(audit_row("collection_run", run.id, "confirmed", self.actor,
                                             before={"status": RunStatus.EXPORTED},
                                             after={"status": RunStatus.CONFIRMED,
                                                    "by": f"credits in {self.file_name}"}, at=self.now))


def _entry(record: BankStatement, entry_id: int, line: EntryLine, key: str, decision: Decision) -> tuple[Any, ...]:
    """The bank_entry row of a line (in :data:`ENTRY_COLUMNS` order); :mod:`include.sepa.camt` read every value
    of it to fit its column but the return reason, kept whole for the decision."""
    remittance = " ".join(filter(None, (*line.structured_refs, line.free_text))) or decision.remittance
    return (
        entry_id, record.id, record.account, key, line.entry_index, line.tx_index, line.amount, line.credit,
        line.reversal, line.status, line.booking_date, line.value_date, line.entry_ref,
        line.tx_servicer_ref or line.entry_servicer_ref, line.end_to_end_id, line.bank_tx_code,
        line.counterparty_name, line.counterparty_iban, line.counterparty_bic,
        decision.communication, remittance, (line.return_reason or "")[:RETURN_REASON_MAX] or None,
        str(decision.outcome),
        decision.reference_id, decision.collection_id, decision.booked,
    )
