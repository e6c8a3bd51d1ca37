"""Export a collection run as its hub's bank file: SEPA, SAFESEPA, CSV or BXML.

The file lands in the outbox only when complete and (SEPA, SAFESEPA) valid
against the official XSD; beside it ``<file>.sha256``. The run records path,
SHA-256, count and total, and its collections become ``exported``. Exporting
the same run again writes the same bytes: every value in the file comes from
the database (identifiers, the run's creation time), none from the clock.

A run whose hub lacks what a bank file needs, or whose file fails the XSD, is
marked ``failed`` with the reason and no file is released.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import case, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased

from include.config import outbox_dir
from include.errors import ExportRejected, InnenError
from include.files import atomic_writer, sha256_of, write_checksum
from include.finance.audit import audit_row, record_many
from include.finance.db import transaction
from include.finance.models import (
    BankFileApproval,
    BankHub,
    Collection,
    CollectionRun,
    EndUser,
    Mandate,
    PaymentReference,
)
from include.finance.money import ZERO, format_amount
from include.finance.reference_numbers import display_reference
from include.finance.statuses import ApprovalStatus, CollectionStatus, RunStatus
from include.reports import write_csv
from include.sepa.amendments import Amendment
from include.sepa.charset import xml_chars
from include.sepa.hubs import hub_problems
from include.sepa.pain008 import Creditor, Message, PaymentBatch, Transaction, WrittenFile, write_pain008

SEQUENCE_ORDER = ("FRST", "RCUR", "FNAL", "OOFF")
SUFFIX = {"SEPA": "xml", "SAFESEPA": "xml", "CSV": "csv", "BXML": "bxml"}
CSV_HEADER = (
    "run", "hub", "collection_date", "sequence_type", "end_to_end_id", "structured_communication",
    "amount", "currency", "mandate_reference", "signature_date", "debtor_name", "debtor_iban", "debtor_bic",
)
STREAM_BATCH = 5_000


@dataclass
class ExportResult:
    run: str
    status: str
    export_format: str | None
    file_path: str | None = None
    sha256: str | None = None
    transactions: int = 0
    total: str = "0.00"
    message: str = ""


def file_name(hub: BankHub, run: CollectionRun, export_format: str) -> str:
    """``<hub>_<run>.<suffix>``, e.g. ``KBC-BIB_fj-BIB-12.xml`` (no ``:`` in file names)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{hub.code}_{run.loi.replace(':', '-')}")
    return f"{safe}.{SUFFIX[export_format]}"


def _transactions(session: Session, run: CollectionRun, sequence_type: str) -> Iterator[Transaction]:
    debtor = aliased(EndUser)
    kept = Collection.debtor_iban.is_not(None)  # what the collection was made with; else (older rows) the mandate's
    rows = session.execute(
        select(
            Collection.end_to_end_id,
            Collection.amount,
            func.coalesce(Collection.mandate_reference, Mandate.reference),
            Mandate.signature_date,
            debtor.first_name,
            debtor.last_name,
            case((kept, Collection.debtor_iban), else_=Mandate.debtor_iban),
            case((kept, Collection.debtor_bic), else_=Mandate.debtor_bic),
            PaymentReference.reference_number,
            Collection.original_mandate_reference,
            Collection.original_creditor_id,
            Collection.original_debtor_iban,
            Collection.debtor_agent_changed,
        )
        .join(Mandate, Mandate.id == Collection.mandate_id)
        .join(debtor, debtor.id == Mandate.debtor_id)
        .join(PaymentReference, PaymentReference.id == Collection.payment_reference_id)
        .where(Collection.run_id == run.id, Collection.sequence_type == sequence_type,
               Collection.status != CollectionStatus.CANCELLED)
        .order_by(Collection.id),
        execution_options={"yield_per": STREAM_BATCH},
    )
    for (e2e, amount, mandate_ref, signed, first, last, iban, bic, reference,
         original_ref, original_creditor, original_iban, agent_changed) in rows:
        change = None
        if original_ref or original_creditor or original_iban or agent_changed:
            change = Amendment(original_ref, original_creditor, original_iban, bool(agent_changed))
        yield Transaction(
            end_to_end_id=e2e,
            amount=amount,
            mandate_id=mandate_ref,
            signature_date=signed,
            debtor_name=" ".join(p for p in (first, last) if p),
            debtor_iban=iban,
            debtor_bic=bic,
            reference=reference,
            amendment=change,
        )


