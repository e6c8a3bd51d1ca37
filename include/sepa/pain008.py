"""pain.008 (001.02 and 001.08) written fast, streamed, and XSD-validated before release.

How: transactions are string-formatted from a template, a chunk of
:data:`CHUNK` at a time and column by column (an order of magnitude faster
than building elements), and every chunk is validated by lxml against the
official schema as a small document of its own: the file's group header, the
current payment-information header, the chunk's transactions, closed. The
chunks are checked on threads beside the formatting, with memory bounded by
the chunks in flight whatever the file size
(:class:`include.sepa.chunk_validation.ChunkValidator`, which says how and
why). What stays here is what is pain.008's own: the templates, the
formatting, the chunk documents, and where in a pain.008 file a schema
error is (:func:`_location`).

Why that equals validating the whole file: the pain.008 schemas declare no
identity constraints (xs:key/xs:unique/xs:keyref), and ``PmtInf`` and
``DrctDbtTxInf`` are plain repeated particles of sequences. A document is
therefore valid exactly when its group header, each payment-information
header and each transaction is valid in sequence, and every chunk document
shows those same bytes to the validator. (A test checks the claim by
validating produced files whole, with lxml and with xmlschema.)

The file is written to a temporary name and renamed into place only when
every chunk passed; a failing file never appears.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import partial
from itertools import chain, repeat
from pathlib import Path
from typing import NamedTuple

from lxml import etree

from include.errors import ExportRejected
from include.files import atomic_writer
from include.finance.money import ZERO, format_amount
from include.finance.reference_numbers import issuer
from include.sepa.amendments import Amendment
from include.sepa.charset import bank_text, kept_as_is, plain_texts
from include.sepa.chunk_validation import ChunkValidator, chunks
from include.sepa.xsd import namespace, thread_schema

CHUNK = 500  # transactions formatted and validated at a time
SYNC_EVERY = 8 << 20  # bytes written between two flushes to disk
NAME_MAX = 70  # EPC: names and address lines at most 70 characters
ID_MAX = 35


@dataclass(frozen=True, slots=True)
class Creditor:
    name: str
    iban: str
    bic: str | None
    creditor_id: str
    street: str | None = None
    house_number: str | None = None
    postal_code: str | None = None
    city: str | None = None
    country: str | None = None


class Transaction(NamedTuple):
    """One collection as the bank file needs it (a tuple: a million are made per large file)."""

    end_to_end_id: str
    amount: Decimal
    mandate_id: str
    signature_date: date
    debtor_name: str
    debtor_iban: str
    debtor_bic: str | None
    reference: str  # 12-digit OGM or compact RF
    amendment: Amendment | None = None  # what changed in the mandate since its previous collection


@dataclass(slots=True)
class PaymentBatch:
    """One ``PmtInf``: a sequence type and a collection date; count and total known up front."""

    payment_id: str
    sequence_type: str
    collection_date: date
    count: int
    total: Decimal
    transactions: Iterable[Transaction]


@dataclass(slots=True)
class Message:
    version: str  # pain.008.001.02 or pain.008.001.08
    message_id: str
    created_at: datetime
    initiator_name: str
    initiator_id: str | None
    creditor: Creditor
    batch_booking: bool
    local_instrument: str
    batches: list[PaymentBatch]
    safe: bool  # SAFESEPA: EPC basic Latin only


@dataclass(frozen=True, slots=True)
class WrittenFile:
    path: str
    sha256: str
    transactions: int
    total: Decimal
    size: int


class _Templates:
    """Per-version XML fragments; ``%s`` slots are filled with already escaped text.

    The file is compact: the group header, each payment-information header and
    each transaction take one line, so a file reads (and diffs) line by line
    at half the size of an indented one.
    """

    def __init__(self, version: str) -> None:
        self.bic = "BIC" if version == "pain.008.001.02" else "BICFI"
        self.structured_address = version != "pain.008.001.02"
        self.open = f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{namespace(version)}"><CstmrDrctDbtInitn>\n'
        self.close = "</CstmrDrctDbtInitn></Document>\n"
        self.transaction = (
            "<DrctDbtTxInf><PmtId><EndToEndId>%s</EndToEndId></PmtId>"
            '<InstdAmt Ccy="EUR">%s</InstdAmt>'
            "<DrctDbtTx><MndtRltdInf><MndtId>%s</MndtId><DtOfSgntr>%s</DtOfSgntr>%s</MndtRltdInf></DrctDbtTx>"
            "<DbtrAgt><FinInstnId>%s</FinInstnId></DbtrAgt>"
            "<Dbtr><Nm>%s</Nm></Dbtr>"
            "<DbtrAcct><Id><IBAN>%s</IBAN></Id></DbtrAcct>"
            "<RmtInf><Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>%s</Issr></Tp>"
            "<Ref>%s</Ref></CdtrRefInf></Strd></RmtInf></DrctDbtTxInf>\n"
        )
        self.transaction_parts = self.transaction.split("%s")
        self.agents = _Agents(self.bic)
        self.dates = _Dates()

    def agent(self, bic: str | None) -> str:
        """``FinInstnId`` content: the BIC, or NOTPROVIDED (EPC: IBAN-only collections)."""
        return self.agents[bic]


class _Agents(dict[str | None, str]):
    """``FinInstnId`` content per BIC, made on first use (a plain dict lookup per transaction after that)."""

    def __init__(self, bic_element: str) -> None:
        super().__init__()
        self.bic_element = bic_element

    def __missing__(self, bic: str | None) -> str:
        tag = self.bic_element
        agent = f"<{tag}>{_compact(bic)}</{tag}>" if bic else "<Othr><Id>NOTPROVIDED</Id></Othr>"
        if len(self) < 10_000:
            self[bic] = agent
        return agent


class _Dates(dict[date, str]):
    """``YYYY-MM-DD`` per date, made on first use (mandates are signed on a few thousand distinct days)."""

    def __missing__(self, day: date) -> str:
        text = date.isoformat(day)
        if len(self) < 10_000:
            self[day] = text
        return text


_TEMPLATES = {version: _Templates(version) for version in ("pain.008.001.02", "pain.008.001.08")}
_COMPACT = re.compile(r"\s+")


def _id(value: str, safe: bool, what: str = "identifier") -> str:
    """An identifier as the file carries it: escaped, never cut nor reduced, else refused.

    The bank answers (returns, rejects, reports) with these ids, and the
    mandate's id is the one the debtor signed: one altered to fit (cut to 35
    characters, transliterated or ``?`` in SAFESEPA) would tie the answer
    to nothing, or two ids to one.
    """
    if kept_as_is(value, ID_MAX, safe=safe):
        return value
    text = bank_text(value, ID_MAX, safe=safe)
    if value != text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"):
        mode = "SAFESEPA (a-z A-Z 0-9 / - ? : ( ) . , ' + and the space)" if safe else "SEPA"
        raise ExportRejected(f"{what} {value!r} would be written as {text!r}: an id is carried unchanged or not at "
                             f"all; it must be at most {ID_MAX} characters of what {mode} carries")
    return text


_UPPER_ALNUM = re.compile(r"[A-Z0-9]+")


def _compact(value: str) -> str:
    """Identifiers (IBAN, BIC, references) without spaces, upper case."""
    return value if _UPPER_ALNUM.fullmatch(value) else _COMPACT.sub("", value).upper()


def _group_header(message: Message, count: int, total: Decimal) -> str:
    initiator_id = ""
    if message.initiator_id:
        given = _id(message.initiator_id, message.safe, "initiator id")
        initiator_id = f"<Id><OrgId><Othr><Id>{given}</Id></Othr></OrgId></Id>"
    created_at = message.created_at
    if created_at.tzinfo is not None:  # the same instant gives the same bytes whatever the database's time zone
        created_at = created_at.astimezone(timezone.utc)
    created = created_at.replace(tzinfo=None, microsecond=0).isoformat()
    return (
        _TEMPLATES[message.version].open
        + f"<GrpHdr><MsgId>{_id(message.message_id, message.safe, 'message id')}</MsgId><CreDtTm>{created}</CreDtTm>"
        f"<NbOfTxs>{count}</NbOfTxs><CtrlSum>{format_amount(total)}</CtrlSum>"
        f"<InitgPty><Nm>{bank_text(message.initiator_name, NAME_MAX, safe=message.safe)}</Nm>{initiator_id}</InitgPty>"
        "</GrpHdr>\n"
    )


# EPC rulebooks 2025 v1.1: from this interbank settlement date on, an address may no longer be given unstructured
# (address lines only); it must be structured, or hybrid with at least town and country in their own fields.
UNSTRUCTURED_ADDRESS_UNTIL = date(2026, 11, 14)


def _creditor_address(message: Message, collection_date: date) -> str:
    """The creditor's ``PstlAdr`` (optional in SDD), or nothing.

    pain.008.001.08: structured, when the town and the country are known.
    pain.008.001.02: the EPC's guidelines for it allow only the country and
    address lines, an unstructured address; it is written for collections up
    to :data:`UNSTRUCTURED_ADDRESS_UNTIL` and left out after (a hub that must
    show its address moves to .08). The rule goes by the collection date,
    never by today, so exporting a run again gives the same bytes.
    """
    c, safe = message.creditor, message.safe
    if not c.country:
        return ""
    if _TEMPLATES[message.version].structured_address:
        if not c.city:
            return ""
        parts = [
            ("StrtNm", c.street, 70), ("BldgNb", c.house_number, 16), ("PstCd", c.postal_code, 16),
            ("TwnNm", c.city, 35), ("Ctry", c.country, 2),
        ]
        lines = "".join(f"<{tag}>{bank_text(value, size, safe=safe)}</{tag}>" for tag, value, size in parts if value)
    else:
        if collection_date > UNSTRUCTURED_ADDRESS_UNTIL:
            return ""
        street = " ".join(p for p in (c.street, c.house_number) if p)
        town = " ".join(p for p in (c.postal_code, c.city) if p)
        lines = f"<Ctry>{bank_text(c.country, 2, safe=safe)}</Ctry>" + "".join(
            f"<AdrLine>{bank_text(line, NAME_MAX, safe=safe)}</AdrLine>" for line in (street, town) if line
        )
    return f"<PstlAdr>{lines}</PstlAdr>"


def _payment_header(message: Message, batch: PaymentBatch) -> str:
    t, c = _TEMPLATES[message.version], message.creditor
    return (
        f"<PmtInf><PmtInfId>{_id(batch.payment_id, message.safe, 'payment information id')}</PmtInfId>"
        "<PmtMtd>DD</PmtMtd>"
        f"<BtchBookg>{'true' if message.batch_booking else 'false'}</BtchBookg>"
        f"<NbOfTxs>{batch.count}</NbOfTxs><CtrlSum>{format_amount(batch.total)}</CtrlSum>"
        f"<PmtTpInf><SvcLvl><Cd>SEPA</Cd></SvcLvl><LclInstrm><Cd>{message.local_instrument}</Cd></LclInstrm>"
        f"<SeqTp>{batch.sequence_type}</SeqTp></PmtTpInf>"
        f"<ReqdColltnDt>{batch.collection_date.isoformat()}</ReqdColltnDt>"
        f"<Cdtr><Nm>{bank_text(c.name, NAME_MAX, safe=message.safe)}</Nm>{_creditor_address(message, batch.collection_date)}</Cdtr>"
        f"<CdtrAcct><Id><IBAN>{_compact(c.iban)}</IBAN></Id></CdtrAcct>"
        f"<CdtrAgt><FinInstnId>{t.agent(c.bic)}</FinInstnId></CdtrAgt><ChrgBr>SLEV</ChrgBr>"
        f"<CdtrSchmeId><Id><PrvtId><Othr><Id>{_compact(c.creditor_id)}</Id>"
        "<SchmeNm><Prtry>SEPA</Prtry></SchmeNm></Othr></PrvtId></Id></CdtrSchmeId>\n"
    )


_PAYMENT_CLOSE = "</PmtInf>\n"


def _format_chunk(t: _Templates, chunk: list[Transaction], safe: bool) -> tuple[str, Decimal]:
    """The XML of a chunk of transactions, and their total (the hot loop of a large file).

    Column by column: each column is checked once as a whole and only
    reworked value by value when something in it needs it, and the rows are
    put together by C-level loops, not a Python loop per transaction.
    """
    e2es, amounts, mandates, signed, names, ibans, bics, references, amendments = zip(*chunk)
    total = sum(amounts, ZERO)
    if not plain_texts(e2es, ID_MAX, safe=safe):
        e2es = [_id(value, safe, "end-to-end id") for value in e2es]
    if not plain_texts(mandates, ID_MAX, safe=safe):
        mandates = [_id(value, safe, "mandate id") for value in mandates]
    if not plain_texts(names, NAME_MAX, safe=safe):
        names = [bank_text(value, NAME_MAX, safe=safe) for value in names]
    columns = (
        e2es,
        _amounts(amounts),
        mandates,
        map(t.dates.__getitem__, signed),
        _amendments(amendments, safe),
        map(t.agents.__getitem__, bics),
        names,
        _compact_all(ibans),
        _issuers(references),
        _compact_all(references),
    )
    return _fill(t.transaction_parts, columns), total


def _fill(parts: list[str], columns: Iterable[Iterable[str]]) -> str:
    """Rows of a template cut at its slots: ``parts[0] + column0[i] + parts[1] + … + parts[-1]`` for every i.

    The same as ``template % row`` for every row, but with no format string
    parsed per row (a third faster).

    >>> _fill(["<a>", "</a><b>", "</b>\\n"], [["1", "2"], ["x", "y"]])
    '<a>1</a><b>x</b>\\n<a>2</a><b>y</b>\\n'
    """
    interleaved: list[Iterable[str]] = []
    for part, column in zip(parts, columns):
        interleaved += (repeat(part), column)
    interleaved.append(repeat(parts[-1]))
    return "".join(chain.from_iterable(zip(*interleaved)))


_TWO_DECIMAL_TEXTS = re.compile(r"\d+\.\d\d(?:\|\d+\.\d\d)*")


def _amounts(amounts: tuple[Decimal, ...]) -> list[str]:
    """Amounts with two decimals: ``str`` already gives that for amounts kept in cents (NUMERIC(12,2))."""
    texts = list(map(str, amounts))
    if _TWO_DECIMAL_TEXTS.fullmatch("|".join(texts)):
        return texts
    return [f"{amount:.2f}" for amount in amounts]


def _amendments(amendments: tuple[Amendment | None, ...], safe: bool) -> Iterable[str]:
    """``AmdmntInd`` and ``AmdmntInfDtls`` of each transaction, or nothing (nearly always)."""
    if not any(amendments):
        return repeat("", len(amendments))
    return [_amendment(change, safe) if change else "" for change in amendments]


def _amendment(change: Amendment, safe: bool) -> str:
    """The mandate amendment (EPC SDD, AT-24), elements in the schema's order.

    A new bank (SMNDA) never held the old account, so the old IBAN is given
    only for a move within the same bank.
    """
    parts = ["<AmdmntInd>true</AmdmntInd><AmdmntInfDtls>"]
    if change.original_mandate_reference:
        original = _id(change.original_mandate_reference, safe, "original mandate id")
        parts.append(f"<OrgnlMndtId>{original}</OrgnlMndtId>")
    if change.original_creditor_id:
        parts.append(
            f"<OrgnlCdtrSchmeId><Id><PrvtId><Othr><Id>{_compact(change.original_creditor_id)}</Id>"
            "<SchmeNm><Prtry>SEPA</Prtry></SchmeNm></Othr></PrvtId></Id></OrgnlCdtrSchmeId>"
        )
    if change.debtor_agent_changed:
        parts.append("<OrgnlDbtrAgt><FinInstnId><Othr><Id>SMNDA</Id></Othr></FinInstnId></OrgnlDbtrAgt>")
    elif change.original_debtor_iban:
        parts.append(f"<OrgnlDbtrAcct><Id><IBAN>{_compact(change.original_debtor_iban)}</IBAN></Id></OrgnlDbtrAcct>")
    parts.append("</AmdmntInfDtls>")
    return "".join(parts)


def _compact_all(values: tuple[str, ...]) -> Iterable[str]:
    """:func:`_compact` of each value, checked as one string first (IBANs and references nearly always are)."""
    if _UPPER_ALNUM.fullmatch("".join(values)):
        return values
    return [_compact(value) for value in values]


def _issuers(references: tuple[str, ...]) -> Iterable[str]:
    """``Issr`` of each reference: BBA for an OGM (all digits), ISO for an RF reference."""
    if "".join(references).isdigit():
        return repeat("BBA", len(references))
    return [issuer(reference) for reference in references]


def _location(node: etree._Element, first_number: int) -> str:
    """Where a schema error is, for a person: the element's path, and for a transaction its end-to-end id or number.

    >>> doc = etree.fromstring("<Document><CstmrDrctDbtInitn><GrpHdr><InitgPty><Nm/></InitgPty></GrpHdr>"
    ...                        "</CstmrDrctDbtInitn></Document>")
    >>> _location(doc.find("CstmrDrctDbtInitn/GrpHdr/InitgPty/Nm"), 1)
    ' at GrpHdr/InitgPty/Nm'
    """
    names = [etree.QName(e).localname for e in (*reversed(list(node.iterancestors())), node)]
    path = "/".join(names[2:])  # below Document/CstmrDrctDbtInitn
    tx = next((e for e in (node, *node.iterancestors()) if etree.QName(e).localname == "DrctDbtTxInf"), None)
    if tx is None:
        return f" at {path}"
    q = f"{{{etree.QName(tx).namespace}}}" if etree.QName(tx).namespace else ""
    e2e = (tx.findtext(f"{q}PmtId/{q}EndToEndId") or "").strip()
    number = first_number + sum(1 for _ in tx.itersiblings(f"{q}DrctDbtTxInf", preceding=True))
    which = f"{e2e}, " if e2e else ""
    return f" at {path[path.index('DrctDbtTxInf'):]} (transaction {which}number {number} in the file)"


def write_pain008(message: Message, path: Path) -> WrittenFile:
    """Write ``message`` to ``path``, validated chunk by chunk; nothing appears at ``path`` unless valid.

    Raises :class:`ExportRejected` naming the file, the element and the
    transaction of the first schema error, or a mismatch between the declared
    and the streamed count or total.
    """
    if message.version not in _TEMPLATES:
        raise ExportRejected(f"{path.name}: unsupported pain.008 version {message.version}")
    if not message.batches:
        raise ExportRejected(f"{path.name}: no transactions to write")
    templates = _TEMPLATES[message.version]
    count = sum(batch.count for batch in message.batches)
    total = sum((batch.total for batch in message.batches), ZERO)
    group_header = _group_header(message, count, total)
    digest = hashlib.sha256()
    size = unsynced = 0
    with (
        atomic_writer(path) as out,
        ChunkValidator(partial(thread_schema, message.version), path.name, _location) as validator,
    ):

        def emit(text: str) -> bytes:
            nonlocal size, unsynced
            data = text.encode("utf-8")
            out.write(data)
            digest.update(data)
            size += len(data)
            unsynced += len(data)
            if unsynced >= SYNC_EVERY:
                # Start the disk writes now, beside the formatting, instead of one long fsync at the end.
                out.flush()
                validator.sync(out.fileno())
                unsynced = 0
            return data

        envelope_open = emit(group_header)
        envelope_close = (_PAYMENT_CLOSE + templates.close).encode("utf-8")
        written = 0  # transactions of the earlier payment blocks
        for batch in message.batches:
            header = _payment_header(message, batch)
            chunk_open = envelope_open + emit(header)
            seen, seen_total = 0, ZERO
            for chunk in chunks(batch.transactions, CHUNK):
                try:
                    body, chunk_total = _format_chunk(templates, chunk, message.safe)
                except ExportRejected:
                    validator.finish()  # a schema error earlier in the file is told first
                    raise
                validator.submit(chunk_open + emit(body) + envelope_close, written + seen + 1)
                seen += len(chunk)
                seen_total += chunk_total
            if seen != batch.count or seen_total != batch.total:
                # A schema error in a chunk already written comes first in the file, so it is the one told,
                # whichever thread got there first.
                validator.finish()
                raise ExportRejected(
                    f"{path.name}: payment {batch.payment_id} declares {batch.count} transactions for "
                    f"{format_amount(batch.total)} but holds {seen} for {format_amount(seen_total)}"
                )
            emit(_PAYMENT_CLOSE)
            written += seen
        emit(templates.close)
        validator.finish()
    return WrittenFile(str(path), digest.hexdigest(), count, total, size)
