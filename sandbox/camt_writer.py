"""camt.053 bank statements (001.02, .04 and .08) written as banks write them, for tests, the demo and benchmarks.

The statements our importer reads come from banks; this writer makes
realistic ones on demand: one or several ``Stmt`` per file, opening and
closing booked balances, a transaction summary, entries with one
``TxDtls`` each or batch entries with several, returns with their reason,
reversals, Belgian structured communications (OGM, ``Issr`` BBA) and RF
references (``Issr`` ISO). camt.053.001.02 is the default: Belgian banks
send that version.

Like :mod:`include.sepa.pain008`, each entry is string-formatted from a
template (an order of magnitude faster than building elements) and written
out in chunks of :data:`FLUSH_EVERY` entries, so memory stays bounded
whatever the file size. Before the first byte, one pass over each
statement's entries checks them and computes what the header needs ahead
of the entries (closing balance, summary): the entries must be a sequence,
not a one-shot iterator. The file is written atomically and the same input
always gives the same bytes.

The writer does not validate against the XSD (a test tool must also be able
to write a wrong closing balance); the tests validate what it writes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

from include.errors import BankFileError
from include.files import atomic_writer
from include.finance.money import ZERO, format_amount, money
from include.sepa.charset import bank_text, xml_text
from include.sepa.xsd import namespace

VERSIONS = ("camt.053.001.02", "camt.053.001.04", "camt.053.001.08")
DEFAULT_VERSION = "camt.053.001.02"
COPY_CODES = frozenset({"DUPL", "CODU", "COPY"})
STATUSES = frozenset({"BOOK", "PDNG", "INFO"})
FLUSH_EVERY = 1_000  # entries formatted before they are written out
ID_MAX = 35
NAME_MAX = 140
USTRD_MAX = 140

# Bank transaction codes (Domn/Cd, Fmly/Cd, SubFmlyCd) a creditor's statement shows most.
SCT_RECEIVED = ("PMNT", "RCDT", "ESCT")  # SEPA credit transfer received
SDD_COLLECTED = ("PMNT", "RDDT", "ESDD")  # SEPA Core direct debit collected
SDD_RETURNED = ("PMNT", "RDDT", "UPDD")  # direct debit returned unpaid (R-transaction)
SCT_SENT = ("PMNT", "ICDT", "ESCT")  # SEPA credit transfer sent (a refund)


@dataclass(frozen=True, slots=True)
class Tx:
    """One ``TxDtls``; the counterparty is the payer of a credit and the payee of a debit."""

    amount: Decimal  # positive
    end_to_end_id: str | None = None
    account_servicer_ref: str | None = None  # TxDtls/Refs/AcctSvcrRef
    counterparty_name: str | None = None  # RltdPties/Dbtr (credit) or RltdPties/Cdtr (debit)
    counterparty_iban: str | None = None  # RltdPties/DbtrAcct or CdtrAcct
    counterparty_bic: str | None = None  # RltdAgts/DbtrAgt (credit) or CdtrAgt (debit)
    structured_reference: str | None = None  # RmtInf/Strd/CdtrRefInf/Ref, as given
    unstructured: str | None = None  # RmtInf/Ustrd; longer text is split over several Ustrd
    return_reason: str | None = None  # TxDtls/RtrInf/Rsn/Cd, e.g. AM04, MD01
    mandate_id: str | None = None  # TxDtls/Refs/MndtId


@dataclass(frozen=True, slots=True)
class Entry:
    """One ``Ntry``: its amount is the sum of its transactions; several make a batch entry."""

    credit: bool
    booking_date: date
    transactions: tuple[Tx, ...]
    value_date: date | None = None  # default: the booking date
    account_servicer_ref: str | None = None  # Ntry/AcctSvcrRef
    entry_ref: str | None = None  # Ntry/NtryRef
    reversal: bool = False  # Ntry/RvslInd true: CdtDbtInd is the reversal's own direction
    status: str = "BOOK"  # BOOK, PDNG or INFO; only BOOK entries move the booked balance
    bank_tx_code: tuple[str, str, str] = SCT_RECEIVED
    payment_info_id: str | None = None  # NtryDtls/Btch/PmtInfId (the collection's PmtInfId)
    message_id: str | None = None  # NtryDtls/Btch/MsgId (the collection file's MsgId)
    details: bool = True  # False: the batch alone, without TxDtls (a batch-booked collection, as many banks report it)

    @property
    def amount(self) -> Decimal:
        return sum((tx.amount for tx in self.transactions), ZERO)


@dataclass(frozen=True, slots=True)
class Statement:
    """One ``Stmt`` of a file with several (see :func:`write_camt053` for the fields)."""

    account_iban: str
    statement_id: str
    electronic_seq: int | None
    from_date: date
    to_date: date
    opening_balance: Decimal  # signed
    entries: Sequence[Entry]
    account_bic: str | None = None
    owner_name: str | None = None
    legal_seq: int | None = None
    copy: str | None = None  # CpyDplctInd: None, DUPL, CODU or COPY
    closing_balance: Decimal | None = None  # default: opening + booked credits - booked debits
    created_at: datetime | None = None  # default: the message's
    summary: bool = True  # write TxsSummry


@dataclass(frozen=True, slots=True)
class StatementFile:
    """What was written for one statement (a file with several gives one each, same path and digest)."""

    path: str
    sha256: str
    entries: int
    transactions: int
    opening_balance: Decimal
    closing_balance: Decimal  # as written
    statement_id: str = ""
    size: int = 0  # of the whole file, in bytes


class _Side(NamedTuple):
    """The direction-dependent names of a transaction's parties."""

    indicator: str
    party: str
    agent: str


