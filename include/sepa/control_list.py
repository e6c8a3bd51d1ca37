"""The control list of a statement, for finance: every irregular entry with its reason and what to do.

Written to ``var/reports/camt053/<hub>_<statement>_<id>/`` as ``control-list.csv``
(``;``) and ``index.html`` with the statement's summary (:func:`folder_name`:
the hub's code, or the account masked, never the whole account number).
Everything is read back from the database, so writing it again (a rerun)
replaces the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from include.config import reports_dir
from include.finance.models import BankEntry, BankHub, BankStatement, ControlListItem, Payment, PaymentReference
from include.finance.money import ZERO
from include.finance.reference_numbers import display_reference
from include.finance.statuses import EntryOutcome
from include.reports import Table, write_csv, write_html
from include.sepa.identifiers import mask_iban, mask_ibans_in

HEADER = ("kind", "booking_date", "amount", "direction", "counterparty", "counterparty_iban", "communication",
          "reference", "reason", "action", "candidates")
_O = EntryOutcome
SUMMARY_OUTCOMES = (
    (_O.PAID, "matched, paid in full"), (_O.PARTIAL, "partial payments"), (_O.OVERPAID, "over-paid"),
    (_O.UNMATCHED, "unmatched"), (_O.CLOSED_REFERENCE, "on a paid, deleted or expired reference"),
    (_O.RETURNED, "returns"), (_O.UNKNOWN_RETURN, "returns we cannot place"), (_O.UNSPLIT, "batches to split"),
    (_O.OTHER_DEBIT, "other debits"), (_O.NOT_BOOKED, "pending or information only"),
    (_O.UNKNOWN_ACCOUNT, "on an account of no hub"),
)


@dataclass
class ControlList:
    folder: str
    items: int
    summary: dict[str, str]

    @property
    def html(self) -> str:
        return f"{self.folder}/index.html"


def folder_name(statement_id: str, db_id: int, account: str, hub_code: str | None = None) -> str:
    """The folder of a statement's control list: ``<hub>_<statement>_<database id>``.

    ``<hub>`` is the code of the hub the statement was booked for, else its account masked
    (``BE68-7034``): the path reaches task results, logs, e-mails and URLs, so it never holds the whole
    account number. The statement's database id makes the name unique: two accounts of no hub can look
    the same masked, and one statement id can come twice (another electronic sequence, a copy), each
    with its own items.

    >>> folder_name("2026-330", 17, "BE68539007547034", "KBC-BIB")
    'KBC-BIB_2026-330_17'
    >>> folder_name("2026/330", 17, "BE68539007547034")
    'BE68-7034_2026-330_17'
    >>> folder_name("BE68539007547034-2026-330", 17, "BE68539007547034", "KBC-BIB")
    'KBC-BIB_BE68-7034-2026-330_17'
    """
    who = hub_code or mask_iban(account).replace("*", "")
    statement = mask_ibans_in(statement_id).replace("*", "")  # a bank may name a statement after its account
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{who}_{statement}_{db_id}")


def folder_for(session: Session, statement: BankStatement) -> Path:
    hub = session.get(BankHub, statement.hub_id) if statement.hub_id is not None else None
    name = folder_name(statement.statement_id, statement.id, statement.account, hub.code if hub else None)
    return reports_dir() / "camt053" / name


def write_control_list(session: Session, statement_id: int, folder: Path | None = None) -> ControlList:
    statement = session.get(BankStatement, statement_id)
    assert statement is not None
    folder = folder or folder_for(session, statement)
    outcomes = dict(
        session.execute(
            select(BankEntry.outcome, func.count()).where(BankEntry.statement_id == statement_id).group_by(BankEntry.outcome)
        ).all()
    )
    booked = sum(
        session.scalars(
            select(BankEntry.booked_amount).where(BankEntry.statement_id == statement_id, BankEntry.booked_amount.is_not(None))
        ),
        ZERO,
    )
    # Payments undone by this statement's returns and reversals (negative payments pointing at its entries).
    taken_back = -sum(
        session.scalars(
            select(Payment.amount).join(BankEntry, BankEntry.id == Payment.bank_entry_id)
            .where(BankEntry.statement_id == statement_id, Payment.amount < 0)
        ),
        ZERO,
    )
    if statement.opening_balance is not None and statement.closing_balance is not None:
        balance = f"opening {statement.opening_balance} + entries = closing {statement.closing_balance}: checked"
    else:
        balance = "no opening and closing balance given: not checked"
    summary = {
        "statement": statement.statement_id, "account": statement.account,
        "electronic sequence": str(statement.electronic_seq or "-"), "file": statement.file_name,
        "copy": statement.copy_indicator or "-", "entries in the statement": str(statement.entries),
        "new lines booked here": str(statement.new_lines),
        **{label: str(outcomes.get(outcome, 0)) for outcome, label in SUMMARY_OUTCOMES},
        "total booked": f"{booked:.2f}", "total undone by returns": f"{taken_back:.2f}", "balance": balance,
    }
    rows = []
    query = (
        select(ControlListItem, BankEntry, PaymentReference.loi)
        .outerjoin(BankEntry, BankEntry.id == ControlListItem.bank_entry_id)
        .outerjoin(PaymentReference, PaymentReference.id == BankEntry.payment_reference_id)
        .where(ControlListItem.statement_id == statement_id)
        .order_by(ControlListItem.kind, ControlListItem.id)
    )
    for item, entry, loi in session.execute(query):
        candidates = "; ".join(
            f"{c['reference']} {c['communication']} open {c['open_amount']} ({c['why']})"
            for c in (item.details or {}).get("candidates", [])
        )
        rows.append([
            item.kind, entry.booking_date if entry else "", item.amount if item.amount is not None else "",
            ("credit" if entry.credit else "debit") if entry else "", entry.counterparty_name if entry else "",
            mask_iban(entry.counterparty_iban) if entry else "",
            display_reference(entry.reference) if entry and entry.reference else (entry.remittance or "" if entry else ""),
            loi or (item.details or {}).get("reference", ""), item.reason, item.action, candidates,
        ])
    write_csv(folder / "control-list.csv", HEADER, rows)
    table = Table("Control list", HEADER, csv_name="control-list.csv")
    for row in rows:
        table.add(row)
    write_html(folder / "index.html", f"Control list — statement {statement.statement_id} ({statement.account})", [table],
               summary=list(summary.items()))
    return ControlList(str(folder), len(rows), summary)

