"""The "Finance" page: what finance has to look at today, across statements, runs and POM.

Four sections, read from the shared database in one read-only transaction:

* **Open control-list items** — every ``control_list_item`` still without
  ``resolved_at``, of every source (statements and POM), newest first, with its
  statement and account, amount, kind, reason and what to do; resolved with the
  DAG ``control_list_resolve``.
* **Approvals waiting** — given by the caller: the Airflow side asks Airflow's
  metadata database for the tasks of :data:`APPROVAL_DAGS` waiting for a human
  answer (HITL, state ``awaiting_input``), and bank files still in staging
  whose approval task is not asking at the moment (a retry, a failure).
* **Bank files released today** — collection runs ``exported`` or ``confirmed``
  whose ``exported_at`` falls on today in Brussels.
* **References to refund** — open items of kind ``overpaid`` (the excess of an
  over-payment, by statement or POM) and ``closed_reference`` (paid on a
  reference already paid, deleted or expired: paid twice), both of which tell
  finance to refund the payer unless booked elsewhere. An item whose credit
  paid a collection the bank returned afterwards stays listed until handled,
  with nothing to refund (the return gave the debtor the money back) and out
  of the section's total.

Amounts are written as their exact decimal text (``1234.50``); moments as
Brussels wall-clock time. Nothing here imports Airflow.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, select_autoescape
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from include.finance.control_list_resolution import open_item_query
from include.finance.models import BankEntry, BankHub, CollectionRun, ControlListItem, in_cents
from include.finance.statuses import REFUND_ITEM, SENT_RUN, EntryOutcome
from include.runtime import LOCAL_ZONE
from include.sepa.bank_file_approval import waiting as waiting_bank_files
from include.sepa.identifiers import mask_iban

APPROVAL_DAGS = ("pain_export", "collection_confirm")
RELEASED_STATUSES = SENT_RUN
REFUND_KINDS = REFUND_ITEM
HTML_LIMIT = 500

OPEN_HEADER = ("item", "since", "source", "kind", "statement", "account", "amount", "reference", "counterparty",
               "reason", "action")
APPROVAL_HEADER = ("what", "DAG", "run", "task", "waiting since", "link")
RELEASED_HEADER = ("collection run", "hub", "collection date", "format", "file", "transactions", "total", "status",
                   "exported at", "SHA-256")
REFUND_HEADER = ("item", "since", "source", "kind", "reference", "amount to refund", "payer", "reason", "action")


@dataclass(frozen=True)
class Approval:
    """A human decision Airflow waits for (a HITL task instance), as the Airflow side reads it."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    subject: str = ""
    waiting_since: datetime | None = None

    @property
    def ui_path(self) -> str:
        """Where Airflow's UI answers it (the task instance's Required Actions tab)."""
        mapped = f"/mapped/{self.map_index}" if self.map_index >= 0 else ""
        parts = "/".join(quote(part, safe="") for part in (self.dag_id, "runs", self.run_id, "tasks", self.task_id))
        return f"/dags/{parts}{mapped}/required_actions"


@dataclass
class Section:
    """One table of the page: all its rows for the CSV, the first :data:`HTML_LIMIT` shown."""

    key: str
    title: str
    header: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    links: list[str | None] = field(default_factory=list)  # per row: a path in Airflow's UI, or None
    amount_total: Decimal | None = None
    note: str = ""


