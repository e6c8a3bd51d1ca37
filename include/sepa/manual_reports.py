"""Reports of the manual finance DAGs (confirmation, deletion), as CSV and HTML."""

from __future__ import annotations

import re

from include.config import reports_dir
from include.finance.reference_deletion import Deletion
from include.reports import Table, write_csv, write_html
from include.sepa.collection_confirm import Confirmation


def _folder_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", value)


def write_confirmation(result: Confirmation, *, decided_by: str | None = None) -> str:
    """``decided_by``: who chose Confirm in the DAG's question, shown in the report's summary."""
    folder = reports_dir() / "collection_confirm" / _folder_name(result.run)
    header = ("end_to_end_id", "reference", "amount", "open_amount", "status", "note")
    rows = [[c[key] for key in header] for c in result.collections]
    name = "dry-run" if result.dry_run else ("booked" if result.booked else "refused")
    write_csv(folder / f"{name}.csv", header, rows)
    table = Table("Collections", header, csv_name=f"{name}.csv")
    for row in rows:
        table.add(row)
    summary = [("run", result.run), ("received", result.received), ("open total", result.open_total),
               ("difference", result.difference), ("dry run", result.dry_run), ("booked", result.booked),
               ("outcome", result.message)]
    if decided_by:
        summary.append(("confirmed by", decided_by))
    write_html(folder / f"{name}.html", f"Confirmation of {result.run}", [table], summary=summary)
    return str(folder / f"{name}.html")


def write_deletion(result: Deletion, label: str) -> str:
    folder = reports_dir() / "payment_reference_delete" / _folder_name(label)
    name = "dry-run" if result.dry_run else "deleted"
    header = ("reference", "outcome", "reason")
    rows = [[loi, "deleted" if not result.dry_run else "would be deleted", ""] for loi in result.deleted]
    rows += [[r["reference"], "refused", r["reason"]] for r in result.refused]
    write_csv(folder / f"{name}.csv", header, rows)
    table = Table("Payment references", header, csv_name=f"{name}.csv")
    for row in rows:
        table.add(row)
    write_html(folder / f"{name}.html", f"Deletion of payment references ({label})", [table],
               summary=[("dry run", result.dry_run), ("outcome", result.message),
                        ("runs deleted", ", ".join(result.runs_deleted) or "-")])
    return str(folder / f"{name}.html")
