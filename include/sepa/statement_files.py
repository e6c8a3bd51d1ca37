"""Statement files from the inbox: imported and archived, or refused and quarantined.

``var/inbox/camt053/`` receives the bank's files. Each file is read (safely,
streamed), its balances checked, and booked in one transaction; only then is
it moved to ``var/archive/``. A refused file goes to ``var/quarantine/`` with
``<name>.reason.txt`` saying why (file, statement, element), and nothing from
it is booked. A crash between booking and moving leaves the file in the
inbox, where the next run finds it "already imported" and archives it.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from sqlalchemy.engine import Engine

from include.finance.db import transaction
from include.inbox import Inbox
from include.sepa.camt import MAX_BYTES, CamtRefused, read_camt
from include.sepa.camt_import import ImportResult, check_balances, import_statements, outcome_counts
from include.sepa.control_list import write_control_list
from include.sepa.identifiers import mask_iban, mask_ibans_in
from include.storage import Location, name_of

STATEMENTS = Inbox("camt053", (".xml", ".camt", ".053", ".054"))


def pending_files(source: str | Location | None = None) -> list[Location]:
    """Files to import: ``source`` (a file or a folder), or the camt053 inbox; hidden and partial files skipped."""
    return STATEMENTS.pending(source)


def quarantine(path: Location, reason: str) -> Location:
    return STATEMENTS.refuse(path, reason)


def import_statement_file(
    path: str | Location, actor: str, *, engine: Engine | None = None, max_bytes: int = MAX_BYTES
) -> dict[str, Any]:
    """Import one file; returns a summary. Raises :class:`CamtRefused` after quarantining a refused file.

    The summary names no account in full (it is logged): accounts masked, IBANs in file names and statement
    ids masked, and control lists in folders named after the hub (:func:`include.sepa.control_list.folder_name`).
    """

    def take(path: Location) -> tuple[ImportResult, list[str]]:
        camt = read_camt(path, max_bytes=max_bytes)
        check_balances(camt)
        with transaction(engine) as session:
            result = import_statements(session, camt, actor)
        with transaction(engine, readonly=True) as session:
            reports = [write_control_list(session, statement.statement_db_id).html
                       for statement in result.statements if statement.statement_db_id is not None]
        return result, reports

    (result, reports), archived = STATEMENTS.take(path, take, CamtRefused)
    # Airflow logs what a task returns: accounts masked, and the file's name too (a bank names files after them).
    archived_name = name_of(archived)
    return {
        "file": mask_ibans_in(result.file), "status": result.status,
        "message": mask_ibans_in(result.message),
        "archived": str(archived)[: len(str(archived)) - len(archived_name)] + mask_ibans_in(archived_name),
        "sha256": result.sha256,
        # A bank may name a statement after its account too ("BE68…7034-2026-330").
        "statements": [{**asdict(s), "statement": mask_ibans_in(s.statement), "account": mask_iban(s.account)}
                       for s in result.statements],
        "outcomes": outcome_counts(result.statements), "control_lists": reports,
    }


def max_bytes_setting() -> int:
    """``INNEN_CAMT_MAX_BYTES`` or the default limit."""
    return int(os.environ.get("INNEN_CAMT_MAX_BYTES") or MAX_BYTES)