def _batches(session: Session, run: CollectionRun) -> list[PaymentBatch]:
    """One payment information block per sequence type, with its count and Decimal total.

    A cancelled collection (its reference deleted) is never written: its debt is open again.
    """
    totals: dict[str, list[Any]] = {}
    for seq, amount in session.execute(
        select(Collection.sequence_type, Collection.amount)
        .where(Collection.run_id == run.id, Collection.status != CollectionStatus.CANCELLED)
    ):
        entry = totals.setdefault(seq, [0, ZERO])
        entry[0] += 1
        entry[1] += amount
    return [
        PaymentBatch(
            payment_id=f"{run.loi}/{seq}",
            sequence_type=seq,
            collection_date=run.collection_date,
            count=totals[seq][0],
            total=totals[seq][1],
            transactions=_transactions(session, run, seq),
        )
        for seq in SEQUENCE_ORDER
        if seq in totals
    ]


def _message(run: CollectionRun, hub: BankHub, batches: list[PaymentBatch], safe: bool) -> Message:
    return Message(
        version=hub.pain008_version,
        message_id=run.loi,
        created_at=run.created_at,
        initiator_name=hub.initiator_name or hub.creditor_name or "",
        initiator_id=hub.initiator_id,
        creditor=Creditor(
            name=hub.creditor_name or "",
            iban=hub.creditor_iban or "",
            bic=hub.creditor_bic,
            creditor_id=hub.creditor_id or "",
            street=hub.creditor_street,
            house_number=hub.creditor_house_number,
            postal_code=hub.creditor_postal_code,
            city=hub.creditor_city,
            country=hub.creditor_country,
        ),
        batch_booking=hub.batch_booking,
        local_instrument=hub.local_instrument,
        batches=batches,
        safe=safe,
    )


def _write_csv(path: Path, run: CollectionRun, hub: BankHub, batches: list[PaymentBatch]) -> WrittenFile:
    count, total = 0, ZERO

    def rows() -> Iterator[list[Any]]:
        nonlocal count, total
        for batch in batches:
            seen = count
            for tx in batch.transactions:
                count += 1
                total += tx.amount
                yield [
                    run.loi, hub.code, run.collection_date, batch.sequence_type, tx.end_to_end_id,
                    display_reference(tx.reference), format_amount(tx.amount), hub.currency, tx.mandate_id,
                    tx.signature_date, tx.debtor_name, tx.debtor_iban, tx.debtor_bic,
                ]
            _check_streamed(path, batch, count - seen)
        _check_total(path, batches, total)

    write_csv(path, CSV_HEADER, rows(), bom=False)  # a raise in rows() leaves nothing at path
    return WrittenFile(str(path), sha256_of(path), count, total, path.stat().st_size)


def _write_bxml(path: Path, run: CollectionRun, hub: BankHub, batches: list[PaymentBatch]) -> WrittenFile:
    """A plain XML mapping of the run (seed 2.4.5 BXML), written with lxml's incremental writer."""
    count, total = 0, ZERO
    with atomic_writer(path) as out, etree.xmlfile(out, encoding="UTF-8") as xml:
        xml.write_declaration()
        attributes = {
            "loi": run.loi, "hub": hub.code, "collectionDate": run.collection_date.isoformat(),
            "transactions": str(run.transaction_count), "total": format_amount(run.total_amount),
            "currency": hub.currency,
        }
        with xml.element("collectionRun", _xml_values(attributes)):
            xml.write("\n")
            creditor = {
                "name": hub.creditor_name or "", "iban": hub.creditor_iban or "", "bic": hub.creditor_bic or "",
                "creditorId": hub.creditor_id or "",
            }
            xml.write(etree.Element("creditor", _xml_values(creditor)), "\n")
            for batch in batches:
                seen = count
                for tx in batch.transactions:
                    count += 1
                    total += tx.amount
                    attributes = {
                        "endToEndId": tx.end_to_end_id, "sequenceType": batch.sequence_type,
                        "amount": format_amount(tx.amount), "mandate": tx.mandate_id,
                        "signatureDate": tx.signature_date.isoformat(), "reference": tx.reference,
                        "debtorName": tx.debtor_name, "debtorIban": tx.debtor_iban,
                        "debtorBic": tx.debtor_bic or "",
                    }
                    if tx.amendment is not None:  # only then: files without amendments keep their bytes
                        attributes.update(_amendment_attributes(tx.amendment))
                    element = etree.Element("collection", _xml_values(attributes))
                    xml.write(element, "\n")
                _check_streamed(path, batch, count - seen)
            _check_total(path, batches, total)
    return WrittenFile(str(path), sha256_of(path), count, total, path.stat().st_size)


def _xml_values(attributes: dict[str, str]) -> dict[str, str]:
    """Attribute values without the characters XML cannot carry (a name imported with a control character)."""
    return {name: xml_chars(value) for name, value in attributes.items()}


