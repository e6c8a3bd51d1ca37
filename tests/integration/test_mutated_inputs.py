"""Real files, damaged at random (a fixed seed): each is imported or refused cleanly, never an unhandled error.

Statements: the third-party samples and one of our own, each with a hub
owning its account so that the booking code runs, mutated by dropping,
duplicating or swapping an element, putting odd text or a currency into it,
or cutting the file short. Delivery reports: a report in the simulator's
format, mutated by changing, inserting or deleting bytes, repeating or
dropping lines, renaming a column, or cutting it short. A refusal must name
the file, leave the file in the quarantine with its reason, and store nothing.
"""

from __future__ import annotations

import copy
import random
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from include.config import inbox_dir, quarantine_dir
from include.finance.db import transaction
from include.finance.models import BankStatement, DeliveryDiagnosis, DeliveryReport, Payment
from include.finance.reference_numbers import format_ogm, ogm
from include.pom.delivery_files import analyse_report_file
from include.pom.delivery_reader import DeliveryReportRefused
from include.sepa.camt import CamtRefused
from include.sepa.statement_files import import_statement_file
from sandbox.camt_writer import Entry, Tx, write_camt053
from tests.factories import make_institution, make_reference, make_user

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "iso20022"
MUTANTS = 80
ODD_TEXT = ["", " ", "abc", "-1", "1e5", "0", "99999999999999.99", "NaN", "2026-02-30", "x" * 3000, "é€😀", "CRDT",
            "DBIT", "true", "BOOK", "+++123/4567/89002+++"]
DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)


def _count(engine: Engine, model: type) -> int:
    with transaction(engine, readonly=True) as session:
        return session.scalar(select(func.count()).select_from(model))