_CREDIT = _Side("CRDT", "Dbtr", "DbtrAgt")
_DEBIT = _Side("DBIT", "Cdtr", "CdtrAgt")


class _Totals(NamedTuple):
    entries: int
    transactions: int
    credits: int
    credit_sum: Decimal
    debits: int
    debit_sum: Decimal
    booked_net: Decimal  # booked credits - booked debits


class _Layout:
    """What differs between the versions; ``{}`` slots take already escaped text."""

    def __init__(self, version: str) -> None:
        v02, v08 = version == "camt.053.001.02", version == "camt.053.001.08"
        self.bic = "BIC" if v02 else "BICFI"
        self.party_wrapped = v08  # Party40Choice: Dbtr/Pty/Nm
        self.amount_in_details = v02  # v02 has no TxDtls/Amt: AmtDtls/TxAmt/Amt
        self.status = "<Sts><Cd>{}</Cd></Sts>" if v08 else "<Sts>{}</Sts>"
        self.net = (
            "<TtlNetNtryAmt>{}</TtlNetNtryAmt><CdtDbtInd>{}</CdtDbtInd>"
            if v02
            else "<TtlNetNtry><Amt>{}</Amt><CdtDbtInd>{}</CdtDbtInd></TtlNetNtry>"
        )
        self.open = f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{namespace(version)}"><BkToCstmrStmt>\n'
        self.close = "</BkToCstmrStmt></Document>\n"
        self._codes: dict[tuple[str, str, str], str] = {}
        self._agents: dict[str, str] = {}

    def bank_tx_code(self, code: tuple[str, str, str]) -> str:
        text = self._codes.get(code)
        if text is None:
            domain, family, sub_family = (xml_text(part) for part in code)
            text = (
                f"<BkTxCd><Domn><Cd>{domain}</Cd><Fmly><Cd>{family}</Cd>"
                f"<SubFmlyCd>{sub_family}</SubFmlyCd></Fmly></Domn></BkTxCd>"
            )
            self._codes[code] = text
        return text

    def agent(self, bic: str) -> str:
        """``FinInstnId`` content for ``bic``."""
        text = self._agents.get(bic)
        if text is None:
            text = f"<{self.bic}>{_identifier(bic)}</{self.bic}>"
            if len(self._agents) < 10_000:
                self._agents[bic] = text
        return text

    def party(self, tag: str, name: str) -> str:
        inner = f"<Nm>{bank_text(name, NAME_MAX, safe=False)}</Nm>"
        return f"<{tag}><Pty>{inner}</Pty></{tag}>" if self.party_wrapped else f"<{tag}>{inner}</{tag}>"