def _check_streamed(path: Path, batch: PaymentBatch, seen: int) -> None:
    """Raised inside the file's atomic write: a batch that streamed other collections than it declared."""
    if seen != batch.count:
        raise ExportRejected(f"{path.name}: payment {batch.payment_id} declares {batch.count} transactions "
                             f"but holds {seen}")


def _check_total(path: Path, batches: list[PaymentBatch], total: Any) -> None:
    declared = sum((batch.total for batch in batches), ZERO)
    if total != declared:
        raise ExportRejected(f"{path.name}: the collections declare {format_amount(declared)} "
                             f"but hold {format_amount(total)}")


def _amendment_attributes(change: Amendment) -> dict[str, str]:
    """The mandate amendment a collection carries, as BXML attributes (the ones that changed)."""
    attributes = {
        "originalMandate": change.original_mandate_reference, "originalCreditorId": change.original_creditor_id,
        "originalDebtorIban": change.original_debtor_iban,
        "debtorAgentChanged": "true" if change.debtor_agent_changed else None,
    }
    return {name: value for name, value in attributes.items() if value}


@dataclass(frozen=True)
class WrittenRun:
    """A run's file, written and checked, not yet recorded."""

    run_id: int
    run_status: str
    export_format: str
    file: WrittenFile


# A run in one of these states has no file to make: writing one would collect again what the bank paid, or what
# was deleted (and a refusal marked the run failed, losing that state).
_NOT_EXPORTABLE = {RunStatus.CONFIRMED: "the bank paid it", RunStatus.DELETED: "its references were deleted"}


def not_exportable(status: str) -> str | None:
    """Why a run of ``status`` gets no bank file, or None (ready, exported, failed: exported or exported again)."""
    return _NOT_EXPORTABLE.get(RunStatus(status)) if status in set(RunStatus) else None


def write_run_file(
    session: Session, run_loi: str, *, export_format: str | None = None, outbox: Path | None = None
) -> WrittenRun | ExportResult:
    """Write the bank file of ``run_loi`` (reads only); an :class:`ExportResult` when there is nothing to write.

    Raises :class:`ExportRejected` when the hub or the file is refused.
    """
    run = session.scalars(select(CollectionRun).where(CollectionRun.loi == run_loi)).one_or_none()
    if run is None:
        raise InnenError(f"collection run {run_loi} does not exist")
    if why := not_exportable(run.status):
        raise InnenError(f"{run.loi} is {run.status} ({why}): no bank file is made again")
    hub = session.get(BankHub, run.hub_id)
    assert hub is not None
    fmt = export_format or run.export_format or hub.export_format
    if fmt is None:
        return ExportResult(run.loi, run.status, None, message=f"hub {hub.code} has no export format: no file written")
    if fmt not in SUFFIX:
        raise ExportRejected(f"{run.loi}: unknown export format {fmt!r}")
    if problems := hub_problems(hub):
        raise ExportRejected(f"{run.loi}: bank hub {hub.code} cannot collect: " + "; ".join(problems))

    path = (outbox or outbox_dir()) / file_name(hub, run, fmt)
    batches = _batches(session, run)
    if not batches:
        raise ExportRejected(f"{run.loi}: the run has no collections")
    # Checked before anything is written: a file that does not match its run must never appear, not even for a
    # moment, and the file goes to the same path as the run's earlier one, which a refused export must leave as it
    # is. Each writer checks what it streams against the batches before the file is in place.
    count, total = sum(batch.count for batch in batches), sum((batch.total for batch in batches), ZERO)
    if count != run.transaction_count or total != run.total_amount:
        raise ExportRejected(
            f"{path.name}: the run's collections are {count} for {format_amount(total)}, "
            f"the run {run.transaction_count} for {format_amount(run.total_amount)}; no file written"
        )
    if fmt in ("SEPA", "SAFESEPA"):
        written = write_pain008(_message(run, hub, batches, safe=fmt == "SAFESEPA"), path)
    elif fmt == "CSV":
        written = _write_csv(path, run, hub, batches)
    else:
        written = _write_bxml(path, run, hub, batches)
    write_checksum(path, written.sha256)
    return WrittenRun(run.id, run.status, fmt, written)