def _aware(moment: datetime) -> datetime:
    """SQLite gives back the UTC wall-clock time it was given, without its zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def local_time(moment: datetime | None) -> str:
    return "" if moment is None else _aware(moment).astimezone(LOCAL_ZONE).strftime("%Y-%m-%d %H:%M")


def amount_text(amount: Decimal | None) -> str:
    return "" if amount is None else f"{amount:.2f}"


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    """The day in Brussels as UTC moments (SQLite compares the UTC text it stores)."""
    start = datetime.combine(day, time(0), tzinfo=LOCAL_ZONE)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LOCAL_ZONE)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def _item_query() -> Any:
    """The open items (include/finance/control_list_resolution.py), newest first."""
    return open_item_query().order_by(ControlListItem.created_at.desc(), ControlListItem.id.desc())


def _total(session: Session, *conditions: Any) -> Decimal:
    cents = session.scalar(
        select(func.sum(in_cents(ControlListItem.amount)))
        .where(ControlListItem.resolved_at.is_(None), *conditions)
    )
    return (Decimal(int(cents)) / 100).quantize(Decimal("0.01")) if cents is not None else Decimal("0.00")


def _count(session: Session, *conditions: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(ControlListItem)
                              .where(ControlListItem.resolved_at.is_(None), *conditions)) or 0)


def open_items(session: Session, limit: int | None = HTML_LIMIT) -> Section:
    section = Section("open", "Open control-list items", OPEN_HEADER)
    query = _item_query() if limit is None else _item_query().limit(limit)
    for item, name, iban, account, statement, loi in session.execute(query):
        section.rows.append([
            str(item.id), local_time(item.created_at), item.source, item.kind, statement or "", account or "",
            amount_text(item.amount), (item.details or {}).get("reference") or loi or "",
            " ".join(part for part in (name or "", mask_iban(iban)) if part), item.reason, item.action,
        ])
        section.links.append(None)
    count = _count(session)
    section.amount_total = _total(session)
    section.note = f"{count} open" + (f", the newest {limit} shown" if limit is not None and count > limit else "")
    return section


def _returned_by_the_bank() -> Any:
    """``(item id, end-to-end id, return's booking date)`` of the refund items whose credit paid a collection that
    the bank returned after it: the return gave the debtor the whole collection back, the excess with it."""
    credit, back = aliased(BankEntry), aliased(BankEntry)
    return (
        select(ControlListItem.id, back.end_to_end_id, back.booking_date)
        .join(credit, credit.id == ControlListItem.bank_entry_id)
        .join(back, and_(back.collection_id == credit.collection_id, back.outcome == EntryOutcome.RETURNED,
                         back.id > credit.id))
        .where(ControlListItem.resolved_at.is_(None), ControlListItem.kind.in_(REFUND_KINDS),
               credit.credit.is_(True), credit.collection_id.is_not(None))
    )


def refunds(session: Session, limit: int | None = HTML_LIMIT) -> Section:
    section = Section("refunds", "References to refund", REFUND_HEADER)
    query = _item_query().where(ControlListItem.kind.in_(REFUND_KINDS))
    if limit is not None:
        query = query.limit(limit)
    returned = {item_id: (e2e, day) for item_id, e2e, day in session.execute(_returned_by_the_bank())}
    for item, name, iban, _account, _statement, loi in session.execute(query):
        details = item.details or {}
        if item.source == "pom":
            payer = f"POM {details.get('pom_id') or ''} ({details.get('channel') or 'unknown channel'})".strip()
        else:
            payer = " ".join(part for part in (name or "", mask_iban(iban)) if part)
        amount, action = amount_text(item.amount), item.action
        if item.id in returned:  # listed until handled, but nothing is left to refund
            e2e, day = returned[item.id]
            amount = amount_text(Decimal("0.00"))
            action = (f"do not refund: the bank returned collection {e2e or '-'} on {day or '?'} after this credit, "
                      f"so the debtor got it back ({amount_text(item.amount)} with it); handle this item with a note")
        section.rows.append([
            str(item.id), local_time(item.created_at), item.source, item.kind, details.get("reference") or loi or "",
            amount, payer, item.reason, action,
        ])
        section.links.append(None)
    count = _count(session, ControlListItem.kind.in_(REFUND_KINDS))
    not_due = ControlListItem.id.in_(_returned_by_the_bank().with_only_columns(ControlListItem.id))
    gone_back = _count(session, not_due)
    section.amount_total = _total(session, ControlListItem.kind.in_(REFUND_KINDS), ~not_due)
    section.note = f"{count - gone_back} to refund or book elsewhere" + (
        f", {gone_back} returned by the bank with their collection (nothing to refund: handle them)"
        if gone_back else "") + (f", the newest {limit} shown" if limit is not None and count > limit else "")
    return section


def released_today(session: Session, today: date) -> Section:
    section = Section("released", "Bank files released today", RELEASED_HEADER)
    start, end = _day_bounds(today)
    rows = session.execute(
        select(CollectionRun, BankHub.code).join(BankHub, BankHub.id == CollectionRun.hub_id)
        .where(CollectionRun.status.in_(RELEASED_STATUSES), CollectionRun.exported_at >= start,
               CollectionRun.exported_at < end)
        .order_by(CollectionRun.exported_at.desc(), CollectionRun.id.desc())
    )
    total = Decimal("0.00")
    for run, hub in rows:
        name = run.file_path.replace("\\", "/").rsplit("/", 1)[-1] if run.file_path else ""
        section.rows.append([
            run.loi, hub, run.collection_date.isoformat(), run.export_format or "", name, str(run.transaction_count),
            amount_text(run.total_amount), run.status, local_time(run.exported_at), run.file_sha256 or "",
        ])
        section.links.append(None)
        total += run.total_amount
    section.amount_total = total
    section.note = f"{len(section.rows)} bank file(s) on {today.isoformat()}"
    return section


def approvals_waiting(session: Session, approvals: Sequence[Approval]) -> Section:
    section = Section("approvals", "Approvals waiting", APPROVAL_HEADER)
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    for approval in sorted(approvals, key=lambda a: _aware(a.waiting_since) if a.waiting_since else oldest,
                           reverse=True):
        task = approval.task_id if approval.map_index < 0 else f"{approval.task_id} [{approval.map_index}]"
        section.rows.append([approval.subject or approval.task_id, approval.dag_id, approval.run_id, task,
                             local_time(approval.waiting_since), approval.ui_path])
        section.links.append(approval.ui_path)
    asked = {f"{a.dag_id}/{a.run_id}/{a.task_id}/{a.map_index}" for a in approvals}
    for staged in waiting_bank_files(session):  # staged files whose task is not asking right now (retrying, failed)
        if staged["airflow_task"] in asked:
            continue
        dag_id, run_id, task_id, map_index = (staged["airflow_task"] or "///").split("/", 3)
        path = f"/dags/{dag_id}/runs/{quote(run_id, safe='')}" if run_id else f"/dags/{APPROVAL_DAGS[0]}"
        what = (f"bank file {staged['file_name']} of {staged['run']} ({staged['transactions']} collections, "
                f"{staged['total']}): its approval task is not waiting now")
        section.rows.append([what, dag_id or APPROVAL_DAGS[0], run_id, task_id, local_time(staged["requested_at"]), path])
        section.links.append(path)
    section.note = (f"{len(section.rows)} waiting (DAGs {', '.join(APPROVAL_DAGS)}); answered in Airflow under "
                    "Browse → Required Actions, or the task's Required Actions tab")
    return section


def finance_sections(session: Session, today: date, approvals: Sequence[Approval] = (),
                     limit: int | None = HTML_LIMIT) -> list[Section]:
    """The page's four sections, in the order finance reads them."""
    return [
        approvals_waiting(session, approvals),
        open_items(session, limit),
        released_today(session, today),
        refunds(session, limit),
    ]


SECTION_KEYS = ("approvals", "open", "released", "refunds")


def section_csv(section: Section) -> bytes:
    """The section as a CSV the way every Innen report is: ``;``, UTF-8 with a BOM, CRLF."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(section.header)
    writer.writerows(section.rows)
    return buffer.getvalue().encode("utf-8-sig")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Finance — {{ today }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem 0;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;white-space:nowrap}
.note{color:#666}nav a{margin-right:1rem}
</style></head><body>
<h1>Finance</h1>
<p class="note">{{ today }} (Brussels), as of {{ now }}</p>
<nav>{% for section in sections %}<a href="#{{ section.key }}">{{ section.title }} ({{ section.rows|length }})</a>{% endfor %}</nav>
{% for section in sections %}
<h2 id="{{ section.key }}">{{ section.title }}</h2>
<p class="note">{{ section.note }}{% if section.amount_total is not none %}; total EUR {{ "%.2f"|format(section.amount_total) }}{% endif %}
 — <a href="finance/{{ section.key }}.csv" download>CSV</a></p>
{% if section.rows %}<table><thead><tr>{% for h in section.header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in section.rows %}{% set link = section.links[loop.index0] %}<tr>{% for cell in row %}{% set h = section.header[loop.index0] %}
{% if h == "link" %}<td>{% if link %}<a href="{{ ui_base }}{{ link }}" target="_top">open in Airflow</a>{% endif %}</td>
{% elif h in amount_columns %}<td class="num">{{ cell }}</td>{% else %}<td>{{ cell }}</td>{% endif %}{% endfor %}</tr>
{% endfor %}</tbody></table>{% else %}<p class="note">None.</p>{% endif %}
{% endfor %}
</body></html>
"""

_TEMPLATE = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string(_PAGE)


def render_finance_page(sections: Sequence[Section], today: date, now: datetime | None = None,
                        ui_base: str = "") -> str:
    """The page as HTML; ``ui_base`` is the path Airflow's UI is served under (empty at the root)."""
    return _TEMPLATE.render(
        sections=sections, today=today.isoformat(), now=local_time(now or datetime.now(timezone.utc)),
        ui_base=ui_base.rstrip("/"), amount_columns={"amount", "total", "amount to refund"},
    )