def _mutate_xml(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.15:
        return data[: rng.randrange(len(data))]
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    element = rng.choice(list(root.iter())[1:])
    parent = element.getparent()
    kind = rng.choice(["drop", "text", "duplicate", "currency", "swap"])
    if kind == "drop":
        parent.remove(element)
    elif kind == "text":
        element.text = rng.choice(ODD_TEXT)
    elif kind == "duplicate":
        element.addnext(copy.deepcopy(element))
    elif kind == "currency":
        element.set("Ccy", rng.choice(["", "USD", "EURO"]))
    elif element.getnext() is not None:
        element.addprevious(element.getnext())
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _statements(folder: Path) -> list[bytes]:
    own = folder / "own.xml"
    write_camt053(own, account_iban="BE68539007547034", statement_id="FUZZ-1", electronic_seq=1, created_at=DAY,
                  from_date=DAY.date(), to_date=DAY.date(), opening_balance=Decimal("100.00"), entries=[
                      Entry(True, DAY.date(), (Tx(Decimal("10.00"), structured_reference=ogm("062", 1),
                                                  account_servicer_ref="F1"),)),
                      Entry(True, DAY.date(), (Tx(Decimal("5.00"), unstructured=format_ogm(ogm("062", 2)),
                                                  account_servicer_ref="F2"), Tx(Decimal("2.50"), account_servicer_ref="F3"))),
                      Entry(False, DAY.date(), (Tx(Decimal("10.00"), structured_reference=ogm("062", 1),
                                                   account_servicer_ref="F4"),), reversal=True),
                  ])
    files = [p.read_bytes() for p in sorted(SAMPLES.glob("*")) if "camt" in p.name.lower() or "053" in p.name]
    return [own.read_bytes(), *files]


def _refused_cleanly(folder: Path, name: str, refusal: Exception) -> None:
    assert str(refusal).startswith(name)
    assert (folder / name).is_file() and (folder / f"{name}.reason.txt").is_file()


def test_damaged_statements_are_imported_or_refused_cleanly(engine, var_dir, tmp_path) -> None:
    statements = _statements(tmp_path)
    with transaction(engine) as session:
        accounts = sorted({iban.decode() for data in statements for iban in re.findall(rb"<IBAN>\s*([A-Z0-9]+)", data)})
        for n, account in enumerate(accounts):
            institution = make_institution(session, code=f"F{n}")
            institution.hub.creditor_iban = account
            user = make_user(session)
            for number in range(1, 4):
                make_reference(session, institution, user, ("10.00",), number=number, loi=f"fp:F{n}:{number}")
    rng = random.Random(20261122)
    outcomes = {"imported": 0, "refused": 0}
    for index in range(MUTANTS):
        data = rng.choice(statements)
        for _ in range(rng.randint(1, 2)):
            try:
                data = _mutate_xml(rng, data)
            except (etree.XMLSyntaxError, IndexError, ValueError, TypeError, AttributeError):
                break  # already cut short: import it as it is
        name = f"mutant-{index}.xml"
        path = inbox_dir("camt053") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        before = _count(engine, BankStatement), _count(engine, Payment)
        try:
            result = import_statement_file(path, "test", engine=engine)
        except CamtRefused as refusal:
            _refused_cleanly(quarantine_dir(), name, refusal)
            assert (_count(engine, BankStatement), _count(engine, Payment)) == before
            outcomes["refused"] += 1
        else:
            assert result["status"] in ("imported", "already_imported")
            outcomes["imported"] += 1
    assert outcomes["imported"] and outcomes["refused"]  # the mutations reach both ends


def _mutate_csv(rng: random.Random, data: bytes) -> bytes:
    kind = rng.choice(["byte", "insert", "delete", "repeat", "drop", "rename", "cut"])
    at = rng.randrange(len(data) + 1)
    if kind == "cut":
        return data[:at]
    if kind == "byte" and data:
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
    if kind == "insert":
        return data[:at] + rng.choice([b";", b",", b'"', b"\r", b"\n", b"\x00", b"\xff", b"\xe9", b"x" * 300]) + data[at:]
    if kind == "delete":
        return data[:at] + data[at + rng.randrange(1, 20) :]
    lines = data.split(b"\n")
    line = rng.randrange(len(lines))
    if kind == "repeat":
        lines.insert(line, lines[line])
    elif kind == "drop":
        del lines[line]
    else:
        lines[0] = lines[0].replace(rng.choice([b"Status", b"Batch", b"Timestamp", b"EmailAddress"]), b"Kolom")
    return b"\n".join(lines)


def test_damaged_delivery_reports_are_analysed_or_refused_cleanly(engine, var_dir) -> None:
    lines = ["Batch,DocumentId,RecipientName,EmailAddress,Status,Description,Timestamp"]
    messages = ["", "The email was rejected by the recipient's mail server. The user's mailbox is full.",
                "EmailAddress of recipient is blacklisted.", "User has unsubscribed from receiving pom mails."]
    for n in range(1, 41):
        status = "DELIVERED" if n % 4 == 0 else "FAILED"
        text = "" if status == "DELIVERED" else messages[n % 4]
        moment = (DAY + timedelta(minutes=n)).isoformat()
        lines.append(f'B-FUZZ,DOC-{n:04d},Ouder {n},ouder{n}@example.be,{status},"{text}",{moment}')
    report = ("\r\n".join(lines) + "\r\n").encode()
    rng = random.Random(20261122)
    outcomes = {"analysed": 0, "refused": 0}
    for index in range(MUTANTS):
        data = report
        for _ in range(rng.randint(1, 2)):
            data = _mutate_csv(rng, data)
        name = f"mutant-{index}.csv"
        path = inbox_dir("pom_reports") / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        before = _count(engine, DeliveryReport), _count(engine, DeliveryDiagnosis)
        try:
            analyse_report_file(path, "test", engine, now=DAY + timedelta(hours=60))
        except DeliveryReportRefused as refusal:
            _refused_cleanly(quarantine_dir() / "pom_reports", name, refusal)
            assert (_count(engine, DeliveryReport), _count(engine, DeliveryDiagnosis)) == before
            outcomes["refused"] += 1
        else:
            outcomes["analysed"] += 1
    assert outcomes["analysed"] and outcomes["refused"]