def record_export(session: Session, written: WrittenRun, actor: str, now: datetime | None = None) -> ExportResult:
    """Mark the run exported with its file, and its pending collections exported."""
    now = now or datetime.now(timezone.utc)
    # Locked: two exports of the same run at once record one after the other, and the second finds the first's.
    run = session.get(CollectionRun, written.run_id, with_for_update=True)
    assert run is not None
    path, sha256 = written.file.path, written.file.sha256
    if run.status == RunStatus.EXPORTED and run.status != written.run_status and run.file_sha256 == sha256 \
            and run.file_path == path:  # the same file, recorded meanwhile by the other export: nothing to add
        return ExportResult(run.loi, RunStatus.EXPORTED, run.export_format, path, sha256, written.file.transactions,
                            format_amount(written.file.total))
    if run.status != written.run_status:
        raise InnenError(f"{run.loi} changed from {written.run_status} to {run.status} while its file was written")
    before = {"status": run.status, "file_sha256": run.file_sha256, "export_format": run.export_format}
    run.status, run.export_format = RunStatus.EXPORTED, written.export_format
    run.file_path, run.file_sha256 = path, sha256
    run.error, run.exported_at = None, now
    audits = [audit_row("collection_run", run.id, "exported", actor, before=before,
                        after={"status": RunStatus.EXPORTED, "file_sha256": sha256,
                               "export_format": written.export_format, "file_path": path}, at=now)]
    pending = session.scalars(select(Collection.id).where(Collection.run_id == run.id,
                                                          Collection.status == CollectionStatus.PENDING)).all()
    if pending:
        session.execute(update(Collection).where(Collection.id.in_(pending)).values(status=CollectionStatus.EXPORTED))
        audits.extend(
            audit_row("collection", cid, "exported", actor, before={"status": CollectionStatus.PENDING},
                      after={"status": CollectionStatus.EXPORTED}, at=now)
            for cid in pending
        )
    record_many(session, audits)
    return ExportResult(run.loi, RunStatus.EXPORTED, written.export_format, path, sha256, written.file.transactions,
                        format_amount(written.file.total))


def export_run(
    session: Session, run_loi: str, actor: str, *, export_format: str | None = None, outbox: Path | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Write and record in one session (tests, small runs); see :func:`export_collection_run`."""
    written = write_run_file(session, run_loi, export_format=export_format, outbox=outbox)
    if isinstance(written, ExportResult):
        return written
    return record_export(session, written, actor, now)


def mark_failed(session: Session, run_loi: str, error: str, actor: str, now: datetime | None = None) -> None:
    """Record why a run produced no file (its own transaction: the export's was rolled back)."""
    run = session.scalars(select(CollectionRun).where(CollectionRun.loi == run_loi)).one()
    before = {"status": run.status, "error": run.error}
    if run.status == RunStatus.EXPORTED:
        # A later re-export failed; the released file still stands for this run.
        record_many(session, [audit_row("collection_run", run.id, "export_failed", actor, before=before,
                                        after={"status": run.status, "error": error}, at=now)])
        return
    run.status, run.error = RunStatus.FAILED, error
    record_many(session, [audit_row("collection_run", run.id, "failed", actor, before=before,
                                    after={"status": RunStatus.FAILED, "error": error}, at=now)])


def export_collection_run(
    run_loi: str, actor: str, *, engine: Engine | None = None, export_format: str | None = None,
    outbox: Path | None = None,
) -> dict[str, Any]:
    """Export one run: write its file in a read-only transaction, then record it in a short one.

    The database is not locked while a large file is written. On refusal the
    run is marked failed (in its own transaction) and the error raised again.
    """
    try:
        with transaction(engine, readonly=True) as session:
            written = write_run_file(session, run_loi, export_format=export_format, outbox=outbox)
        if isinstance(written, ExportResult):
            return asdict(written)
        with transaction(engine) as session:
            return asdict(record_export(session, written, actor))
    except ExportRejected as exc:
        with transaction(engine) as session:
            mark_failed(session, run_loi, str(exc), actor)
        raise


def runs_to_export(session: Session) -> list[str]:
    """Runs waiting for their file: ``ready``, whose hub has an export format, and neither waiting for finance's
    approval nor rejected by finance at their last attempt (that one is exported again by hand)."""
    last = aliased(BankFileApproval)
    undecided_or_rejected = (
        select(BankFileApproval.id)
        .where(
            BankFileApproval.run_id == CollectionRun.id,
            (BankFileApproval.status == ApprovalStatus.WAITING)
            | ((BankFileApproval.status == ApprovalStatus.REJECTED)
               & (BankFileApproval.attempt == select(func.max(last.attempt)).where(last.run_id == CollectionRun.id)
                  .scalar_subquery())),
        )
        .exists()
    )
    rows = session.execute(
        select(CollectionRun.loi)
        .join(BankHub, BankHub.id == CollectionRun.hub_id)
        .where(
            CollectionRun.status == RunStatus.READY,
            CollectionRun.export_format.is_not(None) | BankHub.export_format.is_not(None),
            ~undecided_or_rejected,
        )
        .order_by(CollectionRun.id)
    )
    return list(rows.scalars())
