"""Delivery reports end to end: from the inbox or from POM, to the database and finance's action list.

* :func:`analyse_report_file`: a file finance downloaded from the POM portal
  and dropped in ``var/inbox/pom_reports/``. Analysed, it moves to
  ``var/archive/pom_reports/``; refused, to ``var/quarantine/pom_reports/``
  with ``<name>.reason.txt`` saying why (file, line, column), and nothing of it
  is stored.
* :func:`analyse_recent_batches`: the reports of the batches sent since a
  date, fetched with the POM client (``delivery_report_batches`` and
  ``delivery_report``); each is kept in the archive as fetched (a refused one
  in the quarantine, with its reason) and analysed on its own: one refused
  report does not stop the others.
* :func:`fetch_delivery_reports`: the same for every POM account that e-mails
  (:func:`delivery_report_accounts`: the default one and those of the
  invoices sent in the window; seed 003 asks for the report of the school's
  own POM user); one account failing does not stop the others.
* :func:`analyse_report`: the common part, for a path or bytes: check, store
  and diagnose in one transaction, then write each batch's action list.

The summary every entry point returns says where the action list landed
(``var/reports/pom_delivery/<batch>/index.html`` and ``action-list.csv``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine

from include.errors import ConfigError
from include.finance.db import get_engine, transaction
from include.finance.models import PaymentReference, PaymentReferenceType, SentDocument
from include.inbox import Inbox
from include.pom.accounts import DEFAULT_ACCOUNT, PomClients
from include.pom.client import PomError
from include.pom.delivery_action_list import write_action_list
from include.pom.delivery_reader import DeliveryReportRefused, open_delivery_report
from include.pom.delivery_store import store_report
from include.storage import Location

log = logging.getLogger(__name__)

INBOX = "pom_reports"
REPORTS = Inbox(INBOX, (".csv", ".txt"), keep_under=INBOX)
NIGHTLY_HOUR = 3  # the scheduled run in the 03:00-03:14 slot (Brussels) fetches from POM
NIGHTLY_DAYS = 4  # POM retries for 48 hours: a batch is fetched again until it has settled
LOCAL_ZONE = ZoneInfo("Europe/Brussels")


class DeliveryReportSource(Protocol):
    """What :func:`analyse_recent_batches` needs of the POM client."""

    def delivery_report_batches(self, sent_since: date) -> list[str]: ...

    def delivery_report(self, batch: str) -> bytes: ...


def fetch_window(fetch_days: int | None, run_type: Any, moment: datetime | None) -> date | None:
    """The ``sent_since`` date of this run's fetch from POM, or ``None``: no fetch on this run.

    ``fetch_days`` given (a manual run): that many days back. Otherwise only
    the scheduled run in the nightly slot fetches, :data:`NIGHTLY_DAYS` back.
    """
    local = (moment or datetime.now(timezone.utc)).astimezone(LOCAL_ZONE)
    if fetch_days:
        return local.date() - timedelta(days=int(fetch_days))
    scheduled = str(getattr(run_type, "value", run_type) or "") == "scheduled"
    if scheduled and local.hour == NIGHTLY_HOUR and local.minute < 15:
        return local.date() - timedelta(days=NIGHTLY_DAYS)
    return None


def pending_reports(source: str | Location | None = None) -> list[Location]:
    """Reports to analyse: ``source`` (a file or a folder), or the inbox; hidden and partial files skipped."""
    return REPORTS.pending(source)


def analyse_report(
    source: str | Location | bytes, actor: str, *, engine: Engine | None = None, now: datetime | None = None,
    name: str | None = None, batch: str | None = None, source_kind: str = "file",
) -> dict[str, Any]:
    """Check, store and diagnose a report, then write its action lists; raises :class:`DeliveryReportRefused`.

    ``now`` is the moment of the 48-hour rule (default: now). ``batch``: the
    batch the report must be of (the client's fetch).
    """
    now = now or datetime.now(timezone.utc)
    started = time.perf_counter()
    report = open_delivery_report(source, name=name, batch=batch)
    log.info("%s: %s bytes checked (%s, %r) in %.1f s", report.name, report.size, report.encoding_label,
             report.delimiter, time.perf_counter() - started)
    with transaction(engine) as session:
        stored = store_report(session, report, actor, now, source_kind=source_kind)
    log.info("%s: committed after %.1f s", report.name, time.perf_counter() - started)
    lists = []
    with transaction(engine, readonly=True) as session:
        for result in stored:
            action_list = write_action_list(session, result.report_id)
            lists.append({"batch": result.batch, "html": action_list.html, "csv": action_list.csv,
                          "delivered_csv": action_list.delivered_csv})
    log.info("%s: action lists written after %.1f s", report.name, time.perf_counter() - started)
    summary: dict[str, int] = {}
    for result in stored:
        for code, count in result.summary.items():
            summary[code] = summary.get(code, 0) + count
    return {
        "file": report.name, "sha256": report.sha256, "encoding": report.encoding_label,
        "separator": {";": "semicolon", ",": "comma", "\t": "tab"}[report.delimiter],
        "ignored_columns": report.ignored, "as_of": now.isoformat(),
        "lines": sum(r.lines for r in stored), "recipients": sum(r.recipients for r in stored),
        "summary": summary, "action_lists": lists,
        "batches": [{"report_id": r.report_id, "batch": r.batch, "lines": r.lines, "recipients": r.recipients,
                     "summary": r.summary, "replaced": r.replaced} for r in stored],
    }


def analyse_report_file(
    path: str | Location, actor: str, engine: Engine | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Analyse one file from the inbox and archive it; a refused file is quarantined, then the refusal raised."""
    result, archived = REPORTS.take(path, lambda found: analyse_report(found, actor, engine=engine, now=now),
                                    DeliveryReportRefused)
    result["archived"] = str(archived)
    return result


def _fetched_name(batch: str, fetched_at: datetime) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", batch).strip("-.") or "batch"
    return f"{safe}_{fetched_at.strftime('%Y%m%dT%H%M%SZ')}.csv"


def analyse_fetched_report(
    batch: str, data: bytes, actor: str, *, engine: Engine | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """Analyse a report the POM client fetched for ``batch``; kept in the archive (or the quarantine) as fetched."""
    fetched_at = datetime.now(timezone.utc)
    name = _fetched_name(batch, fetched_at)
    try:
        result = analyse_report(data, actor, engine=engine, now=now, name=name, batch=batch, source_kind="pom")
    except DeliveryReportRefused as refusal:
        REPORTS.keep(name, data, str(refusal))
        raise
    result["archived"] = str(REPORTS.keep(name, data))
    return result


def analyse_recent_batches(
    client: DeliveryReportSource, sent_since: date, actor: str, *, engine: Engine | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Fetch and analyse the report of every batch POM lists as sent since ``sent_since``.

    Returns ``{"analysed": [...summaries], "refused": {batch: message}}``; the
    caller decides whether a refusal fails the run (the DAG does, after all
    batches had their turn).
    """
    analysed, refused = [], {}
    for batch in client.delivery_report_batches(sent_since):
        data = client.delivery_report(batch)
        try:
            analysed.append(analyse_fetched_report(batch, data, actor, engine=engine, now=now))
        except DeliveryReportRefused as refusal:
            refused[batch] = str(refusal)
    return {"sent_since": sent_since.isoformat(), "analysed": analysed, "refused": refused}


def delivery_report_accounts(sent_since: date, engine: Engine | None = None) -> set[str]:
    """The POM accounts whose reports to fetch: the default one, and those that e-mailed invoices on or after
    ``sent_since`` (a batch goes out through its invoices' reference type's account, :mod:`include.invoices.mailing`)."""
    since = datetime.combine(sent_since, datetime.min.time(), LOCAL_ZONE).astimezone(timezone.utc)
    with transaction(engine or get_engine(), readonly=True) as session:
        names = session.scalars(
            select(PaymentReferenceType.pom_account).distinct()
            .join(PaymentReference, PaymentReference.type_id == PaymentReferenceType.id)
            .join(SentDocument, SentDocument.payment_reference_id == PaymentReference.id)
            .where(SentDocument.sent_at >= since)).all()
    return {DEFAULT_ACCOUNT} | {name or DEFAULT_ACCOUNT for name in names}


def fetch_delivery_reports(
    clients: PomClients, accounts: Iterable[str], sent_since: date, actor: str, *, engine: Engine | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """:func:`analyse_recent_batches` for each account; ``failed``: the accounts that could not be read (no
    Connection, credentials refused, POM unavailable) with the reason, the others done all the same."""
    merged: dict[str, Any] = {"sent_since": sent_since.isoformat(), "analysed": [], "refused": {}, "failed": {}}
    for account in sorted(set(accounts)):
        try:
            result = analyse_recent_batches(clients.client(account), sent_since, actor, engine=engine, now=now)
        except (ConfigError, PomError) as exc:
            log.error("delivery reports of POM account %s not fetched: %s", account, exc)
            merged["failed"][account] = str(exc)
            continue
        merged["analysed"].extend(result["analysed"])
        merged["refused"].update(result["refused"])
    return merged
