"""Reading bank statements (camt.053.001.02 to .13) and notifications (camt.054), safely and streamed.

Safety first: a file larger than the limit, empty, not UTF-8, or carrying a
DTD or entity declaration is refused before the XML parser sees it; the
parser then runs with entities, DTD loading and network off. The document is
read with ``iterparse`` and every entry is cleared once read, so memory holds
one entry of XML at a time (plus the compact values taken from it), whatever
the file's size.

Every refusal is a :class:`CamtRefused` naming the file, the statement and
the element, e.g. ``bank.xml: statement 2024-001: Ntry[17]/Amt: not an
amount: '12,50'``.

What we tolerate (real banks send it): elements we do not use, in any order
the bank likes; missing balances (then no balance check); a balance without
its credit/debit indicator (read as credit); an entry without status (read
as booked; a status given only as ``Sts/Prtry`` is that status, so a
proprietary pending entry is not booked); a statement without
an electronic sequence number; ``NOTPROVIDED`` as an end-to-end id (read as
none); booking dates given as date-times; a reversal indicator written ``1``
(an XML boolean); a batch entry whose transactions carry no amounts (kept as
one line for a person to split).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, BinaryIO

from lxml import etree

from include.errors import BankFileError, echoed
from include.files import parse_source
from include.finance.models import BankEntry, BankStatement
from include.finance.money import ZERO
from include.storage import Location, location

MAX_BYTES = 160 * 1024 * 1024
PROLOG_BYTES = 4096

# The versions read: every camt.053 and camt.054 from .02 to .13. What we read of an entry (amounts,
# indicators, dates, references, parties, agents, remittance and return information) keeps its local names
# across them; where a version renamed an element (Sts vs Sts/Cd, Dbtr/Nm vs Dbtr/Pty/Nm, BIC vs BICFI, a
# transaction's Amt vs AmtDtls/TxAmt/Amt) both names are read. A bank moving to a newer version is then no
# reason to refuse its statements.
VERSIONS = range(2, 14)
_MESSAGES = {"camt.053": ("BkToCstmrStmt", "Stmt"), "camt.054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn")}
# namespace -> (kind, version, message element, statement element)
FORMATS = {
    f"urn:iso:std:iso:20022:tech:xsd:{kind}.001.{number:02d}": (kind, f"{kind}.001.{number:02d}", *elements)
    for kind, elements in _MESSAGES.items() for number in VERSIONS
}
NOT_PROVIDED = {"", "NOTPROVIDED", "NOT PROVIDED"}

# What is read lands in bounded columns: a longer value would pass the reader and then fail the booking on
# PostgreSQL (a database error, not a refusal: no quarantine, the file tried again and again). The bounds are
# the columns' own, so that they cannot drift apart.
_STATEMENT_TABLE, _ENTRY_TABLE = BankStatement.__table__.c, BankEntry.__table__.c
# Identifiers, and what entries are matched and told apart by: one cut short would name another statement,
# account or payment, so a longer one refuses the file.
STATEMENT_ID_MAX = _STATEMENT_TABLE.statement_id.type.length
MESSAGE_ID_MAX = _STATEMENT_TABLE.message_id.type.length
ACCOUNT_MAX = _STATEMENT_TABLE.account.type.length  # the account's IBAN, or its other id
COPY_MAX = _STATEMENT_TABLE.copy_indicator.type.length
CURRENCY = re.compile(f"[A-Z]{{{_STATEMENT_TABLE.currency.type.length}}}")  # ISO 4217
STATUS_MAX = _ENTRY_TABLE.status.type.length
ENTRY_REF_MAX = _ENTRY_TABLE.entry_ref.type.length
SERVICER_REF_MAX = _ENTRY_TABLE.account_servicer_ref.type.length  # the entry's or the transaction's
END_TO_END_MAX = _ENTRY_TABLE.end_to_end_id.type.length
COUNTERPARTY_IBAN_MAX = _ENTRY_TABLE.counterparty_iban.type.length
# Only shown to people: a longer one is cut, rather than the whole statement refused for one payer's long name.
NAME_MAX = _ENTRY_TABLE.counterparty_name.type.length
BIC_MAX = _ENTRY_TABLE.counterparty_bic.type.length
BANK_TX_CODE_MAX = _ENTRY_TABLE.bank_tx_code.type.length
# Cut where it is stored (include.sepa.camt_import): the line keeps the whole code, which the hub's list of
# reasons that block a mandate is compared with.
RETURN_REASON_MAX = _ENTRY_TABLE.return_reason.type.length


class CamtRefused(BankFileError):
    """A bank file we will not book from; the message names file, statement and element."""

    def __init__(self, file: str, reason: str, *, statement: str | None = None, element: str | None = None) -> None:
        self.file, self.reason, self.statement, self.element = file, reason, statement, element
        where = "".join(
            [f": statement {statement}" if statement else "", f": element {element}" if element else ""]
        )
        super().__init__(f"{file}{where}: {reason}")


@dataclass(slots=True)
class EntryLine:
    """One booked movement: a transaction of an entry (a batch entry gives several)."""

    entry_index: int  # the entry's position in its statement, from 1
    tx_index: int  # the transaction's position in its entry, from 1
    amount: Decimal  # positive
    credit: bool
    reversal: bool
    status: str  # BOOK, PDNG, INFO
    booking_date: date | None
    value_date: date | None
    entry_amount: Decimal
    entry_ref: str | None = None
    entry_servicer_ref: str | None = None
    tx_servicer_ref: str | None = None
    end_to_end_id: str | None = None
    bank_tx_code: str | None = None
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    counterparty_bic: str | None = None
    structured_refs: tuple[str, ...] = ()
    unstructured: str | None = None  # RmtInf/Ustrd
    # AddtlTxInf or Strd/AddtlRmtInf, or the entry's AddtlNtryInf for a single transaction: searched for a
    # reference when there is no Ustrd (some banks put the payer's communication only there); not part of an
    # entry's fingerprint.
    additional_info: str | None = None
    return_reason: str | None = None
    unsplit_batch: bool = False  # a batch whose transactions carry no (or inconsistent) amounts
    # NtryDtls/Btch: the payment block (PmtInfId) and message (MsgId) a batch entry books, as the creditor's own
    # file named them; how a bank reports a batch-booked direct-debit collection, often without TxDtls.
    batch_payment_id: str | None = None
    batch_message_id: str | None = None

    @property
    def free_text(self) -> str | None:
        """The payer's free text: ``Ustrd``, else the bank's additional information."""
        return self.unstructured or self.additional_info


@dataclass(slots=True)
class Statement:
    kind: str
    version: str
    statement_id: str
    electronic_seq: int | None = None
    legal_seq: int | None = None
    created_at: datetime | None = None
    from_date: date | None = None
    to_date: date | None = None
    copy: str | None = None  # CpyDplctInd: COPY, DUPL or CODU
    # A statement too long for one message comes in pages, each with the statement's id and sequence number:
    # StmtPgntn/PgNb, else the message's GrpHdr/MsgPgntn/PgNb.
    page: int | None = None
    account_iban: str | None = None
    account_other: str | None = None
    currency: str | None = None
    opening_balance: Decimal | None = None  # signed
    closing_balance: Decimal | None = None  # signed
    lines: list[EntryLine] = field(default_factory=list)
    entries: int = 0

    @property
    def account(self) -> str:
        return self.account_iban or self.account_other or ""

    @property
    def is_copy(self) -> bool:
        return self.copy in ("DUPL", "CODU")

    def booked_movement(self) -> Decimal:
        """Credits minus debits of the booked entries (each entry once, batch or not)."""
        total = ZERO
        seen: set[int] = set()
        for line in self.lines:
            if line.status != "BOOK" or line.entry_index in seen:
                continue
            seen.add(line.entry_index)
            total += line.entry_amount if line.credit else -line.entry_amount
        return total


@dataclass(slots=True)
class CamtFile:
    path: str
    kind: str
    version: str
    message_id: str | None
    created_at: datetime | None
    statements: list[Statement]


_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _check_prolog(path: Location, max_bytes: int) -> None:
    name = path.name
    size = path.stat().st_size
    if size == 0:
        raise CamtRefused(name, "the file is empty")
    if size > max_bytes:
        raise CamtRefused(name, f"the file is {size} bytes, above the limit of {max_bytes} bytes")
    with path.open("rb") as handle:
        head = handle.read(PROLOG_BYTES)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:200]:
        raise CamtRefused(name, "not UTF-8 (UTF-16 or binary content); ISO 20022 files are UTF-8")
    body = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    match = _ENCODING.match(body)
    if match and match.group(1).decode("ascii").lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise CamtRefused(name, f"declared encoding {match.group(1).decode()} is not UTF-8")
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise CamtRefused(name, "a DTD or entity declaration is present; bank statements have none")


class _Reader:
    """Pulls values out of one element with namespace-qualified paths."""

    def __init__(self, namespace: str) -> None:
        self.ns = {"c": namespace}
        self.q = f"{{{namespace}}}"

    def text(self, element: etree._Element, path: str) -> str | None:
        value = element.findtext(path, namespaces=self.ns)
        return value.strip() if value is not None and value.strip() else None

    def texts(self, element: etree._Element, path: str) -> list[str]:
        return [v.strip() for v in (e.text for e in element.iterfind(path, namespaces=self.ns)) if v and v.strip()]


_DECIMAL = re.compile(r"\d{1,18}(\.\d{1,5})?")  # xs:decimal as ISO 20022 amounts allow: no sign, no exponent
_INTEGER = re.compile(r"\d{1,18}")
MAX_AMOUNT = Decimal("9999999999.99")  # what NUMERIC(12,2) holds


def _amount(value: str | None, where: str, file: str, statement: str | None) -> Decimal:
    amount = _AMOUNTS.get(value)  # type: ignore[arg-type]
    if amount is not None:
        return amount
    if value is None:
        raise CamtRefused(file, "amount missing", statement=statement, element=where)
    if not _DECIMAL.fullmatch(value):
        raise CamtRefused(file, f"not an amount: {echoed(value)}", statement=statement, element=where)
    amount = Decimal(value)
    if amount > MAX_AMOUNT:
        raise CamtRefused(file, f"amount {value} is above {MAX_AMOUNT}", statement=statement, element=where)
    if amount != amount.quantize(Decimal("0.01")):
        raise CamtRefused(file, f"not an amount in cents: {echoed(value)}", statement=statement, element=where)
    if len(_AMOUNTS) >= _KNOWN_AMOUNTS:
        _AMOUNTS.clear()
    amount = _AMOUNTS[value] = amount.quantize(Decimal("0.01"))
    return amount


# Amounts read so far, by their text: a statement repeats its amounts, and a Decimal is immutable.
_AMOUNTS: dict[str, Decimal] = {}
_KNOWN_AMOUNTS = 50_000


def _day(value: str | None, where: str, file: str, statement: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise CamtRefused(file, f"not a date: {echoed(value)}", statement=statement, element=where) from None


def _moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _integer(value: str | None, where: str, file: str, statement: str | None) -> int | None:
    if value is None:
        return None
    if not _INTEGER.fullmatch(value):
        raise CamtRefused(file, f"not a sequence number: {echoed(value)}", statement=statement, element=where)
    return int(value)


def _credit_debit(value: str | None, where: str, file: str, statement: str | None) -> bool:
    if value not in ("CRDT", "DBIT"):
        reason = ("credit/debit indicator missing" if value is None
                  else f"credit/debit indicator {echoed(value)} is neither CRDT nor DBIT")
        raise CamtRefused(file, reason, statement=statement, element=where)
    return value == "CRDT"


def _exact(value: str | None, limit: int, what: str, where: str, path: str, file: str,
           statement: str | None) -> str | None:
    """``value``, refused if its column cannot hold it (``where``/``path`` is the element, joined only then)."""
    if value is not None and len(value) > limit:
        raise CamtRefused(file, f"{what} too long: {len(value)} characters (at most {limit} characters)",
                          statement=statement, element=f"{where}/{path}" if where else path)
    return value


def _refuse_too_long(file: str, statement: str | None, where: str,
                     *values: tuple[str | None, int, str, str]) -> None:
    """Refuses the first of ``values`` (value, limit, what, path below ``where``) that is too long."""
    for value, limit, what, path in values:
        _exact(value, limit, what, where, path, file, statement)


class _StatementReader:
    def __init__(self, r: _Reader, file: str) -> None:
        self.r, self.file = r, file
        self.entry_plan = _plan(r.q, _ENTRY_PATHS)
        self.tx_plan = _plan(r.q, _TX_PATHS)

    def header_element(self, st: Statement, el: etree._Element, local: str) -> None:
        r, file = self.r, self.file
        if local == "Id":
            st.statement_id = _exact((el.text or "").strip(), STATEMENT_ID_MAX, "statement id",
                                     _statement_tag(st.version), "Id", file, None) or ""
        elif local == "ElctrncSeqNb":
            st.electronic_seq = _integer((el.text or "").strip() or None, "ElctrncSeqNb", file, st.statement_id)
        elif local == "LglSeqNb":
            st.legal_seq = _integer((el.text or "").strip() or None, "LglSeqNb", file, st.statement_id)
        elif local == "CreDtTm":
            st.created_at = _moment((el.text or "").strip())
        elif local == "FrToDt":
            st.from_date = _day(r.text(el, "c:FrDtTm"), "FrToDt/FrDtTm", file, st.statement_id)
            st.to_date = _day(r.text(el, "c:ToDtTm"), "FrToDt/ToDtTm", file, st.statement_id)
        elif local == "StmtPgntn":
            st.page = _integer(r.text(el, "c:PgNb"), "StmtPgntn/PgNb", file, st.statement_id)
        elif local == "CpyDplctInd":
            st.copy = _exact((el.text or "").strip() or None, COPY_MAX, "copy indicator", "", local, file,
                             st.statement_id)
        elif local == "Acct":
            sid = st.statement_id
            iban = (r.text(el, "c:Id/c:IBAN") or "").replace(" ", "").upper() or None
            st.account_iban = _exact(iban, ACCOUNT_MAX, "account IBAN", "Acct", "Id/IBAN", file, sid)
            st.account_other = _exact(r.text(el, "c:Id/c:Othr/c:Id"), ACCOUNT_MAX, "account id", "Acct",
                                      "Id/Othr/Id", file, sid)
            currency = r.text(el, "c:Ccy")
            if currency is not None and not CURRENCY.fullmatch(currency):
                raise CamtRefused(file, f"not a currency code (three capital letters): {echoed(currency)}",
                                  statement=sid, element="Acct/Ccy")
            st.currency = currency
        elif local == "Bal":
            self._balance(st, el)

    def _balance(self, st: Statement, el: etree._Element) -> None:
        r = self.r
        code = r.text(el, "c:Tp/c:CdOrPrtry/c:Cd") or r.text(el, "c:Tp/c:CdOrPrtry/c:Prtry")
        if code not in ("OPBD", "PRCD", "CLBD"):
            return
        amount = _amount(r.text(el, "c:Amt"), f"Bal[{code}]/Amt", self.file, st.statement_id)
        indicator = r.text(el, "c:CdtDbtInd") or "CRDT"  # tolerated: some banks leave it out of positive balances
        signed = amount if _credit_debit(indicator, f"Bal[{code}]/CdtDbtInd", self.file, st.statement_id) else -amount
        if code == "CLBD":
            st.closing_balance = signed
        elif code == "OPBD" or st.opening_balance is None:
            st.opening_balance = signed

    def entry(self, st: Statement, ntry: etree._Element) -> None:
        file, sid = self.file, st.statement_id
        st.entries += 1
        index = st.entries
        where = f"Ntry[{index}]"
        details: list[etree._Element] = []
        values = _leaves(ntry, self.entry_plan, self.r.q, details)
        first = {path: found[0] for path, found in values.items()}.get
        amount = _amount(first("Amt"), f"{where}/Amt", file, sid)
        credit = _credit_debit(first("CdtDbtInd"), f"{where}/CdtDbtInd", file, sid)
        status = first("Sts/Cd") or first("Sts/Prtry") or first("Sts") or "BOOK"
        entry_ref, servicer_ref = first("NtryRef"), first("AcctSvcrRef")
        # One test for the common case (every entry), the element named only for a value too long.
        if (len(status) > STATUS_MAX or len(entry_ref or "") > ENTRY_REF_MAX
                or len(servicer_ref or "") > SERVICER_REF_MAX):
            _refuse_too_long(file, sid, where, (status, STATUS_MAX, "entry status", "Sts"),
                             (entry_ref, ENTRY_REF_MAX, "entry reference", "NtryRef"),
                             (servicer_ref, SERVICER_REF_MAX, "bank reference", "AcctSvcrRef"))
        reversal = first("RvslInd") in ("true", "1")  # xs:boolean: "1" is as true as "true"
        booking = _day(first("BookgDt/Dt") or first("BookgDt/DtTm"), f"{where}/BookgDt", file, sid)
        value = _day(first("ValDt/Dt") or first("ValDt/DtTm"), f"{where}/ValDt", file, sid)
        domain = first("BkTxCd/Domn/Cd")
        tx_code = (
            "/".join(p for p in (domain, first("BkTxCd/Domn/Fmly/Cd"), first("BkTxCd/Domn/Fmly/SubFmlyCd")) if p)
            if domain
            else first("BkTxCd/Prtry/Cd")
        )
        common = {
            "entry_index": index, "credit": credit, "reversal": reversal, "status": status, "booking_date": booking,
            "value_date": value, "entry_amount": amount, "entry_ref": entry_ref, "entry_servicer_ref": servicer_ref,
            "bank_tx_code": tx_code and tx_code[:BANK_TX_CODE_MAX],
            "batch_payment_id": first("NtryDtls/Btch/PmtInfId"), "batch_message_id": first("NtryDtls/Btch/MsgId"),
        }
        # Free text outside RmtInf: some banks give the payer's communication only there.
        entry_text = " ".join(values.get("AddtlNtryInf", ())) or None
        if not details:
            st.lines.append(EntryLine(tx_index=1, amount=amount, additional_info=entry_text, **common))
            return
        transactions = [_leaves(tx, self.tx_plan, self.r.q) for tx in details]
        places = [f"{where}/NtryDtls/TxDtls[{n}]" for n in range(1, len(transactions) + 1)]
        amounts = [self._tx_amount(tx, place, sid) for tx, place in zip(transactions, places, strict=True)]
        if len(transactions) == 1:
            amounts = [amount]
        unsplit = any(a is None for a in amounts) or sum((a or ZERO for a in amounts), ZERO) != amount
        if unsplit:
            # We cannot split the entry: keep it whole, with the first transaction's details, for a person.
            st.lines.append(EntryLine(tx_index=1, amount=amount, unsplit_batch=True, **common,
                                      **self._tx(transactions[0], credit, entry_text, places[0], sid)))
            return
        own_text = entry_text if len(transactions) == 1 else None  # a batch's entry text is not one payer's
        for n, (tx, tx_amount, place) in enumerate(zip(transactions, amounts, places, strict=True), 1):
            st.lines.append(EntryLine(tx_index=n, amount=tx_amount, **common,  # type: ignore[arg-type]
                                      **self._tx(tx, credit, own_text, place, sid)))

    def _tx_amount(self, tx: dict[str, list[str]], where: str, sid: str) -> Decimal | None:
        for path in ("Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt"):
            found = tx.get(path)
            if found:
                return _amount(found[0], f"{where}/{path}", self.file, sid)
        return None

    def _tx(self, tx: dict[str, list[str]], credit: bool, entry_text: str | None, where: str,
            sid: str) -> dict[str, object]:
        """A transaction's fields (``where``: its element); ``additional_info`` is its ``AddtlTxInf`` or
        ``Strd/AddtlRmtInf``, else ``entry_text``."""
        first = {path: found[0] for path, found in tx.items()}.get
        party, agent = ("Dbtr", "DbtrAgt") if credit else ("Cdtr", "CdtrAgt")
        reference = first("Refs/AcctSvcrRef")
        e2e = first("Refs/EndToEndId")
        if e2e is not None and e2e.upper() in NOT_PROVIDED:
            e2e = None
        iban = first(f"RltdPties/{party}Acct/Id/IBAN")
        if iban is not None:
            iban = iban.replace(" ", "").upper()
        if (len(reference or "") > SERVICER_REF_MAX or len(e2e or "") > END_TO_END_MAX
                or len(iban or "") > COUNTERPARTY_IBAN_MAX):
            _refuse_too_long(self.file, sid, where, (reference, SERVICER_REF_MAX, "bank reference", "Refs/AcctSvcrRef"),
                             (e2e, END_TO_END_MAX, "end-to-end id", "Refs/EndToEndId"),
                             (iban, COUNTERPARTY_IBAN_MAX, "counterparty IBAN", f"RltdPties/{party}Acct/Id/IBAN"))
        name = first(f"RltdPties/{party}/Nm") or first(f"RltdPties/{party}/Pty/Nm")
        bic = first(f"RltdAgts/{agent}/FinInstnId/BIC") or first(f"RltdAgts/{agent}/FinInstnId/BICFI")
        return {
            "tx_servicer_ref": reference,
            "end_to_end_id": e2e,
            "counterparty_name": name and name[:NAME_MAX],
            "counterparty_iban": iban,
            "counterparty_bic": bic and bic[:BIC_MAX],
            "structured_refs": tuple(tx.get("RmtInf/Strd/CdtrRefInf/Ref", ())),
            "unstructured": " ".join(tx.get("RmtInf/Ustrd", ())) or None,
            "additional_info": " ".join(tx.get("AddtlTxInf", ()) or tx.get("RmtInf/Strd/AddtlRmtInf", ())) or entry_text,
            "return_reason": first("RtrInf/Rsn/Cd") or first("RtrInf/Rsn/Prtry"),
        }


# The paths (local names joined by "/") read below an entry and below each of its transactions.
_ENTRY_PATHS = (
    "Amt", "CdtDbtInd", "Sts", "Sts/Cd", "Sts/Prtry", "RvslInd", "BookgDt/Dt", "BookgDt/DtTm", "ValDt/Dt", "ValDt/DtTm", "NtryRef",
    "AcctSvcrRef", "BkTxCd/Domn/Cd", "BkTxCd/Domn/Fmly/Cd", "BkTxCd/Domn/Fmly/SubFmlyCd", "BkTxCd/Prtry/Cd",
    "NtryDtls/Btch/PmtInfId", "NtryDtls/Btch/MsgId", "AddtlNtryInf",
)
_TX_PATHS = (
    "Amt", "AmtDtls/TxAmt/Amt", "AmtDtls/InstdAmt/Amt", "Refs/EndToEndId", "Refs/AcctSvcrRef",
    *(f"RltdPties/{party}/{name}" for party in ("Dbtr", "Cdtr") for name in ("Nm", "Pty/Nm")),
    *(f"RltdPties/{party}Acct/Id/IBAN" for party in ("Dbtr", "Cdtr")),
    *(f"RltdAgts/{agent}/FinInstnId/{bic}" for agent in ("DbtrAgt", "CdtrAgt") for bic in ("BIC", "BICFI")),
    "RmtInf/Strd/CdtrRefInf/Ref", "RmtInf/Ustrd", "AddtlTxInf", "RmtInf/Strd/AddtlRmtInf", "RtrInf/Rsn/Cd",
    "RtrInf/Rsn/Prtry",
)
_Plan = dict[str, tuple[str, "_Plan | None"]]


def _plan(q: str, paths: Iterable[str]) -> _Plan:
    """What to read below an element: tag -> (its path, what to read below it). An element of our namespace or
    of none is known by its local name; elements elsewhere are skipped."""
    plan: dict[str, Any] = {}
    for path in paths:
        level = plan
        parts = path.split("/")
        for depth, local in enumerate(parts, 1):
            step = level.get(q + local)
            if step is None:
                step = level[q + local] = level[local] = ["/".join(parts[:depth]), {}]
            level = step[1]

    def frozen(level: dict[str, Any]) -> _Plan:
        return {tag: (path, frozen(below) if below else None) for tag, (path, below) in level.items()}

    return frozen(plan)


def _leaves(element: etree._Element, plan: _Plan, q: str,
            details: list[etree._Element] | None = None) -> dict[str, list[str]]:
    """The non-blank texts of the elements ``plan`` names below ``element``, by path, in document order (an
    element with children of its own has no text of its own).

    One walk instead of a path search per field: the entry's fields are then dictionary lookups. With
    ``details`` (an entry), the ``NtryDtls/TxDtls`` elements are collected there instead of walked, and of
    ``NtryDtls`` only ``Btch`` is read.
    """
    values: dict[str, list[str]] = {}
    transaction, batch = q + "TxDtls", q + "Btch"

    def walk(parent: etree._Element, plan: _Plan) -> None:
        for child in parent:
            step = plan.get(child.tag)  # type: ignore[arg-type]
            if step is None:
                continue
            path, below = step
            if len(child):
                if details is not None and path == "NtryDtls":
                    for part in child:
                        if part.tag == transaction:
                            details.append(part)
                        elif part.tag == batch:
                            walk(part, below[batch][1])  # type: ignore[index,arg-type]
                elif below is not None:
                    walk(child, below)
                continue
            text = child.text
            if text and not text.isspace():
                found = values.get(path)
                if found is None:
                    values[path] = [text.strip()]
                else:
                    found.append(text.strip())

    walk(element, plan)
    return values


def read_camt(path: str | Location, *, max_bytes: int = MAX_BYTES) -> CamtFile:
    """Every statement of ``path`` with its entry lines; raises :class:`CamtRefused` for anything unsafe or malformed."""
    path = location(path)
    _check_prolog(path, max_bytes)
    with parse_source(path) as source:
        return _parse(path, source)


def _parse(path: Location, source: str | BinaryIO) -> CamtFile:
    name = path.name
    statements: list[Statement] = []
    current: Statement | None = None
    kind = version = ""
    message_id: str | None = None
    created: datetime | None = None
    page: int | None = None  # the message's page, for statements without their own
    reader: _StatementReader | None = None
    root: etree._Element | None = None
    try:
        # Only the elements we act on come back from the parser (filtered in C); everything else is
        # read from them, and the header elements before and after the entries from their statement.
        events = etree.iterparse(
            source, events=("start", "end"), tag=_EVENT_TAGS, resolve_entities=False, load_dtd=False,
            no_network=True, huge_tree=False, remove_comments=True, remove_pis=True,
        )
        for event, element in _guarded(events, name, lambda: current):
            if root is None:
                root = element.getroottree().getroot()
                kind, version, reader = _root(root, name)
            if reader is None or element.tag[len(reader.r.q):] not in _ACTED_ON or not element.tag.startswith(reader.r.q):
                continue
            local = element.tag[len(reader.r.q):]
            parent = element.getparent()
            parent_local = etree.QName(parent).localname if parent is not None else ""
            if local == _statement_tag(version) and parent_local == _message_tag(version):
                if event == "start":
                    current = Statement(kind=kind, version=version, statement_id="")
                    continue
                assert current is not None
                _read_header(reader, current, element)
                if not current.statement_id:
                    raise CamtRefused(name, "statement without Id", element=local)
                if current.page is None:
                    current.page = page
                statements.append(current)
                current = None
                _forget(element)
            elif local == "Ntry" and current is not None and parent_local == _statement_tag(version):
                if event == "start":
                    if current.entries == 0:
                        _read_header(reader, current, parent)  # what came before the entries is complete now
                else:
                    reader.entry(current, element)
                    _forget(element)
            elif local == "GrpHdr" and event == "end" and parent_local == _message_tag(version):
                message_id = _exact(reader.r.text(element, "c:MsgId"), MESSAGE_ID_MAX, "message id", "GrpHdr",
                                    "MsgId", name, None)
                created = _moment(reader.r.text(element, "c:CreDtTm"))
                page = _integer(reader.r.text(element, "c:MsgPgntn/c:PgNb"), "GrpHdr/MsgPgntn/PgNb", name, None)
                element.clear()
        if root is None:  # no element we act on: let the root say what the file is instead
            _root(_first_element(path, name), name)
    except CamtRefused:
        raise
    if not statements:
        raise CamtRefused(name, f"no {_statement_tag(version) or 'statement'} element in the file", element=_message_tag(version))
    return CamtFile(str(path), kind, version, message_id, created, statements)


_ACTED_ON = frozenset(("Document", "GrpHdr", "Stmt", "Ntfctn", "Ntry"))
_EVENT_TAGS = tuple(f"{{*}}{local}" for local in sorted(_ACTED_ON))


def _read_header(reader: _StatementReader, statement: Statement, element: etree._Element) -> None:
    """The statement's own elements read so far (all but its entries), then dropped."""
    for child in list(element):
        if not isinstance(child.tag, str) or child.tag.endswith("}Ntry"):
            continue
        reader.header_element(statement, child, etree.QName(child).localname)
        element.remove(child)


