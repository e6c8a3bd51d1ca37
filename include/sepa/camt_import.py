"""Importing bank statements: no statement twice, credits matched to payment references, returns undone.

One file is one transaction: either every statement in it is booked, or
(refused file, balance that does not add up, crash) nothing is. A statement
is known by account + statement id + electronic sequence number; the same
statement again adds nothing. Entries are known per account by the bank's
reference for the transaction (``TxDtls/Refs/AcctSvcrRef``), else the
entry's (``Ntry/AcctSvcrRef`` + position in the batch), else a fingerprint
(booking and value date, direction, amount, counterparty IBAN, end-to-end id,
references and text, entry reference, position in the batch, and how many
identical entries came before it in the statement); so overlapping
statements and copies (``CpyDplctInd`` DUPL/CODU) add only what is new.

A batch credit that names one of our collection runs in ``NtryDtls/Btch``
(``PmtInfId``, the payment block ``fj:SYS:n/FRST``, else ``MsgId``, the
whole run) and carries no transaction of one of our collections, which is
how banks report a batch-booked collection, is booked all or nothing, as a
run is confirmed by hand: when it equals the open total of the block's
collections that are neither returned nor cancelled, each is paid;
otherwise nothing is booked and the control list gives the difference. An
exported run that a file's credits (batch or per collection) leave with no
collection waiting is confirmed, as by hand. A credit for one of our
collections already paid, of its amount, is the detail of what was booked
(a bank's "detail of a collective credit" after the batch line, or a
statement after a confirmation by hand): stored, not booked again.

Credits are matched in this order: the end-to-end id of one of our
collections (the bank crediting a direct debit), the structured
communication (``Strd/CdtrRefInf/Ref``: OGM or RF), an OGM in the free
text, an RF reference in the free text. The free text is ``RmtInf/Ustrd``,
or without it the bank's ``AddtlTxInf``, ``Strd/AddtlRmtInf`` or ``AddtlNtryInf``. An OGM there
is ``+++…+++``, ``***…***``, twelve digits, or three groups as payers type
them (``123/4567/89002``, or with ``-``, ``.`` or spaces), always with a
valid check; an RF is compact or in groups of four as printed. Debits
carrying a return reason or a reversal indicator, or the end-to-end id of
one of our collections, are returns: of a collection, or of a credit
transfer booked earlier (see :meth:`_Importer._undo_credit`).

Everything that needs a person lands on the control list of its statement.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from include.errors import ReferenceNumberError
from include.files import sha256_of
from include.finance.audit import audit_row, record_many
from include.finance.bulk import insert_many, reserve_ids, update_by_id
from include.finance.models import (
    BankEntry,
    BankHub,
    BankStatement,
    Collection,
    CollectionRun,
    ControlListItem,
    EndUser,
    Mandate,
    Payment,
    PaymentReference,
)
from include.finance.money import ZERO
from include.finance.names import orderings
from include.finance.payments import Ledger, OpenReference
from include.finance.reference_numbers import display_reference, parse_ogm, parse_rf
from include.sepa.camt import CamtFile, CamtRefused, EntryLine, Statement
from include.sepa.identifiers import mask_iban

ID_BATCH = 5_000
ENTRY_CHUNK = 10_000  # entry rows held before they are written: a 100 000-entry statement never sits in memory as rows
CANDIDATE_SEARCHES = 500  # unmatched entries per file for which we look for likely payers
CANDIDATES = 5

# +++123/4567/89002+++ (or ***…***), 12 digits, or 123/4567/89002 as payers type it (/, -, . or a space between).
_OGM_IN_TEXT = re.compile(
    r"[+*]{3}\s*(\d{3})\s*/?\s*(\d{4})\s*/?\s*(\d{5})\s*[+*]{3}|(?<!\d)(\d{12})(?!\d)"
    r"|(?<!\d)(?<!\d[/.-])(\d{3})[/.\- ](\d{4})[/.\- ](\d{5})(?!\d)(?![/.-]\d)"
)
# RF18539007547034, or printed in groups of four: RF18 5390 0754 7034 (the longest valid prefix is taken).
_RF_IN_TEXT = re.compile(r"\bRF\d{2}(?: ?[A-Z0-9]{1,4}){1,6}\b", re.IGNORECASE)


def references_in(line: EntryLine) -> list[str]:
    """The payment reference numbers a credit may carry, most reliable first (stored form: OGM digits or RF)."""
    found: list[str] = []
    for value in line.structured_refs:
        for parse in (parse_ogm, parse_rf):
            try:
                found.append(parse(value))
                break
            except ReferenceNumberError:
                continue
    text = line.free_text or ""
    for match in _OGM_IN_TEXT.finditer(text):
        digits = match.group(4) or "".join(match.group(1, 2, 3) if match.group(1) else match.group(5, 6, 7))
        try:
            found.append(parse_ogm(digits))
        except ReferenceNumberError:
            continue
    for match in _RF_IN_TEXT.finditer(text):
        reference = _rf_at_start(match.group(0))
        if reference is not None:
            found.append(reference)
    return list(dict.fromkeys(found))


def _rf_at_start(text: str) -> str | None:
    """The longest valid RF reference ``text`` starts with, taking whole space-separated groups (words after it
    in the free text are not part of it)."""
    groups = text.split(" ")
    for end in range(len(groups), 0, -1):
        candidate = "".join(groups[:end])
        if len(candidate) > 25:
            continue
        try:
            return parse_rf(candidate)
        except ReferenceNumberError:
            continue
    return None


def entry_keys(statement: Statement) -> list[str]:
    """The identity of each line of ``statement`` on its account (see the module docstring)."""
    keys = []
    seen: Counter[str] = Counter()
    for line in statement.lines:
        if line.tx_servicer_ref:
            keys.append(f"tx:{line.tx_servicer_ref}")
        elif line.entry_servicer_ref:
            keys.append(f"ntry:{line.entry_servicer_ref}:{line.tx_index}")
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
    name = Path(camt.path).name
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


@dataclass(frozen=True)
class _Block:
    """The collections a batch credit books: one payment block of a run, or the whole run."""

    name: str  # as the credit gives it: PmtInfId, else MsgId
    run: str
    collections: list[dict[str, Any]]


def _books_a_batch(line: EntryLine) -> bool:
    """Whether ``line`` is a whole batch credit naming the creditor's block or message, without the
    transaction of one of our collections (an entry with such details is booked per transaction)."""
    return (line.credit and not line.reversal and not line.return_reason and bool(line.batch_payment_id or line.batch_message_id)
            and line.amount == line.entry_amount and (line.end_to_end_id is None or line.unsplit_batch))


def _batch_key(line: EntryLine) -> str:
    return line.batch_payment_id or line.batch_message_id or ""


def _identity(statement: Statement) -> str:
    return f"{statement.account}|{statement.statement_id}|{statement.electronic_seq if statement.electronic_seq is not None else ''}"


class _Importer:
    def __init__(self, session: Session, camt: CamtFile, sha256: str, actor: str, now: datetime) -> None:
        self.session, self.camt, self.sha256, self.actor, self.now = session, camt, sha256, actor, now
        self.file_name = Path(camt.path).name
        self.ledger = Ledger(session, actor, now)
        self.hubs = {
            (hub.creditor_iban or "").replace(" ", "").upper(): hub
            for hub in session.scalars(select(BankHub)) if hub.creditor_iban
        }
        self.audits: list[dict[str, Any]] = []
        self.collection_updates: dict[int, dict[str, Any]] = {}
        self.candidate_searches = 0
        # What a return or reversal of a credit booked from this file is matched on:
        # (account, amount, end-to-end id, reference, booking date, payment).
        self.booked_credits: list[tuple[str, Decimal, str | None, str | None, Any, dict[str, Any]]] = []
        self.paid_in_runs: set[int] = set()  # runs of the collections this file paid

    def run(self) -> ImportResult:
        result = ImportResult(self.file_name, self.sha256, "already_imported")
        for statement in self.camt.statements:
            outcome = self._statement(statement)
            result.statements.append(outcome)
            if outcome.status == "imported":
                result.status = "imported"
        self.ledger.flush()
        update_by_id(self.session, Collection.__table__, list(self.collection_updates.values()))
        self._confirm_paid_runs()
        record_many(self.session, self.audits)
        return result

    def _confirm_paid_runs(self) -> None:
        """An exported run that this file's credits left with no collection waiting is confirmed, as by hand."""
        for run in self.session.scalars(
            select(CollectionRun).where(CollectionRun.id.in_(sorted(self.paid_in_runs)), CollectionRun.status == "exported")
        ):
            waiting = self.session.scalar(
                select(func.count()).where(Collection.run_id == run.id, Collection.status.in_(("pending", "exported")))
            )
            if waiting == 0:
                run.status = "confirmed"
                self.audits.append(audit_row("collection_run", run.id, "confirmed", self.actor,
                                             before={"status": "exported"},
                                             after={"status": "confirmed", "by": f"credits in {self.file_name}"},
                                             at=self.now))

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
        previous_seq = session.scalar(
            select(func.max(BankStatement.electronic_seq)).where(BankStatement.account == st.account)
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
        items: list[dict[str, Any]] = []
        if st.electronic_seq is not None and previous_seq is not None and st.electronic_seq > previous_seq + 1:
            items.append(self._item(record.id, None, "sequence_gap",
                                    f"electronic sequence jumps from {previous_seq} to {st.electronic_seq}: "
                                    f"statement(s) {previous_seq + 1}..{st.electronic_seq - 1} are missing",
                                    "ask the bank for the missing statements and import them", None))
        new = [(line, key) for line, key in zip(st.lines, keys, strict=True) if key not in known]
        record.new_lines = result.new_lines = len(new)
        outcomes, booked = self._decide(record, hub, new, items)
        if items:
            insert_many(session, ControlListItem.__table__, items)
        result.outcomes = dict(sorted(outcomes.items()))
        result.booked = str(booked)
        result.control_items = len(items)
        self.audits.append(audit_row("bank_statement", record.id, "imported", self.actor,
                                     after={"identity": identity, "file": self.file_name, "new_lines": len(new),
                                            "outcomes": result.outcomes}, at=self.now))
        return result

    def _known_keys(self, account: str, keys: list[str]) -> set[str]:
        known: set[str] = set()
        for start in range(0, len(keys), ID_BATCH):
            known.update(self.session.scalars(
                select(BankEntry.entry_key).where(BankEntry.account == account, BankEntry.entry_key.in_(keys[start : start + ID_BATCH]))
            ))
        return known

    # -- deciding what each line is ------------------------------------------------------------

    def _decide(self, record: BankStatement, hub: BankHub | None, new: list[tuple[EntryLine, str]],
                items: list[dict[str, Any]]) -> tuple[Counter[str], Decimal]:
        """Decide and store every new line (a chunk of entry rows at a time); returns outcome counts and the total booked."""
        # References and collections are in euro: a statement of another currency (one IBAN can carry several
        # currency accounts) is stored, never booked.
        foreign = hub is not None and bool(new) and (record.currency or "EUR").upper() != "EUR"
        if foreign:
            items.append(self._item(
                record.id, None, "foreign_currency",
                f"statement {record.statement_id} is in {record.currency}, not in euro: none of its "
                f"{len(new)} entries was booked", "book what concerns us by hand, in euro", None))
            hub = None
        numbers = [references_in(line) if line.credit and hub is not None else [] for line, _ in new]
        references = self._references(hub, numbers)
        collections = self._collections([line.end_to_end_id for line, _ in new if line.end_to_end_id])
        blocks = self._collection_blocks(hub, [line for line, _ in new if _books_a_batch(line)])
        self.ledger.load({ref_id for ref_id in references.values()} | {c["payment_reference_id"] for c in collections.values()}
                         | {c["payment_reference_id"] for block in blocks.values() for c in block.collections})
        ids = iter(reserve_ids(self.session, BankEntry.__table__, len(new)))
        outcomes: Counter[str] = Counter()
        booked = ZERO
        chunk: list[dict[str, Any]] = []
        for (line, key), refs in zip(new, numbers, strict=True):
            row = self._row(record, line, key, refs)
            row["id"] = next(ids)
            line_items: list[dict[str, Any]] = []
            if foreign:
                row["outcome"] = "not_booked"
            elif hub is None:
                row["outcome"] = "unknown_account"
                line_items.append(self._item(record.id, row, "unknown_account",
                                             f"account {record.account} belongs to no bank hub: nothing was booked",
                                             "link the account to a bank hub, or remove the statement", line.amount))
            elif line.status != "BOOK":
                row["outcome"] = "not_booked"
            elif _books_a_batch(line) and (block := blocks.get(_batch_key(line))) is not None:
                self._credit_block(record, line, row, block, line_items)
            elif line.unsplit_batch:
                row["outcome"] = "unsplit"
                line_items.append(self._item(record.id, row, "unsplit",
                                             f"batch entry of {line.entry_amount} whose transactions carry no amounts",
                                             "split the batch by hand and book each payment", line.amount))
            elif line.credit and not line.reversal and line.return_reason:
                # Money of ours coming back (a refund or payment we sent, returned by the payee's bank): never a payment.
                row["outcome"] = "unknown_return"
                line_items.append(self._item(
                    record.id, row, "unknown_return",
                    f"{line.amount} of ours came back (return reason {line.return_reason}) from "
                    f"{line.counterparty_name or 'an unknown party'}: nothing was booked",
                    "find the refund or payment this returns and ask for a correct account", line.amount))
            elif line.credit and not line.reversal:
                self._credit(record, hub, line, row, refs, references, collections, line_items)
            else:
                self._debit(record, hub, line, row, collections, line_items)
            for payment in row.pop("_block_payments", ()):
                payment["bank_entry_id"] = row["id"]
            payment = row.pop("_payment", None)
            if payment is not None:
                payment["bank_entry_id"] = row["id"]
                self.booked_credits.append((row["account"], row["amount"], row["end_to_end_id"], row["reference"],
                                            row["booking_date"], payment))
            for item in line_items:
                item["bank_entry_id"] = row["id"]
            items.extend(line_items)
            outcomes[row["outcome"]] += 1
            if row["outcome"] in ("paid", "partial", "overpaid"):
                booked += row["booked_amount"] or ZERO
            chunk.append(row)
            if len(chunk) == ENTRY_CHUNK:
                insert_many(self.session, BankEntry.__table__, chunk)
                chunk = []
        insert_many(self.session, BankEntry.__table__, chunk)
        return outcomes, booked

    def _row(self, record: BankStatement, line: EntryLine, key: str, refs: list[str]) -> dict[str, Any]:
        return {
            "statement_id": record.id, "account": record.account, "entry_key": key, "entry_index": line.entry_index,
            "tx_index": line.tx_index, "amount": line.amount, "credit": line.credit, "reversal": line.reversal,
            "status": line.status[:4], "booking_date": line.booking_date, "value_date": line.value_date,
            "entry_ref": line.entry_ref, "account_servicer_ref": line.tx_servicer_ref or line.entry_servicer_ref,
            "end_to_end_id": line.end_to_end_id, "bank_tx_code": line.bank_tx_code,
            "counterparty_name": (line.counterparty_name or "")[:140] or None, "counterparty_iban": line.counterparty_iban,
            "counterparty_bic": (line.counterparty_bic or "")[:11] or None, "reference": refs[0] if refs else None,
            "remittance": " ".join(filter(None, (*line.structured_refs, line.free_text))) or None,
            "return_reason": (line.return_reason or "")[:10] or None, "outcome": "other_debit",
            "payment_reference_id": None, "collection_id": None, "booked_amount": None,
        }

    def _references(self, hub: BankHub | None, found_in_lines: list[list[str]]) -> dict[str, int]:
        """reference number -> payment reference id, for every number the credits carry (in the hub's system)."""
        if hub is None:
            return {}
        numbers = sorted({ref for refs in found_in_lines for ref in refs})
        found: dict[str, int] = {}
        for start in range(0, len(numbers), ID_BATCH):
            found.update(self.session.execute(
                select(PaymentReference.reference_number, PaymentReference.id).where(
                    PaymentReference.financial_system_id == hub.financial_system_id,
                    PaymentReference.reference_number.in_(numbers[start : start + ID_BATCH]),
                )
            ).all())
        return found

    def _collections(self, e2e_ids: list[str]) -> dict[str, dict[str, Any]]:
        ids = sorted(set(e2e_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), ID_BATCH):
            for row in self.session.execute(
                select(Collection.id, Collection.end_to_end_id, Collection.payment_reference_id, Collection.status,
                       Collection.mandate_id, Collection.amount, Collection.run_id)
                .where(Collection.end_to_end_id.in_(ids[start : start + ID_BATCH]))
            ):
                found[row.end_to_end_id] = dict(row._mapping)
        return found

    def _collection_blocks(self, hub: BankHub | None, lines: list[EntryLine]) -> dict[str, _Block]:
        """Our collection runs' payment blocks (``fj:SYS:n/FRST``) or whole runs (``fj:SYS:n``) that batch
        credits name, on this statement's hub, by the name the credit gives."""
        if hub is None or not lines:
            return {}
        wanted: dict[str, tuple[str, str | None]] = {}  # batch key -> (run id, sequence type or None: the whole run)
        for line in lines:
            key = _batch_key(line)
            if line.batch_payment_id and "/" in line.batch_payment_id:
                run, sequence_type = line.batch_payment_id.rsplit("/", 1)
                wanted[key] = (run, sequence_type)
            elif line.batch_message_id:
                wanted[key] = (line.batch_message_id, None)
        runs = {loi: run_id for run_id, loi in self.session.execute(
            select(CollectionRun.id, CollectionRun.loi).where(
                CollectionRun.hub_id == hub.id, CollectionRun.loi.in_(sorted({run for run, _ in wanted.values()})),
                CollectionRun.status.in_(("exported", "confirmed")),  # a run never sent cannot have been credited
            ))}
        blocks: dict[str, _Block] = {}
        for key, (run, sequence_type) in wanted.items():
            run_id = runs.get(run)
            if run_id is None:
                continue
            query = select(Collection.id, Collection.end_to_end_id, Collection.payment_reference_id, Collection.status,
                           Collection.mandate_id, Collection.amount, Collection.run_id).where(Collection.run_id == run_id)
            if sequence_type is not None:
                query = query.where(Collection.sequence_type == sequence_type)
            found = [dict(row._mapping) for row in self.session.execute(query.order_by(Collection.id))]
            if found:
                blocks[key] = _Block(key, run, found)
        return blocks

    def _credit_block(self, record: BankStatement, line: EntryLine, row: dict[str, Any], block: _Block,
                      items: list[dict[str, Any]]) -> None:
        """A batch credit for one of our payment blocks (or runs): all or nothing, as a run is confirmed by hand.

        Counted, as in :mod:`include.sepa.collection_confirm`: the collections neither returned nor cancelled
        whose reference is still open. The credit must equal their open total; then each is booked as paid.
        """
        counted = []
        for collection in block.collections:
            ref = self.ledger.references.get(collection["payment_reference_id"])
            if collection["status"] not in ("returned", "cancelled") and ref is not None and ref.is_open:
                counted.append((collection, ref))
        open_total = sum((ref.open_amount for _, ref in counted), ZERO)
        row["remittance"] = row["remittance"] or f"batch {block.name}"
        if not counted or line.amount != open_total:
            row["outcome"] = "unmatched"
            items.append(self._item(
                record.id, row, "batch_mismatch",
                f"batch credit of {line.amount} for {block.name} ({len(block.collections)} collections of run "
                f"{block.run}), whose open total is {open_total} (difference {line.amount - open_total}): "
                "nothing was booked",
                "find the collections returned or paid some other way (returns on this or a later statement), "
                f"then confirm {block.run} by hand (collection_confirm)", line.amount, {"run": block.run}))
            return
        payments = []
        for collection, ref in counted:
            payments.append(self.ledger.pay(ref, ref.open_amount, source="bank_statement",
                                            note=f"{self.file_name} {record.statement_id}: batch {block.name}"))
            self._collection_status(collection, "paid")
        row["_block_payments"] = payments
        row["outcome"] = "paid"
        row["booked_amount"] = line.amount

    def _credit(self, record: BankStatement, hub: BankHub, line: EntryLine, row: dict[str, Any], refs: list[str],
                references: dict[str, int], collections: dict[str, dict[str, Any]], items: list[dict[str, Any]]) -> None:
        collection = collections.get(line.end_to_end_id or "")
        ref: OpenReference | None = None
        if collection is not None:
            ref = self.ledger.references.get(collection["payment_reference_id"])
            row["collection_id"] = collection["id"]
            if collection["status"] == "paid" and line.amount == collection["amount"]:
                # Already booked, by the block's batch credit or a confirmation: these are its details (a bank's
                # camt.054 "detail of a collective credit"), not money received again.
                row["outcome"] = "not_booked"
                row["payment_reference_id"] = collection["payment_reference_id"]
                return
        if ref is None:
            for number in refs:
                if number in references:
                    ref = self.ledger.references[references[number]]
                    break
        if ref is None:
            row["outcome"] = "unmatched"
            text = f"communication {display_reference(row['reference'])}" if row["reference"] else "no usable communication"
            items.append(self._item(record.id, row, "unmatched",
                                    f"credit of {line.amount} from {line.counterparty_name or 'an unknown payer'}: {text}, "
                                    "no open payment reference found",
                                    "identify the payer (see the candidates), book by hand or refund", line.amount,
                                    {"candidates": self._candidates(hub, line)}))
            return
        row["payment_reference_id"] = ref.id
        if not ref.is_open:
            row["outcome"] = "closed_reference"
            items.append(self._item(record.id, row, "closed_reference",
                                    f"credit of {line.amount} for {ref.loi}, which is {ref.status}",
                                    "refund the payer, or book the amount on another open reference of the payer",
                                    line.amount, {"reference": ref.loi}))
            return
        open_before = ref.open_amount
        booked = min(line.amount, open_before)
        payment = self.ledger.pay(ref, booked, source="bank_statement", note=f"{self.file_name} {record.statement_id}")
        row["_payment"] = payment
        row["booked_amount"] = booked
        if collection is not None and ref.status == "paid":
            self._collection_status(collection, "paid")
        if line.amount == open_before:
            row["outcome"] = "paid"
        elif line.amount < open_before:
            row["outcome"] = "partial"
            items.append(self._item(record.id, row, "partial",
                                    f"{line.amount} paid on {ref.loi} whose open amount was {open_before}; {ref.open_amount} remains open",
                                    "remind the payer of the rest, or write it off", line.amount, {"reference": ref.loi}))
        else:
            row["outcome"] = "overpaid"
            excess = line.amount - open_before
            items.append(self._item(record.id, row, "overpaid",
                                    f"{line.amount} paid on {ref.loi} whose open amount was {open_before}: {excess} too much",
                                    f"refund {excess} to {mask_iban(line.counterparty_iban) or 'the payer'} or keep it as a credit",
                                    excess, {"reference": ref.loi}))

    def _debit(self, record: BankStatement, hub: BankHub, line: EntryLine, row: dict[str, Any],
               collections: dict[str, dict[str, Any]], items: list[dict[str, Any]]) -> None:
        collection = collections.get(line.end_to_end_id or "")
        is_return = line.return_reason is not None or line.reversal
        if collection is None:
            if is_return and self._undo_credit(record, line, row, items):
                return
            if is_return:
                row["outcome"] = "unknown_return"
                items.append(self._item(record.id, row, "unknown_return",
                                        f"{'reversal' if line.reversal else 'return'} of {line.amount} "
                                        f"(reason {line.return_reason or '-'}, end-to-end id {line.end_to_end_id or '-'}) "
                                        "that matches none of our collections",
                                        "check with the bank which payment this undoes", line.amount))
            return
        row["collection_id"] = collection["id"]
        row["payment_reference_id"] = collection["payment_reference_id"]
        row["outcome"] = "returned"
        reason = line.return_reason or ("reversal" if line.reversal else "returned")
        if collection["status"] == "returned":
            return
        ref = self.ledger.references[collection["payment_reference_id"]]
        reversed_total = self.ledger.reverse(ref, note=f"collection {line.end_to_end_id} returned ({reason})",
                                             bank_entry_id=row["id"])
        self.ledger.release(ref, "deleted")
        self._collection_status(collection, "returned", reason)
        fatal = reason in (hub.fatal_return_reasons or "").split()
        action = "the debt is open again and will be collected with the next run (FRST again if this was the first)"
        if fatal:
            action = "the mandate is blocked (it lists on active-err): ask the debtor for a new mandate or another way to pay"
            self._block_mandate(collection["mandate_id"], f"collection {line.end_to_end_id} returned with {reason} on {line.booking_date}")
        items.append(self._item(record.id, row, "returned",
                                f"collection {line.end_to_end_id} of {collection['amount']} returned ({reason}); "
                                f"{reversed_total} of payments reversed", action, line.amount,
                                {"reason": reason, "reference": ref.loi}))

    def _undo_credit(self, record: BankStatement, line: EntryLine, row: dict[str, Any],
                     items: list[dict[str, Any]]) -> bool:
        """A return or reversal of a credit transfer we booked: its payment is undone and the reference is open
        again. Only when exactly one standing payment fits: a credit on the same account, of the same amount,
        with the same end-to-end id (or, when none has it, the same payment reference), on a reference that is
        sealed or paid; otherwise ``False`` (the caller lists it for a person)."""
        if line.credit:  # a reversal of a debit brings money in: there is no credit of ours to undo
            return False
        numbers = references_in(line)
        e2e = line.end_to_end_id
        # (reference id, payment, booking date): by the end-to-end id, else by the payment reference
        found = self._credits_taken_back(record.account, line.amount, e2e, []) if e2e else []
        if not found and numbers:
            found = self._credits_taken_back(record.account, line.amount, None, numbers)
        if len(found) != 1:
            return False
        ref_id, payment, booked_on = found[0]
        ref = self.ledger.load([ref_id])[ref_id]
        if ref.status not in ("sealed", "paid"):
            return False
        what = "reversal" if line.reversal else f"return ({line.return_reason})"
        undone_total = self.ledger.reverse(ref, note=f"{what} of the credit of {line.amount} booked on {booked_on}",
                                           only=payment, bank_entry_id=row["id"])
        if not undone_total:
            return False
        row["outcome"] = "returned"
        row["payment_reference_id"] = ref.id
        row["reference"] = ref.reference_number
        items.append(self._item(
            record.id, row, "returned",
            f"the bank took back the credit of {line.amount} of {booked_on} ({what}): the payment of {undone_total} "
            f"on {ref.loi} is undone and {ref.open_amount} is open again",
            "check with the payer why the transfer came back; the debt is open again and will be asked again",
            line.amount, {"reason": line.return_reason or "reversal", "reference": ref.loi}))
        return True

    def _credits_taken_back(self, account: str, amount: Decimal, e2e: str | None,
                            numbers: list[str]) -> list[tuple[int, dict[str, Any] | int, Any]]:
        """Standing payments of credits on ``account`` of ``amount``, with end-to-end id ``e2e`` (or, without
        one, a payment reference among ``numbers``): this file's, then the stored ones."""
        found: list[tuple[int, dict[str, Any] | int, Any]] = []
        for credit_account, credit_amount, credit_e2e, reference, booked_on, payment in self.booked_credits:
            if (credit_amount == amount and credit_account == account and not payment.get("_reversed")
                    and (credit_e2e == e2e if e2e else reference in numbers)):
                found.append((payment["payment_reference_id"], payment, booked_on))
        undone = select(Payment.reverses_payment_id).where(Payment.reverses_payment_id.is_not(None))
        query = (
            select(Payment.payment_reference_id, Payment.id, BankEntry.booking_date)
            .join(BankEntry, BankEntry.id == Payment.bank_entry_id)
            .where(BankEntry.account == account, BankEntry.credit.is_(True), BankEntry.amount == amount,
                   Payment.amount > 0, ~Payment.id.in_(undone),
                   BankEntry.end_to_end_id == e2e if e2e else BankEntry.reference.in_(numbers))
        )
        found += [tuple(r) for r in self.session.execute(query)]  # type: ignore[misc]
        return found

    # -- side effects on collections and mandates ----------------------------------------------

    def _collection_status(self, collection: dict[str, Any], status: str, reason: str | None = None) -> None:
        before = collection["status"]
        if status == "paid":
            self.paid_in_runs.add(collection["run_id"])
        collection["status"] = status
        values: dict[str, Any] = {"id": collection["id"], "status": status, "return_reason": reason[:10] if reason else None}
        self.collection_updates[collection["id"]] = values
        self.audits.append(audit_row("collection", collection["id"], status, self.actor, before={"status": before},
                                     after={"status": status, "return_reason": values["return_reason"]}, at=self.now))

    def _block_mandate(self, mandate_id: int, reason: str) -> None:
        mandate = self.session.get(Mandate, mandate_id)
        if mandate is None or mandate.blocked_reason:
            return
        mandate.blocked_reason = reason[:200]
        self.audits.append(audit_row("mandate", mandate_id, "blocked", self.actor, before={"blocked_reason": None},
                                     after={"blocked_reason": mandate.blocked_reason}, at=self.now))

    # -- control list --------------------------------------------------------------------------

    def _item(self, statement_id: int, row: dict[str, Any] | None, kind: str, reason: str, action: str,
              amount: Decimal | None, details: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"statement_id": statement_id, "bank_entry_id": None, "kind": kind, "reason": reason,
                "action": action, "amount": amount, "details": details}

    def _candidates(self, hub: BankHub, line: EntryLine) -> list[dict[str, str]]:
        """Open references the payer may have meant: by debtor IBAN, earlier payments, amount, name."""
        if self.candidate_searches >= CANDIDATE_SEARCHES:
            return []
        self.candidate_searches += 1
        session, system = self.session, hub.financial_system_id
        found: dict[int, str] = {}
        # Only equality conditions: next to "open_amount > 0" SQLite scans the (system, open amount) index
        # range instead of looking the payer or the amount up; a still open reference has an amount left.
        open_refs = select(PaymentReference.id).where(
            PaymentReference.financial_system_id == system, PaymentReference.status.in_(("draft", "sealed")),
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
            select(PaymentReference.id, PaymentReference.loi, PaymentReference.reference_number, PaymentReference.open_amount)
            .where(PaymentReference.id.in_(list(found)), PaymentReference.open_amount > 0)
        ).all()
        return [
            {"reference": row.loi, "communication": display_reference(row.reference_number) if row.reference_number else "",
             "open_amount": str(row.open_amount), "why": found[row.id]}
            for row in rows[:CANDIDATES]
        ]


def import_statements(session: Session, camt: CamtFile, actor: str, *, now: datetime | None = None) -> ImportResult:
    """Book every statement of a parsed file in ``session`` (the caller's transaction); refuses bad balances first."""
    check_balances(camt)
    return _Importer(session, camt, sha256_of(Path(camt.path)), actor, now or datetime.now(timezone.utc)).run()


def outcome_counts(results: Iterable[StatementResult]) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for result in results:
        for outcome, count in result.outcomes.items():
            total[outcome] += count
    return dict(total)
