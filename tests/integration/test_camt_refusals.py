"""Bank statement files we must refuse, and the real ones we must read: quarantined or archived, nothing half-booked.

Every refusal is checked the same way (:func:`assert_quarantined`): the import
raises :class:`CamtRefused` naming the file (and the element where there is
one), the file sits in ``var/quarantine/`` with ``<name>.reason.txt`` holding
that message, the inbox copy is gone, and not one row was written to the
booking tables. Each test runs on SQLite and on PostgreSQL (``engine``) with a
private ``var/`` (``var_dir``).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine

from include.config import archive_dir, inbox_dir, quarantine_dir
from include.finance.db import transaction
from include.finance.models import AuditLog, BankEntry, BankStatement, Base, ControlListItem, Payment
from include.sepa import camt_import
from include.sepa.camt import MAX_BYTES, CamtRefused
from include.sepa.identifiers import mask_ibans_in
from include.sepa.statement_files import import_statement_file
from sandbox.camt_writer import Entry, Statement, Tx, write_camt053, write_camt053_multi
from tests.factories import make_institution

pytestmark = pytest.mark.usefixtures("known_control_list_kinds")  # every item's kind is a ControlListKind
ACTOR = "test"
BOOKING_TABLES = [t.__table__ for t in (BankStatement, BankEntry, Payment, ControlListItem, AuditLog)]
NOTHING_BOOKED = {table.name: 0 for table in BOOKING_TABLES}
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "iso20022"
CAMT053 = b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
DAY = date(2026, 11, 20)
CREATED = datetime(2026, 11, 20, 18, tzinfo=timezone.utc)
ACCOUNT = "BE68539007547034"  # belongs to no hub unless a test creates one


# -- helpers ---------------------------------------------------------------------------------------


def inbox_import(engine: Engine, name: str, content: bytes, **options: Any) -> dict[str, Any]:
    """Write ``content`` as ``var/inbox/camt053/<name>`` and import it (``options``: e.g. ``max_bytes``)."""
    path = inbox_dir("camt053") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return import_statement_file(path, ACTOR, engine=engine, **options)


def row_counts(engine: Engine, tables: Iterable[Table] = BOOKING_TABLES) -> dict[str, int]:
    with engine.connect() as connection:
        return {table.name: connection.scalar(select(func.count()).select_from(table)) for table in tables}


def assert_quarantined(engine: Engine, refusal: CamtRefused, name: str, content: bytes | None = None,
                       *, element: str | None = None, statement: str | None = None) -> str:
    """The checks every refusal must pass; returns the message for the test's own checks."""
    message = str(refusal)
    assert refusal.file == name and message.startswith(f"{name}: "), message
    if element is not None:
        assert refusal.element == element and f": element {element}: " in message, message
    if statement is not None:
        assert refusal.statement == statement and f": statement {statement}: " in message, message
    quarantined = quarantine_dir() / name
    assert quarantined.is_file()
    if content is not None:
        assert quarantined.read_bytes() == content  # kept exactly as it came
    assert (quarantine_dir() / f"{name}.reason.txt").read_text(encoding="utf-8") == message + "\n"
    assert not (inbox_dir("camt053") / name).exists()
    assert row_counts(engine) == NOTHING_BOOKED
    return message


def statement_file(folder: Path, *, account: str = ACCOUNT, statement_id: str = "STMT-001", **fields: Any) -> bytes:
    """A small valid camt.053.001.02 (two credits, 100.00 -> 119.75), written by the bank-like writer."""
    values: dict[str, Any] = {
        "electronic_seq": 7, "created_at": CREATED, "from_date": DAY,
        "to_date": DAY, "opening_balance": Decimal("100.00"),
        "entries": [
            Entry(True, DAY, (Tx(Decimal("12.50"), account_servicer_ref="TX-1", counterparty_name="Zoë D'Hondt",
                                 counterparty_iban="BE71096123456769", unstructured="lidgeld"),)),
            Entry(True, DAY, (Tx(Decimal("7.25"), account_servicer_ref="TX-2"),)),
        ],
    }
    values.update(fields)
    path = folder / f"{statement_id}.src.xml"
    write_camt053(path, account_iban=account, statement_id=statement_id, **values)
    return path.read_bytes()