def _guarded(events: Iterator[tuple[str, etree._Element]], name: str, statement) -> Iterator[tuple[str, etree._Element]]:  # type: ignore[no-untyped-def]
    """The parser's events, with its errors turned into a refusal that says where."""
    # The parser's error log outlives a parse (it is the thread's): emptied, its last error is this file's.
    etree.clear_error_log()
    try:
        yield from events
    except etree.XMLSyntaxError as exc:
        current = statement()
        number, message = _syntax_error(exc)
        line = f" (line {number})" if number else ""
        raise CamtRefused(
            name, f"not well-formed XML{line}: {message}", statement=current.statement_id if current else None
        ) from None


PARSER_MESSAGE_MAX = 200  # the parser's message can repeat a name from the file (up to 50 000 characters)


def _syntax_error(exc: etree.XMLSyntaxError) -> tuple[int | None, str]:
    """The line and message of what made the parser stop.

    ``iterparse`` may raise with what followed from the error, without a line (an undeclared entity comes out
    as "no element found", line 0); the parser's log then still holds the cause.
    """
    number, message = getattr(exc, "lineno", None), exc.msg
    cause = exc.error_log.last_error
    if not number and cause is not None:
        number, message = cause.line, cause.message
    message = (message or "").strip()
    return number, message if len(message) <= PARSER_MESSAGE_MAX else message[:PARSER_MESSAGE_MAX] + "…"