_LAYOUTS = {version: _Layout(version) for version in VERSIONS}
_UPPER_ALNUM = re.compile(r"[A-Z0-9]+")
_WHITESPACE = re.compile(r"\s+")
_OGM_PUNCTUATION = re.compile(r"[+*/\s]")
_RETURN_CODE = re.compile(r"[A-Z0-9]{1,4}")


def _identifier(value: str) -> str:
    """IBAN or BIC without spaces, upper case, escaped (a test may pass a deliberately broken one)."""
    return value if _UPPER_ALNUM.fullmatch(value) else xml_text(_WHITESPACE.sub("", value).upper())


def _optional(tag: str, value: str | None, size: int = ID_MAX) -> str:
    """``<tag>value</tag>``, or nothing for a missing or blank value (the schemas refuse empty text)."""
    if not value:
        return ""
    text = bank_text(value, size, safe=False)
    return f"<{tag}>{text}</{tag}>" if text else ""


def _issuer(reference: str) -> str | None:
    """``Issr`` of a creditor reference: BBA for a 12-digit OGM, ISO for an RF reference, else none.

    >>> _issuer("062000000157"), _issuer("+++062/0000/00157+++"), _issuer("RF170620000001"), _issuer("INV-7")
    ('BBA', 'BBA', 'ISO', None)
    """
    if reference.lstrip()[:2].upper() == "RF":
        return "ISO"
    digits = _OGM_PUNCTUATION.sub("", reference)
    return "BBA" if len(digits) == 12 and digits.isascii() and digits.isdigit() else None


def _unstructured(text: str) -> str:
    """``Ustrd`` elements for ``text``: one per 140 characters, cut at a space where there is one.

    The space at a cut is dropped, so a reader joining the parts with a space gets the text back.
    """
    if len(text) <= USTRD_MAX:
        value = bank_text(text, USTRD_MAX, safe=False)
        return f"<Ustrd>{value}</Ustrd>" if value else ""
    rest = _WHITESPACE.sub(" ", text).strip()
    parts = []
    while rest:
        if len(rest) <= USTRD_MAX:
            piece, rest = rest, ""
        else:
            cut = rest.rfind(" ", 1, USTRD_MAX + 1)
            piece, rest = (rest[:cut], rest[cut + 1 :]) if cut > 0 else (rest[:USTRD_MAX], rest[USTRD_MAX:])
        value = bank_text(piece, USTRD_MAX, safe=False)
        if value:
            parts.append(f"<Ustrd>{value}</Ustrd>")
    return "".join(parts)


def _remittance(tx: Tx) -> str:
    ustrd = _unstructured(tx.unstructured) if tx.unstructured else ""
    strd = ""
    if tx.structured_reference and (ref := bank_text(tx.structured_reference, ID_MAX, safe=False)):
        issuer = _issuer(tx.structured_reference)
        strd = (
            "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry>"
            + (f"<Issr>{issuer}</Issr>" if issuer else "")
            + f"</Tp><Ref>{ref}</Ref></CdtrRefInf></Strd>"
        )
    return f"<RmtInf>{ustrd}{strd}</RmtInf>" if ustrd or strd else ""


