"""The four mandate lists of one check, as CSV (``;``) and one HTML page.

Written to ``var/reports/mandate_check/<run date>/``: ``active-ok.csv``,
``active-err.csv``, ``nonactive-ok.csv``, ``nonactive-err.csv`` and
``index.html``. Debtor IBANs are masked (last four characters shown): the
mandate identifier is what finance looks a mandate up by.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from include.config import reports_dir
from include.finance.bulk import Memo
from include.reports import HTML_ROW_LIMIT, CsvReport, Table, write_html
from include.sepa.identifiers import mask_iban
from include.sepa.mandate_check import MandateList, MandateStatus

HEADER = (
    "mandate", "mandate_reference", "active", "end_user", "debtor", "debtor_iban", "hub", "type",
    "frequency", "first_collection_date", "last_collection_date", "end_date", "next_due_date",
    "next_collection_date", "due_now", "eligible_amount", "reasons", "note",
)
ORDER = (MandateList.ACTIVE_ERR, MandateList.NONACTIVE_ERR, MandateList.ACTIVE_OK, MandateList.NONACTIVE_OK)


def _row(m: MandateStatus, days: Memo, ibans: Memo) -> list[object]:
    """One line of a list; csv writes None as empty. ``days`` and ``ibans``: dates in ISO form and masked IBANs, each
    worked out once per list (mandates share them)."""
    return [
        m.loi, m.reference, "yes" if m.active else "no", m.owner_eloi, m.debtor_name, ibans[m.debtor_iban],
        m.hub_code, m.type_code, m.frequency_code, days[m.first_collection_date], days[m.last_collected],
        days[m.end_date], days[m.next_due_date], days[m.next_collection_date],
        ("yes" if m.due else "no") if m.list is MandateList.ACTIVE_OK else None,
        m.eligible_amount, " | ".join(m.reasons), m.note,
    ]


@dataclass
class MandateLists:
    """Where one check's lists went, how many mandates each holds, and which are due now.

    ``due_ids`` travels to mandate execution in the task's return value (XCom), never through a worker's disk:
    the next task may run on another machine. It is written compactly (:func:`compact_ids`).
    """

    folder: str
    counts: dict[str, int]
    due: int = 0
    due_ids: str = ""

    @property
    def html(self) -> str:
        return f"{self.folder}/index.html"


def compact_ids(ids: Iterable[int]) -> str:
    """Ascending ids as runs, ``first-last`` or one id, comma-separated (a due list is mostly runs).

    >>> compact_ids([1, 2, 3, 7, 9, 10])
    '1-3,7,9-10'
    >>> expand_ids(compact_ids([5, 1, 2, 2])) == [1, 2, 5]
    True
    >>> compact_ids([])
    ''
    """
    parts: list[str] = []
    start = previous = None
    for value in sorted(set(ids)):
        if previous is not None and value == previous + 1:
            previous = value
            continue
        if start is not None:
            parts.append(f"{start}-{previous}" if previous != start else str(start))
        start = previous = value
    if start is not None:
        parts.append(f"{start}-{previous}" if previous != start else str(start))
    return ",".join(parts)


def expand_ids(text: str) -> list[int]:
    """The ids :func:`compact_ids` wrote, ascending."""
    ids: list[int] = []
    for part in filter(None, text.split(",")):
        first, _, last = part.partition("-")
        ids.extend(range(int(first), int(last or first) + 1))
    return ids


WRITE_BATCH = 1_000  # rows handed to a list's csv writer at once


def write_mandate_lists(statuses: Iterable[MandateStatus], run_date: date, folder: Path | None = None) -> MandateLists:
    folder = folder or reports_dir() / "mandate_check" / run_date.isoformat()
    csvs = {name: CsvReport(folder / f"{name}.csv", HEADER) for name in MandateList}
    tables = {name: Table(name.value, HEADER, csv_name=f"{name.value}.csv") for name in MandateList}
    pending: dict[MandateList, list[list[object]]] = {name: [] for name in MandateList}
    due: list[int] = []
    days = Memo(lambda day: day.isoformat())
    days[None] = None
    ibans = Memo(mask_iban)
    try:
        for status in statuses:
            row = _row(status, days, ibans)
            rows = pending[status.list]
            rows.append(row)
            if len(rows) == WRITE_BATCH:
                csvs[status.list].write_many(rows)
                rows.clear()
            table = tables[status.list]
            if len(table.rows) < HTML_ROW_LIMIT:  # the page shows the first rows; the CSV has them all
                table.add(row)
            if status.due:
                due.append(status.id)
        for name, rows in pending.items():
            csvs[name].write_many(rows)
    except BaseException as exc:
        for report in csvs.values():
            report.close(exc)
        raise
    for report in csvs.values():
        report.close()
    counts = {name.value: csvs[name].rows for name in MandateList}
    for name, table in tables.items():
        table.total_rows = csvs[name].rows
    write_html(
        folder / "index.html",
        f"Mandate check {run_date.isoformat()}",
        [tables[name] for name in ORDER],
        summary=[("run date", run_date.isoformat()), *counts.items()],
    )
    return MandateLists(str(folder), counts, len(due), compact_ids(due))