def _root(element: etree._Element, name: str) -> tuple[str, str, _StatementReader]:
    docinfo = element.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise CamtRefused(name, "a DTD is present; bank statements have none", element="DOCTYPE")
    qname = etree.QName(element)
    if qname.localname != "Document":
        raise CamtRefused(name, f"root element is {qname.localname}, not Document", element=qname.localname)
    if qname.namespace not in FORMATS:
        raise CamtRefused(
            name,
            f"namespace {qname.namespace or '(none)'} is not camt.053 or camt.054, versions .001.02 to .001.13",
            element="Document",
        )
    kind, version, _message, _statement = FORMATS[qname.namespace]
    return kind, version, _StatementReader(_Reader(qname.namespace), name)


def _first_element(path: Location, name: str) -> etree._Element:
    with parse_source(path) as source:
        events = etree.iterparse(source, events=("start",), resolve_entities=False, load_dtd=False, no_network=True)
        for _event, element in _guarded(events, name, lambda: None):
            return element
    raise CamtRefused(name, "no root element", element="Document")


def _statement_tag(version: str) -> str:
    return "Ntfctn" if version.startswith("camt.054") else "Stmt"


def _message_tag(version: str) -> str:
    return "BkToCstmrDbtCdtNtfctn" if version.startswith("camt.054") else "BkToCstmrStmt"


def _forget(element: etree._Element) -> None:
    """Free what was read: the element, and its earlier siblings still held by the parent."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]