def _transaction(layout: _Layout, tx: Tx, side: _Side) -> str:
    """One ``TxDtls``, in the schema's order: Refs, amount, parties, agents, remittance, return."""
    refs = (
        _optional("AcctSvcrRef", tx.account_servicer_ref)
        + _optional("EndToEndId", tx.end_to_end_id)
        + _optional("MndtId", tx.mandate_id)
    )
    amount = f"{tx.amount:.2f}"
    parts = [f"<TxDtls><Refs>{refs}</Refs>" if refs else "<TxDtls>"]
    if layout.amount_in_details:
        parts.append(f'<AmtDtls><TxAmt><Amt Ccy="EUR">{amount}</Amt></TxAmt></AmtDtls>')
    else:
        parts.append(f'<Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{side.indicator}</CdtDbtInd>')
    if tx.counterparty_name or tx.counterparty_iban:
        parts.append("<RltdPties>")
        if tx.counterparty_name:
            parts.append(layout.party(side.party, tx.counterparty_name))
        if tx.counterparty_iban:
            iban = _identifier(tx.counterparty_iban)
            parts.append(f"<{side.party}Acct><Id><IBAN>{iban}</IBAN></Id></{side.party}Acct>")
        parts.append("</RltdPties>")
    if tx.counterparty_bic:
        agent = layout.agent(tx.counterparty_bic)
        parts.append(f"<RltdAgts><{side.agent}><FinInstnId>{agent}</FinInstnId></{side.agent}></RltdAgts>")
    if tx.unstructured or tx.structured_reference:
        parts.append(_remittance(tx))
    if tx.return_reason:
        parts.append(f"<RtrInf><Rsn><Cd>{tx.return_reason}</Cd></Rsn></RtrInf>")
    parts.append("</TxDtls>")
    return "".join(parts)


def _entry(layout: _Layout, entry: Entry) -> str:
    """One ``Ntry`` on one line."""
    side = _CREDIT if entry.credit else _DEBIT
    amount = entry.amount
    booked = entry.booking_date.isoformat()
    value = entry.value_date.isoformat() if entry.value_date is not None else booked
    batch = ""
    if len(entry.transactions) > 1 or entry.payment_info_id or entry.message_id or not entry.details:
        batch = (
            f"<Btch>{_optional('MsgId', entry.message_id)}{_optional('PmtInfId', entry.payment_info_id)}"
            f"<NbOfTxs>{len(entry.transactions)}</NbOfTxs>"
            f'<TtlAmt Ccy="EUR">{amount:.2f}</TtlAmt><CdtDbtInd>{side.indicator}</CdtDbtInd></Btch>'
        )
    details = "".join([_transaction(layout, tx, side) for tx in entry.transactions]) if entry.details else ""
    return (
        f"<Ntry>{_optional('NtryRef', entry.entry_ref)}"
        f'<Amt Ccy="EUR">{amount:.2f}</Amt><CdtDbtInd>{side.indicator}</CdtDbtInd>'
        f"{'<RvslInd>true</RvslInd>' if entry.reversal else ''}{layout.status.format(entry.status)}"
        f"<BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{value}</Dt></ValDt>"
        f"{_optional('AcctSvcrRef', entry.account_servicer_ref)}{layout.bank_tx_code(entry.bank_tx_code)}"
        f"<NtryDtls>{batch}{details}</NtryDtls></Ntry>\n"
    )


def _check(statement: Statement, where: str) -> _Totals:
    """Totals of the statement's entries; refuses what no bank writes (and the schema forbids)."""
    if not statement.statement_id or not statement.statement_id.strip():
        raise BankFileError(f"{where}: a statement needs an Id")
    if statement.copy is not None and statement.copy not in COPY_CODES:
        raise BankFileError(f"{where}: copy indicator {statement.copy!r} is not one of {sorted(COPY_CODES)}")
    if statement.from_date > statement.to_date:
        raise BankFileError(f"{where}: from date {statement.from_date} is after to date {statement.to_date}")
    money(statement.opening_balance)
    if statement.closing_balance is not None:
        money(statement.closing_balance)
    transactions = credits = debits = 0
    credit_sum = debit_sum = booked_net = ZERO
    for n, entry in enumerate(statement.entries, 1):
        if not entry.transactions:
            raise BankFileError(f"{where}: entry {n} has no transactions")
        if entry.status not in STATUSES:
            raise BankFileError(f"{where}: entry {n}: status {entry.status!r} is not one of {sorted(STATUSES)}")
        amount = ZERO
        for tx in entry.transactions:
            value = money(tx.amount)
            if value <= ZERO:
                raise BankFileError(f"{where}: entry {n}: amount {value} is not positive")
            if tx.return_reason is not None and not _RETURN_CODE.fullmatch(tx.return_reason):
                raise BankFileError(f"{where}: entry {n}: return reason {tx.return_reason!r} is not an ISO code")
            amount += value
        transactions += len(entry.transactions)
        if entry.credit:
            credits += 1
            credit_sum += amount
        else:
            debits += 1
            debit_sum += amount
        if entry.status == "BOOK":
            booked_net += amount if entry.credit else -amount
    return _Totals(credits + debits, transactions, credits, credit_sum, debits, debit_sum, booked_net)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _balance(code: str, amount: Decimal, day: date) -> str:
    """A ``Bal``: banks write the sign as the indicator, the amount itself is never negative."""
    return (
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="EUR">{format_amount(abs(amount))}</Amt><CdtDbtInd>{"DBIT" if amount < 0 else "CRDT"}</CdtDbtInd>'
        f"<Dt><Dt>{day.isoformat()}</Dt></Dt></Bal>\n"
    )


