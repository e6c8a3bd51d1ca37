"""E-mail to finance when a run of ``camt053_import`` put new items on control lists.

The mail goes through Airflow's ``SmtpNotifier`` with the Connection
``innen_finance_mail`` (SMTP host, port, login, password; extra ``to`` =
finance's address(es), comma-separated, ``from_email``, and ``disable_ssl`` /
``disable_tls`` for a plain local server). No Connection: nothing is sent.

What the mail says is built here, from the import's results, by pure
functions: per statement the number of new items, their total amount and
where its control list is. Accounts are masked; no names, no communications.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from typing import Any

from include.sepa.identifiers import mask_iban

FINANCE_MAIL_CONN_ID = "innen_finance_mail"


@dataclass(frozen=True)
class NewItems:
    """New control-list items of one statement of this run."""

    statement: str
    account: str  # masked
    items: int
    total: Decimal
    currency: str
    control_list: str  # path (or URL) of its control list


def new_control_list_items(
    results: Iterable[Mapping[str, Any] | None], totals: Mapping[int, tuple[Decimal, str]] | None = None
) -> list[NewItems]:
    """The statements of ``results`` (return values of ``import_file``) that got new items.

    ``totals`` maps a statement's database id to the total amount of its items and its currency
    (:func:`control_list_totals`); a statement missing there counts 0.00. The results hold no account in
    full (accounts masked, control lists in folders named after the hub): they are shown as they are.
    """
    totals = totals or {}
    found: list[NewItems] = []
    for result in results:
        if not result:
            continue
        lists = iter(result.get("control_lists") or [])
        for statement in result.get("statements") or []:
            db_id = statement.get("statement_db_id")
            control_list = next(lists, "") if db_id is not None else ""  # one list per statement stored
            count = int(statement.get("control_items") or 0)
            if count <= 0:
                continue
            total, currency = totals.get(db_id, (Decimal("0.00"), "")) if db_id is not None else (Decimal("0.00"), "")
            found.append(NewItems(
                statement=str(statement.get("statement") or ""), account=mask_iban(statement.get("account") or ""),
                items=count, total=Decimal(total), currency=currency or "", control_list=control_list,
            ))
    return found


def _amount(value: Decimal, currency: str) -> str:
    return f"{value:.2f} {currency}".strip()


def control_list_mail(found: list[NewItems], reports_url: str | None = None) -> tuple[str, str] | None:
    """Subject and HTML body of the mail to finance; ``None`` when there is nothing new.

    The location of a control list names its hub, or its account masked; ``reports_url`` (the run's
    "Reports" page) links to the lists themselves.
    """
    if not found:
        return None
    count = sum(item.items for item in found)
    noun = "item" if count == 1 else "items"
    if len(found) == 1:
        where = f"statement {found[0].statement} of {found[0].account}"
    else:
        where = f"{len(found)} statements"
    subject = f"Innen: {count} new control-list {noun} ({where})"
    rows = "".join(
        "<tr>"
        f"<td>{escape(item.statement)}</td><td>{escape(item.account)}</td>"
        f"<td style=\"text-align:right\">{item.items}</td>"
        f"<td style=\"text-align:right\">{escape(_amount(item.total, item.currency))}</td>"
        f"<td>{_link(item.control_list)}</td>"
        "</tr>"
        for item in found
    )
    body = (
        "<html><body>"
        f"<p>The bank statements just imported put {count} new {noun} on the control list. "
        "Each needs a person: the control list says why and what to do.</p>"
        "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">"
        "<tr><th>statement</th><th>account</th><th>new items</th><th>total amount</th><th>control list</th></tr>"
        f"{rows}</table>"
        + (f"<p>The control lists of this run: {_link(reports_url)}</p>" if reports_url else "")
        +         "<p>Sent by Innen (DAG camt053_import).</p>"
        "</body></html>"
    )
    return subject, body


def _link(location: str) -> str:
    if location.startswith(("http://", "https://")):
        return f"<a href=\"{escape(location, quote=True)}\">{escape(location)}</a>"
    return f"<code>{escape(location)}</code>"


def run_reports_url(base_url: str, dag_id: str, run_id: str) -> str:
    """The "Reports" page of a DAG run in Innen's finance app (``plugins/innen_plugin.py``)."""
    from urllib.parse import quote

    return f"{base_url.rstrip('/')}/innen-finance/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}/reports"


def recipients(extra: Mapping[str, Any]) -> list[str]:
    """Finance's addresses from the Connection's extra ``to`` (comma- or semicolon-separated, or a list)."""
    value = extra.get("to") or []
    if isinstance(value, str):
        value = value.replace(";", ",").split(",")
    return [address.strip() for address in value if address and address.strip()]


def control_list_totals(session: Any, statement_ids: Iterable[int]) -> dict[int, tuple[Decimal, str]]:
    """Total amount of the control-list items of each statement (items without an amount count 0), and its currency."""
    from sqlalchemy import func, select

    from include.finance.models import BankStatement, ControlListItem

    ids = sorted({i for i in statement_ids if i is not None})
    if not ids:
        return {}
    rows = session.execute(
        select(BankStatement.id, BankStatement.currency, func.coalesce(func.sum(ControlListItem.amount), 0))
        .outerjoin(ControlListItem, ControlListItem.statement_id == BankStatement.id)
        .where(BankStatement.id.in_(ids))
        .group_by(BankStatement.id, BankStatement.currency)
    )
    return {db_id: (Decimal(str(total)).quantize(Decimal("0.01")), currency or "") for db_id, currency, total in rows}


def required_actions_url(base: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The UI's page where a task instance waits for a person's answer (a mapped one has ``/mapped/<i>``).

    >>> required_actions_url("http://x", "pain_export", "manual__1", "bank_file.approve", 1)
    'http://x/dags/pain_export/runs/manual__1/tasks/bank_file.approve/mapped/1/required_actions'
    >>> required_actions_url("http://x", "collection_confirm", "r", "decide")
    'http://x/dags/collection_confirm/runs/r/tasks/decide/required_actions'
    """
    from urllib.parse import quote

    mapped = f"/mapped/{map_index}" if map_index >= 0 else ""
    return f"{base.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}{mapped}/required_actions"


def approval_mail(staged: Mapping[str, Any], url: str) -> tuple[str, str]:
    """Subject and HTML body of "a bank file waits for your approval" (no account numbers, no names).

    >>> subject, body = approval_mail({"run": "fj:BIB:3", "file_name": "KBC_fj-BIB-3.xml", "transactions": 2,
    ...                                "total": "30.00", "requested_by": "an", "four_eyes": True}, "http://x/y")
    >>> subject
    'Innen: bank file KBC_fj-BIB-3.xml (fj:BIB:3) waits for approval'
    >>> "someone other than an" in body and 'href="http://x/y"' in body
    True
    """
    subject = f"Innen: bank file {staged['file_name']} ({staged['run']}) waits for approval"
    who = staged.get("requested_by")
    eyes = (f"<p>Four eyes: someone other than {escape(str(who))} must approve it.</p>"
            if staged.get("four_eyes") and who else "")
    body = (f"<p>Collection run <b>{escape(str(staged['run']))}</b>: {int(staged['transactions'])} collections, "
            f"EUR {escape(str(staged['total']))}, file {escape(str(staged['file_name']))}.</p>{eyes}"
            f'<p><a href="{escape(url, quote=True)}">Approve or reject it in Airflow</a></p>')
    return subject, body