@pytest.fixture
def valid(tmp_path: Path) -> bytes:
    return statement_file(tmp_path)


def hub_account(engine: Engine) -> str:
    """The account of a new bank hub: statements of it get booked."""
    with transaction(engine) as session:
        return make_institution(session).hub.creditor_iban


@pytest.fixture
def listener() -> Iterable[socket.socket]:
    """A loopback port nobody should ever connect to (an XML parser fetching a DTD would)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def assert_never_contacted(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        server.accept()


# -- 1-4: DTDs and entities -----------------------------------------------------------------------


def test_external_entity_reading_a_local_file_is_refused(engine, var_dir, valid) -> None:
    content = (
        DECLARATION + b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        + valid[len(DECLARATION):].replace(b"<Ustrd>lidgeld</Ustrd>", b"<Ustrd>&x;</Ustrd>")
    )
    assert b"&x;" in content
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "xxe.xml", content)
    message = assert_quarantined(engine, refused.value, "xxe.xml", content)
    assert "DTD or entity" in message
    reason = (quarantine_dir() / "xxe.xml.reason.txt").read_text(encoding="utf-8")
    assert "root:" not in message and "root:" not in reason


def test_billion_laughs_is_refused_fast(engine, var_dir, valid) -> None:
    entities = b"".join(
        b'<!ENTITY l%d "%s">' % (n, b"&l%d;" % (n - 1) * 10) for n in range(1, 10)
    )
    content = (
        DECLARATION + b'<!DOCTYPE Document [<!ENTITY l0 "lol">' + entities + b"]>\n"
        + valid[len(DECLARATION):].replace(b"<Ustrd>lidgeld</Ustrd>", b"<Ustrd>&l9;</Ustrd>")
    )
    start = time.perf_counter()
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "lol.xml", content)
    assert time.perf_counter() - start < 2
    assert "DTD or entity" in assert_quarantined(engine, refused.value, "lol.xml", content)


def test_external_dtd_is_refused_before_parsing(engine, var_dir, valid, monkeypatch) -> None:
    parsed: list[object] = []
    connections: list[object] = []
    monkeypatch.setattr(etree, "iterparse", lambda *a, **k: parsed.append(a) or iter(()))

    def connect(self, address):  # type: ignore[no-untyped-def]
        connections.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", connect)
    content = DECLARATION + b'<!DOCTYPE Document SYSTEM "http://example.com/evil.dtd">\n' + valid[len(DECLARATION):]
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "dtd.xml", content)
    assert parsed == [] and connections == []  # the prolog check refused it: no parser, no network
    assert "DTD" in assert_quarantined(engine, refused.value, "dtd.xml", content)


HIDDEN = {
    "xxe": (b'<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>', b"&x;"),
    "billion-laughs": (
        b'<!DOCTYPE Document [<!ENTITY l0 "lol">'
        + b"".join(b'<!ENTITY l%d "%s">' % (n, b"&l%d;" % (n - 1) * 10) for n in range(1, 10)) + b"]>",
        b"&l9;",
    ),
    "external-dtd": (b'<!DOCTYPE Document SYSTEM "http://127.0.0.1:{port}/evil.dtd">', b"lidgeld"),
    "external-parameter-entity": (
        b'<!DOCTYPE Document [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/evil.ent"> %p;]>', b"lidgeld"
    ),
}


@pytest.mark.parametrize("padding", ["comment", "whitespace"])
@pytest.mark.parametrize("kind", list(HIDDEN))
def test_doctype_hidden_after_the_prolog_sniff_is_refused_by_the_parser(
    engine, var_dir, valid, listener, kind, padding
) -> None:
    doctype, use = HIDDEN[kind]
    doctype = doctype.replace(b"{port}", str(listener.getsockname()[1]).encode())
    body = valid[len(DECLARATION):].replace(b"<Ustrd>lidgeld</Ustrd>", b"<Ustrd>" + use + b"</Ustrd>")
    if padding == "comment":
        content = DECLARATION + b"<!--" + b" padding " * 600 + b"-->\n" + doctype + b"\n" + body
    else:  # leading whitespace is allowed before the DOCTYPE of a document without XML declaration
        content = b" \n" * 2500 + doctype + b"\n" + body
    assert content.index(b"<!DOCTYPE") > 4096
    start = time.perf_counter()
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "hidden.xml", content)
    assert time.perf_counter() - start < 2
    message = assert_quarantined(engine, refused.value, "hidden.xml", content, element="DOCTYPE")
    assert "DTD" in message and "root:" not in message
    assert_never_contacted(listener)


# -- 5: size ----------------------------------------------------------------------------------------


def test_file_over_the_default_size_limit_is_refused_without_reading_it(engine, var_dir) -> None:
    path = inbox_dir("camt053") / "huge.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = b" padding " * (1 << 17)  # ~1.1 MB
    try:
        start = time.perf_counter()
        with path.open("wb") as handle:
            handle.write(DECLARATION + b'<Document xmlns="' + CAMT053 + b'"><!--')
            while handle.tell() <= 200 * 1024 * 1024:
                handle.write(chunk)
            handle.write(b"--></Document>\n")
        size = path.stat().st_size
        assert size > 200 * 1024 * 1024 > MAX_BYTES
        with pytest.raises(CamtRefused) as refused:
            import_statement_file(path, ACTOR, engine=engine)
        message = assert_quarantined(engine, refused.value, "huge.xml")
        assert f"the file is {size} bytes, above the limit of {MAX_BYTES} bytes" in message
        assert (quarantine_dir() / "huge.xml").stat().st_size == size
        assert time.perf_counter() - start < 10
    finally:
        path.unlink(missing_ok=True)
        (quarantine_dir() / "huge.xml").unlink(missing_ok=True)


def test_file_over_a_given_size_limit_is_refused(engine, var_dir, valid) -> None:
    assert len(valid) > 1000
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "small.xml", valid, max_bytes=1000)
    message = assert_quarantined(engine, refused.value, "small.xml", valid)
    assert f"the file is {len(valid)} bytes, above the limit of 1000 bytes" in message


# -- 6-10: malformed files --------------------------------------------------------------------------


@pytest.mark.parametrize("entries", [2, 3000], ids=["small", "beyond-the-parser-buffer"])
def test_truncated_file_is_refused_naming_the_statement(engine, var_dir, tmp_path, entries) -> None:
    content = statement_file(tmp_path, entries=[
        Entry(True, DAY, (Tx(Decimal("1.00") + n, account_servicer_ref=f"TX-{n}", unstructured="x" * 60),))
        for n in range(entries)
    ])
    middle = content.index(b"<Ntry>", content.index(b"<Ntry>", len(content) // 2) + 1)
    cut = content[: content.index(b"<BookgDt>", middle) + 5]  # in the middle of an entry, in the middle of a tag
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "cut.xml", cut)
    message = assert_quarantined(engine, refused.value, "cut.xml", cut, statement="STMT-001")
    assert "not well-formed" in message


WRONG_DOCUMENT = {  # case -> (element named, what the message says)
    "camt.052": ("Document", "namespace urn:iso:std:iso:20022:tech:xsd:camt.052.001.02 is not"),
    "pain.008": ("Document", "namespace urn:iso:std:iso:20022:tech:xsd:pain.008.001.02 is not"),
    "camt.053.001.01": ("Document", "namespace urn:iso:std:iso:20022:tech:xsd:camt.053.001.01 is not"),
    "camt.053.001.14": ("Document", "namespace urn:iso:std:iso:20022:tech:xsd:camt.053.001.14 is not"),
    "root Foo": ("Foo", "root element is Foo, not Document"),
    "no namespace": ("Document", "namespace (none) is not"),
}


@pytest.mark.parametrize("case", list(WRONG_DOCUMENT))
def test_wrong_namespace_or_root_is_refused(engine, var_dir, valid, case) -> None:
    content = {
        "camt.052": valid.replace(CAMT053, CAMT053.replace(b"camt.053", b"camt.052")),
        "pain.008": valid.replace(CAMT053, CAMT053.replace(b"camt.053", b"pain.008")),
        "camt.053.001.01": valid.replace(CAMT053, b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.01"),
        "camt.053.001.14": valid.replace(CAMT053, b"urn:iso:std:iso:20022:tech:xsd:camt.053.001.14"),
        "root Foo": valid.replace(b"<Document ", b"<Foo ").replace(b"</Document>", b"</Foo>"),
        "no namespace": valid.replace(b' xmlns="' + CAMT053 + b'"', b""),
    }[case]
    element, says = WRONG_DOCUMENT[case]
    assert content != valid
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "wrong.xml", content)
    assert says in assert_quarantined(engine, refused.value, "wrong.xml", content, element=element)


@pytest.mark.parametrize("case", ["UTF-16 with BOM", "ISO-8859-1 declared", "invalid UTF-8 bytes"])
def test_file_that_is_not_utf8_is_refused(engine, var_dir, valid, case) -> None:
    text = valid.decode("utf-8")
    content = {
        "UTF-16 with BOM": text.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"),
        "ISO-8859-1 declared": text.replace('encoding="UTF-8"', 'encoding="ISO-8859-1"').encode("iso-8859-1"),
        "invalid UTF-8 bytes": valid.replace("Zoë".encode(), b"Zo\xeb"),  # Latin-1 é in a UTF-8 file
    }[case]
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "charset.xml", content)
    message = assert_quarantined(engine, refused.value, "charset.xml", content)
    expected = {
        "UTF-16 with BOM": "not UTF-8",
        "ISO-8859-1 declared": "declared encoding ISO-8859-1 is not UTF-8",
        "invalid UTF-8 bytes": "statement STMT-001: not well-formed XML",
    }[case]
    assert expected in message


@pytest.mark.parametrize(("content", "says"), [(b"", "the file is empty"), (b" \n\t\r\n  ", "not well-formed XML")],
                         ids=["empty", "whitespace"])
def test_empty_file_is_refused(engine, var_dir, content, says) -> None:
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "empty.xml", content)
    assert says in assert_quarantined(engine, refused.value, "empty.xml", content)


AMOUNT, SEQUENCE = b'<Ntry><Amt Ccy="EUR">%s</Amt>', b"<ElctrncSeqNb>%s</ElctrncSeqNb>"
MALFORMED = {  # value -> (where the writer wrote 12.50 or 7, the element the refusal must name)
    "12,50": (AMOUNT, "Ntry[1]/Amt"),
    "1e400": (AMOUNT, "Ntry[1]/Amt"),  # no decimal context can quantize it to cents
    "123456789012345678901234567890.00": (AMOUNT, "Ntry[1]/Amt"),  # beyond the 18 digits of the schema
    "1.25E+1": (AMOUNT, "Ntry[1]/Amt"),  # xs:decimal has no exponent (the balances would add up with 12.50)
    "99999999999999999999999": (SEQUENCE, "ElctrncSeqNb"),  # beyond any BIGINT column
}


@pytest.mark.parametrize("value", list(MALFORMED))
def test_malformed_value_is_refused_naming_the_element(engine, var_dir, tmp_path, value) -> None:
    template, element = MALFORMED[value]
    content = statement_file(tmp_path, account=hub_account(engine))
    written = template % (b"12.50" if template is AMOUNT else b"7")
    broken = content.replace(written, template % value.encode())
    assert broken != content and content.count(written) == 1
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "value.xml", broken)
    message = assert_quarantined(engine, refused.value, "value.xml", broken, element=element, statement="STMT-001")
    assert repr(value) in message
    if value == "12,50":
        assert message.endswith("not an amount: '12,50'")


# -- 11-12: balances and atomicity ------------------------------------------------------------------


def test_balance_that_does_not_add_up_is_refused_and_nothing_booked(engine, var_dir, tmp_path) -> None:
    content = statement_file(tmp_path, account=hub_account(engine), closing_balance=Decimal("120.00"))
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "balance.xml", content)
    message = assert_quarantined(engine, refused.value, "balance.xml", content, element="Bal[CLBD]",
                                 statement="STMT-001")
    assert "opening balance 100.00 + booked entries 19.75 = 119.75, but the closing balance is 120.00" in message


@pytest.mark.parametrize("broken", ["malformed amount", "wrong closing balance", "refused while booking"])
def test_second_statement_broken_books_nothing_of_the_first(engine, var_dir, tmp_path, monkeypatch, broken) -> None:
    account = hub_account(engine)
    first = Statement(account, "STMT-001", 7, DAY, DAY, Decimal("100.00"), [
        Entry(True, DAY, (Tx(Decimal("12.50"), account_servicer_ref="TX-1", counterparty_name="Zoë"),)),
        Entry(False, DAY, (Tx(Decimal("2.00"), account_servicer_ref="TX-2"),)),
    ])
    second = Statement(account, "STMT-002", 8, DAY, DAY, Decimal("110.50"),
                       [Entry(True, DAY, (Tx(Decimal("33.30"), account_servicer_ref="TX-3"),))],
                       closing_balance=Decimal("1.00") if broken == "wrong closing balance" else None)
    path = tmp_path / "two.src.xml"
    write_camt053_multi(path, [first, second], message_id="MSG-2", created_at=CREATED)
    content = path.read_bytes()
    element = {"malformed amount": "Ntry[1]/Amt", "wrong closing balance": "Bal[CLBD]", "refused while booking": None}
    if broken == "malformed amount":
        content = content.replace(b'<Ntry><Amt Ccy="EUR">33.30</Amt>', b'<Ntry><Amt Ccy="EUR">33,30</Amt>')
    if broken == "refused while booking":  # the first statement is already flushed when the second fails
        book = camt_import._Import._statement

        def book_then_refuse_the_second(self, statement):  # type: ignore[no-untyped-def]
            result = book(self, statement)
            if statement.statement_id == "STMT-002":
                self.session.flush()
                assert self.session.scalar(select(func.count()).select_from(BankEntry)) == 3
                raise CamtRefused(self.file_name, "refused while booking", statement="STMT-002")
            return result

        monkeypatch.setattr(camt_import._Import, "_statement", book_then_refuse_the_second)
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "two.xml", content)
    assert_quarantined(engine, refused.value, "two.xml", content, element=element[broken], statement="STMT-002")
    monkeypatch.undo()
    # the control: the first statement alone is booked
    alone = tmp_path / "one.src.xml"
    write_camt053_multi(alone, [first], message_id="MSG-1", created_at=CREATED)
    assert inbox_import(engine, "one.xml", alone.read_bytes())["status"] == "imported"
    assert row_counts(engine, [BankStatement.__table__, BankEntry.__table__]) == {"bank_statement": 1, "bank_entry": 2}


# -- values longer than the tables hold ------------------------------------------------------------------------

LONG_IBAN = "BE71096123456769" + "0" * 30  # 46 characters
TOO_LONG = {  # case -> (what the writer wrote, what replaces it, the element the refusal names)
    "statement id": (b"<Id>STMT-001</Id>", b"<Id>" + b"S" * 150 + b"</Id>", "Stmt/Id"),
    "currency": (b"<Ccy>EUR</Ccy>", b"<Ccy>EURO-DOLLAR</Ccy>", "Acct/Ccy"),
    "bank reference": (b"<AcctSvcrRef>TX-1</AcctSvcrRef>", b"<AcctSvcrRef>" + b"R" * 300 + b"</AcctSvcrRef>",
                       "Ntry[1]/NtryDtls/TxDtls[1]/Refs/AcctSvcrRef"),
    # the second transaction of a batch debit: its counterparty is the creditor
    "counterparty IBAN": (b"<IBAN>BE62510007547061</IBAN>", f"<IBAN>{LONG_IBAN}</IBAN>".encode(),
                          "Ntry[3]/NtryDtls/TxDtls[2]/RltdPties/CdtrAcct/Id/IBAN"),
}


@pytest.mark.parametrize("case", list(TOO_LONG))
def test_a_value_longer_than_its_column_is_refused_not_failed_by_the_database(engine, var_dir, tmp_path,
                                                                               case) -> None:
    # Left to the database, such a value fails the booking on PostgreSQL with a database error (its text holding
    # the row's IBANs): no quarantine, and the file tried again at every run.
    batch = Entry(False, DAY, (Tx(Decimal("1.00"), account_servicer_ref="TX-3", counterparty_iban="BE71096123456769"),
                               Tx(Decimal("2.00"), account_servicer_ref="TX-4", counterparty_iban="BE62510007547061")))
    content = statement_file(tmp_path, account=hub_account(engine), entries=[
        Entry(True, DAY, (Tx(Decimal("12.50"), account_servicer_ref="TX-1", counterparty_iban="BE71096123456769"),)),
        Entry(True, DAY, (Tx(Decimal("7.25"), account_servicer_ref="TX-2"),)), batch,
    ])
    written, replaced, element = TOO_LONG[case]
    assert content.count(written) == 1
    broken = content.replace(written, replaced)
    assert inbox_import(engine, "control.xml", content)["status"] == "imported"  # the file as written is fine
    with transaction(engine) as session:
        for table in reversed(BOOKING_TABLES):
            session.execute(table.delete())
    with pytest.raises(CamtRefused) as refused:
        inbox_import(engine, "long.xml", broken)
    message = assert_quarantined(engine, refused.value, "long.xml", broken, element=element,
                                 statement=None if case == "statement id" else "STMT-001")
    assert "0961234567" not in message and "5100075470" not in message


def test_a_name_longer_than_its_column_is_booked_cut(engine, var_dir, tmp_path) -> None:
    content = statement_file(tmp_path, account=hub_account(engine))
    name = "Zoë D'Hondt-" + "Van Den Broeck-" * 20
    broken = content.replace("<Nm>Zoë D'Hondt</Nm>".encode(), f"<Nm>{name}</Nm>".encode())
    assert broken != content
    assert inbox_import(engine, "name.xml", broken)["status"] == "imported"
    with transaction(engine, readonly=True) as session:
        names = session.scalars(select(BankEntry.counterparty_name).order_by(BankEntry.entry_index)).all()
    assert names == [name[:140], None]


# -- 13: real third-party samples -------------------------------------------------------------------

# What each sample must give, worked out by reading the files (opening balance + booked entries vs closing):
# refused: (statement id, element); imported: {statement id: lines}
# (a batch entry whose transactions carry amounts gives one line per transaction).
SAMPLE_OUTCOMES: dict[str, tuple[str, str] | dict[str, int]] = {
    # OPBD 18.15 CRDT + entry 8.85 CRDT = 27.00, but CLBD is 27.00 DBIT
    "genkgo-camt__camt053.v2.minimal.xml": ("253EURNL26VAYB8060476890", "Bal[CLBD]"),
    "genkgo-camt__camt053.v8.xml": ("253EURNL26VAYB8060476890", "Bal[CLBD]"),
    # a notification, no balances; one batch entry of three transactions without amounts: one unsplit line
    "genkgo-camt__camt054.v2.xml": {"AAAASESS-FP-ACCR001": 1},
    # 203.69 + 458.00 = 661.69 and 1859.13 - 198.26 = 1660.87
    "newinnovations-camt053__example-camt053-a.xml": {"CAMT05398765432164600000": 7, "CAMT05398765432164700000": 4},
    # no CdtDbtInd on balances (credit): 21081222.58 + 828531.98 - 0.2 - 5793.97 = 21903960.39; 4801.55 unchanged
    "subite-camt-to-coda__LT625883379695428516_CAMT_053_2024-03-07.xml": {
        "MSG66141212-AUHHDI": 3, "MSG64056289-VSGMBR": 0,
    },
    # 0 - 789903.41 - 0.99 + 789904.4 = 0
    "subite-camt-to-coda__account_statement.xml": {"MSG43831462-XICUEK": 3},
    # 33.06 - 2.00 - 3.00 + 1.00 - 6.00 = 23.06; the 6.00 batch splits into 3.50 + 2.50
    "viafintech-camt_parser__053_valid_example.xml": {"0352C5320131227220503": 5},
    # 82721.95 + 474.40 + 88.85 - 20.97 = 83264.23, but CLBD is 84515.25
    "viafintech-camt_parser__053_valid_example_v8.xml": ("R30B4SA880HMZ9XA", "Bal[CLBD]"),
}
SAMPLE_FILES = sorted(p.name for p in SAMPLES.glob("*") if "camt" in p.name.lower() or "053" in p.name)


def test_every_sample_has_a_documented_outcome() -> None:
    assert SAMPLE_FILES and set(SAMPLE_FILES) == set(SAMPLE_OUTCOMES)


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_real_sample_is_imported_or_refused_clearly(engine, var_dir, name) -> None:
    content = (SAMPLES / name).read_bytes()
    expected = SAMPLE_OUTCOMES[name]
    if isinstance(expected, tuple):
        statement, element = expected
        with pytest.raises(CamtRefused) as refused:
            inbox_import(engine, name, content)
        message = assert_quarantined(engine, refused.value, name, content, element=element, statement=statement)
        assert "but the closing balance is" in message
        return
    result = inbox_import(engine, name, content)
    lines = sum(expected.values())
    assert result["status"] == "imported"
    assert {s["statement"]: s["lines"] for s in result["statements"]} == expected
    assert {s["status"] for s in result["statements"]} == {"imported"}
    assert result["outcomes"] == ({"unknown_account": lines} if lines else {})
    # Named as it was, and returned with an account in its name masked (Airflow logs what a task returns).
    assert Path(result["archived"]) == archive_dir() / mask_ibans_in(name) and (archive_dir() / name).read_bytes() == content
    assert result["file"] == mask_ibans_in(name) and ("LT625883379695428516" not in json.dumps(result))
    assert not (inbox_dir("camt053") / name).exists() and not (quarantine_dir() / name).exists()
    assert row_counts(engine) == {
        "bank_statement": len(expected), "bank_entry": lines, "payment": 0, "control_list_item": lines,
        "audit_log": len(expected),
    }


# -- 14: the same file twice ------------------------------------------------------------------------


def test_same_file_twice_adds_nothing_the_second_time(engine, var_dir, tmp_path) -> None:
    content = statement_file(tmp_path, account=hub_account(engine))
    first = inbox_import(engine, "stmt.xml", content)
    assert first["status"] == "imported" and first["statements"][0]["new_lines"] == 2
    after_first = row_counts(engine, Base.metadata.sorted_tables)
    assert after_first["bank_statement"] == 1 and after_first["bank_entry"] == 2
    second = inbox_import(engine, "stmt.xml", content)
    assert second["status"] == "already_imported"
    assert [s["status"] for s in second["statements"]] == ["already_imported"]
    assert row_counts(engine, Base.metadata.sorted_tables) == after_first
    assert not (inbox_dir("camt053") / "stmt.xml").exists()
    # The second copy is archived beside the first under a name of its own (the summary shows it masked).
    assert [path.read_bytes() for path in sorted(archive_dir().iterdir())] == [content, content]
    assert not quarantine_dir().exists() or not any(quarantine_dir().iterdir())