def _summary(layout: _Layout, totals: _Totals) -> str:
    net = totals.credit_sum - totals.debit_sum
    return (
        f"<TxsSummry><TtlNtries><NbOfNtries>{totals.entries}</NbOfNtries>"
        f"<Sum>{format_amount(totals.credit_sum + totals.debit_sum)}</Sum>"
        + layout.net.format(format_amount(abs(net)), "DBIT" if net < 0 else "CRDT")
        + "</TtlNtries>"
        f"<TtlCdtNtries><NbOfNtries>{totals.credits}</NbOfNtries>"
        f"<Sum>{format_amount(totals.credit_sum)}</Sum></TtlCdtNtries>"
        f"<TtlDbtNtries><NbOfNtries>{totals.debits}</NbOfNtries>"
        f"<Sum>{format_amount(totals.debit_sum)}</Sum></TtlDbtNtries>"
        "</TxsSummry>\n"
    )


def _statement_header(
    layout: _Layout, statement: Statement, created_at: datetime, totals: _Totals, closing: Decimal
) -> str:
    zone = created_at.tzinfo
    period = (
        f"<FrToDt><FrDtTm>{_timestamp(datetime.combine(statement.from_date, time(0, 0, 0), zone))}</FrDtTm>"
        f"<ToDtTm>{_timestamp(datetime.combine(statement.to_date, time(23, 59, 59), zone))}</ToDtTm></FrToDt>"
    )
    s = statement
    sequence = "" if s.electronic_seq is None else f"<ElctrncSeqNb>{s.electronic_seq}</ElctrncSeqNb>"
    legal = "" if s.legal_seq is None else f"<LglSeqNb>{s.legal_seq}</LglSeqNb>"
    copy = f"<CpyDplctInd>{s.copy}</CpyDplctInd>" if s.copy else ""
    owner = f"<Ownr><Nm>{bank_text(s.owner_name, NAME_MAX, safe=False)}</Nm></Ownr>" if s.owner_name else ""
    servicer = f"<Svcr><FinInstnId>{layout.agent(s.account_bic)}</FinInstnId></Svcr>" if s.account_bic else ""
    return (
        f"<Stmt><Id>{bank_text(statement.statement_id, ID_MAX, safe=False)}</Id>{sequence}{legal}"
        f"<CreDtTm>{_timestamp(created_at)}</CreDtTm>{period}{copy}\n"
        f"<Acct><Id><IBAN>{_identifier(statement.account_iban)}</IBAN></Id><Ccy>EUR</Ccy>{owner}{servicer}</Acct>\n"
        + _balance("OPBD", statement.opening_balance, statement.from_date)
        + _balance("CLBD", closing, statement.to_date)
        + (_summary(layout, totals) if statement.summary else "")
    )


_STATEMENT_CLOSE = "</Stmt>\n"


def write_camt053_multi(
    path: Path,
    statements: Sequence[Statement | Mapping[str, Any]],
    *,
    message_id: str,
    created_at: datetime,
    version: str = DEFAULT_VERSION,
) -> tuple[StatementFile, ...]:
    """Write one ``BkToCstmrStmt`` holding ``statements`` (in order) to ``path``, atomically.

    A statement is a :class:`Statement` or a mapping of its fields (the
    keyword arguments of :func:`write_camt053` without ``path``,
    ``message_id`` and ``version``). Returns one :class:`StatementFile` per
    statement. Raises :class:`BankFileError` for input no bank would write
    (nothing appears at ``path`` then).
    """
    name = Path(path).name
    if version not in _LAYOUTS:
        raise BankFileError(f"{name}: unsupported camt.053 version {version}; use one of {', '.join(VERSIONS)}")
    if not statements:
        raise BankFileError(f"{name}: a statement file holds at least one statement")
    if not message_id or not message_id.strip():
        raise BankFileError(f"{name}: a message needs a MsgId")
    layout = _LAYOUTS[version]
    items = [s if isinstance(s, Statement) else Statement(**s) for s in statements]
    totals = [_check(s, f"{name}: statement {s.statement_id}") for s in items]
    closings = [
        money(s.closing_balance) if s.closing_balance is not None else money(s.opening_balance) + t.booked_net
        for s, t in zip(items, totals, strict=True)
    ]
    digest = hashlib.sha256()
    size = 0
    with atomic_writer(Path(path)) as out:

        def emit(text: str) -> None:
            nonlocal size
            data = text.encode("utf-8")
            out.write(data)
            digest.update(data)
            size += len(data)

        emit(
            layout.open
            + f"<GrpHdr><MsgId>{bank_text(message_id, ID_MAX, safe=False)}</MsgId>"
            f"<CreDtTm>{_timestamp(created_at)}</CreDtTm>"
            "<MsgPgntn><PgNb>1</PgNb><LastPgInd>true</LastPgInd></MsgPgntn></GrpHdr>\n"
        )
        for statement, total, closing in zip(items, totals, closings, strict=True):
            emit(_statement_header(layout, statement, statement.created_at or created_at, total, closing))
            chunk: list[str] = []
            for entry in statement.entries:
                chunk.append(_entry(layout, entry))
                if len(chunk) == FLUSH_EVERY:
                    emit("".join(chunk))
                    chunk.clear()
            emit("".join(chunk) + _STATEMENT_CLOSE)
        emit(layout.close)
    sha256 = digest.hexdigest()
    return tuple(
        StatementFile(
            str(path), sha256, t.entries, t.transactions, money(s.opening_balance), closing, s.statement_id, size
        )
        for s, t, closing in zip(items, totals, closings, strict=True)
    )


def write_camt053(
    path: Path,
    *,
    account_iban: str,
    statement_id: str,
    electronic_seq: int | None,
    created_at: datetime,
    from_date: date,
    to_date: date,
    opening_balance: Decimal,
    entries: Sequence[Entry],
    message_id: str | None = None,
    account_bic: str | None = None,
    owner_name: str | None = None,
    legal_seq: int | None = None,
    copy: str | None = None,
    version: str = DEFAULT_VERSION,
    closing_balance: Decimal | None = None,
    summary: bool = True,
) -> StatementFile:
    """Write a camt.053 file holding one statement of ``account_iban`` to ``path``, atomically.

    ``opening_balance`` is signed (a negative one is written as a DBIT
    balance); the closing balance is the opening plus the booked credits
    minus the booked debits, unless ``closing_balance`` is given (a test of
    the importer's balance check gives a wrong one). ``copy`` is the
    ``CpyDplctInd`` (DUPL, CODU or COPY); ``message_id`` defaults to the
    statement id. The statement period runs from ``from_date`` 00:00:00 to
    ``to_date`` 23:59:59, in the time zone of ``created_at`` if it has one.
    """
    statement = Statement(
        account_iban=account_iban, statement_id=statement_id, electronic_seq=electronic_seq, from_date=from_date,
        to_date=to_date, opening_balance=opening_balance, entries=entries, account_bic=account_bic,
        owner_name=owner_name, legal_seq=legal_seq, copy=copy, closing_balance=closing_balance, summary=summary,
    )
    (written,) = write_camt053_multi(
        path, [statement], message_id=message_id or statement_id, created_at=created_at, version=version
    )
    return written
