"""The pain.008 writer on its own: valid files (checked whole, by two validators), refusals, determinism."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import xmlschema
from lxml import etree

from include.errors import ExportRejected
from include.finance.reference_numbers import ogm, rf
from include.sepa import chunk_validation, pain008
from include.sepa.amendments import Amendment
from include.sepa.pain008 import Creditor, Message, PaymentBatch, Transaction, write_pain008
from include.sepa.xsd import XSD_DIR
from tests.factories import iban

VERSIONS = ("pain.008.001.02", "pain.008.001.08")


def _tx(n: int, **overrides: object) -> Transaction:
    values = {
        "end_to_end_id": f"fp:BIB:{n}", "amount": Decimal(n) / 100 + Decimal("1.00"), "mandate_id": f"MND-{n}",
        "signature_date": date(2024, 3, 1), "debtor_name": "Zoë D'Hondt & Søn", "debtor_iban": iban(n),
        "debtor_bic": "KREDBEBB" if n % 3 else None, "reference": ogm("062", n) if n % 2 else rf("71", n),
    }
    values.update(overrides)
    return Transaction(**values)  # type: ignore[arg-type]


def _message(version: str, batches: list[tuple[str, list[Transaction]]], safe: bool = False) -> Message:
    return Message(
        version=version, message_id="fj:BIB:7", created_at=datetime(2026, 11, 20, 5, 0, 3),
        initiator_name="Bibliothèque de Liège", initiator_id="0207462536",
        creditor=Creditor(name="Bibliothèque de Liège — Financiën", iban="BE19068240219012", bic="GKCCBEBB",
                          creditor_id="BE69ZZZ050D000000008", street="Rue de l'Étuve", house_number="12",
                          postal_code="4000", city="Liège", country="BE"),
        batch_booking=True, local_instrument="CORE", safe=safe,
        batches=[
            PaymentBatch(f"fj:BIB:7/{seq}", seq, date(2026, 11, 23), len(txs), sum((t.amount for t in txs), Decimal("0.00")), iter(txs))
            for seq, txs in batches
        ],
    )


def _local(tree: etree._Element, path: str) -> list[str]:
    return [node.text for node in tree.iter() if etree.QName(node).localname == path]


@pytest.mark.parametrize("version", VERSIONS)
def test_a_file_spanning_several_chunks_is_valid_whole_for_lxml_and_xmlschema(tmp_path, monkeypatch, version) -> None:
    monkeypatch.setattr(pain008, "CHUNK", 7)  # many chunks, uneven last one
    frst = [_tx(n) for n in range(1, 23)]
    rcur = [_tx(n) for n in range(100, 105)]
    written = write_pain008(_message(version, [("FRST", frst), ("RCUR", rcur)]), tmp_path / "out.xml")
    data = (tmp_path / "out.xml").read_bytes()
    tree = etree.fromstring(data)
    etree.XMLSchema(etree.parse(str(XSD_DIR / f"{version}.xsd"))).assertValid(tree)
    assert xmlschema.XMLSchema(str(XSD_DIR / f"{version}.xsd")).is_valid(str(tmp_path / "out.xml"))
    assert written.transactions == 27
    assert len([n for n in tree.iter() if etree.QName(n).localname == "DrctDbtTxInf"]) == 27
    expected_total = sum((t.amount for t in frst + rcur), Decimal("0.00"))
    assert written.total == expected_total
    assert _local(tree, "CtrlSum")[0] == f"{expected_total:.2f}"
    assert _local(tree, "NbOfTxs") == ["27", "22", "5"]
    assert _local(tree, "SeqTp") == ["FRST", "RCUR"]
    assert _local(tree, "EndToEndId") == [t.end_to_end_id for t in frst + rcur]
    # Structured communication: BBA for an OGM, ISO for an RF reference.
    issuers = _local(tree, "Issr")
    refs = _local(tree, "Ref")
    assert refs[0] == ogm("062", 1) and issuers[0] == "BBA"
    assert refs[1] == rf("71", 2) and issuers[1] == "ISO"
    # IBAN-only debtors carry NOTPROVIDED; others their BIC.
    assert "NOTPROVIDED" in _local(tree, "Id")
    assert written.sha256 == __import__("hashlib").sha256(data).hexdigest()


@pytest.mark.parametrize("version", VERSIONS)
def test_every_kind_of_mandate_amendment_is_valid_for_both_validators(tmp_path, monkeypatch, version) -> None:
    monkeypatch.setattr(pain008, "CHUNK", 2)
    changes = [
        Amendment(original_mandate_reference="MND-OLD/1"),
        Amendment(original_creditor_id="BE69ZZZ050D000000008"),
        Amendment(original_debtor_iban="BE68539007547034"),
        Amendment(original_debtor_iban="BE68539007547034", debtor_agent_changed=True),
        Amendment("MND-OLD/2", "BE69 ZZZ 050D000000008", "be68 5390 0754 7034", False),
        None,
    ]
    txs = [_tx(n, amendment=change) for n, change in enumerate(changes, start=1)]
    write_pain008(_message(version, [("RCUR", txs)]), tmp_path / "amended.xml")
    tree = etree.parse(str(tmp_path / "amended.xml"))
    etree.XMLSchema(etree.parse(str(XSD_DIR / f"{version}.xsd"))).assertValid(tree)
    assert xmlschema.XMLSchema(str(XSD_DIR / f"{version}.xsd")).is_valid(str(tmp_path / "amended.xml"))
    root = tree.getroot()
    assert _local(root, "AmdmntInd") == ["true"] * 5
    assert _local(root, "OrgnlMndtId") == ["MND-OLD/1", "MND-OLD/2"]
    assert _local(root, "Id").count("BE69ZZZ050D000000008") >= 2  # the original creditor ids, compacted
    # The old IBAN for a move within the bank; SMNDA, and no old IBAN, for a move to another bank.
    original_accounts = [n for n in root.iter() if etree.QName(n).localname == "OrgnlDbtrAcct"]
    assert len(original_accounts) == 2 and _local(root, "Id").count("SMNDA") == 1


def test_sepa_keeps_utf8_and_escapes_while_safesepa_reduces_to_basic_latin(tmp_path) -> None:
    txs = [_tx(1)]
    write_pain008(_message("pain.008.001.02", [("FRST", txs)]), tmp_path / "sepa.xml")
    write_pain008(_message("pain.008.001.02", [("FRST", [_tx(1)])], safe=True), tmp_path / "safe.xml")
    sepa, safe = (etree.parse(str(tmp_path / name)).getroot() for name in ("sepa.xml", "safe.xml"))
    assert "Zoë D'Hondt & Søn" in _local(sepa, "Nm")
    assert "Zoe D'Hondt ? Son" in _local(safe, "Nm")
    assert "Bibliotheque de Liege - Financien" in _local(safe, "Nm")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")
    for node in safe.iter():
        assert set(node.text.strip() if node.text else "") <= allowed, node.text


def test_the_creation_time_is_the_same_instant_in_utc_whatever_time_zone_it_was_read_in(tmp_path) -> None:
    # PostgreSQL gives a timestamptz back in the session's time zone: the run's file must not change with it.
    from datetime import timedelta, timezone

    texts = []
    for offset in (0, 1, -5):
        message = _message("pain.008.001.02", [("FRST", [_tx(1)])])
        instant = datetime(2026, 11, 20, 5, 0, 3, tzinfo=timezone.utc)
        message.created_at = instant.astimezone(timezone(timedelta(hours=offset)))
        texts.append(Path(write_pain008(message, tmp_path / f"{offset}.xml").path).read_bytes())
    assert texts[0] == texts[1] == texts[2] and b"<CreDtTm>2026-11-20T05:00:03</CreDtTm>" in texts[0]


def test_same_message_gives_the_same_bytes(tmp_path) -> None:
    first = write_pain008(_message("pain.008.001.08", [("RCUR", [_tx(n) for n in range(1, 40)])]), tmp_path / "a.xml")
    second = write_pain008(_message("pain.008.001.08", [("RCUR", [_tx(n) for n in range(1, 40)])]), tmp_path / "b.xml")
    assert first.sha256 == second.sha256
    assert (tmp_path / "a.xml").read_bytes() == (tmp_path / "b.xml").read_bytes()


def test_an_invalid_transaction_is_refused_naming_file_element_and_transaction(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(pain008, "CHUNK", 5)
    txs = [_tx(n) for n in range(1, 13)]
    txs[8] = _tx(9, debtor_iban="XX00")  # in the second chunk
    txs[11] = _tx(12, amount=Decimal("-1.00"))  # later: never the first error reported
    with pytest.raises(ExportRejected) as refused:
        write_pain008(_message("pain.008.001.02", [("FRST", txs)]), tmp_path / "bad.xml")
    message = str(refused.value)
    assert "bad.xml" in message and "IBAN" in message and "fp:BIB:9" in message and "XX00" in message
    assert "at DrctDbtTxInf/DbtrAcct/Id/IBAN (transaction fp:BIB:9, number 9 in the file)" in message
    assert list(tmp_path.iterdir()) == []  # nothing released, no temporary file left


@pytest.mark.parametrize(("workers", "in_flight"), [(1, 0), (1, 1), (1, 100), (2, 0), (2, 100)])
def test_the_first_error_in_file_order_is_reported_whichever_thread_checked_it(
    tmp_path, monkeypatch, workers, in_flight
) -> None:
    # in_flight 0: the main thread takes back nearly every chunk; 100: the worker gets them all and the main
    # thread helps only at the end, newest chunk first, so the later bad chunk is often checked before the earlier.
    monkeypatch.setattr(pain008, "CHUNK", 3)
    monkeypatch.setattr(chunk_validation, "WORKERS", workers)
    monkeypatch.setattr(chunk_validation, "IN_FLIGHT", in_flight)
    txs = [_tx(n) for n in range(1, 31)]
    txs[7] = _tx(8, debtor_iban="XX00")  # third chunk
    for n in (16, 26, 29):  # later chunks
        txs[n - 1] = _tx(n, amount=Decimal("-1.00"))
    with pytest.raises(ExportRejected) as refused:
        write_pain008(_message("pain.008.001.02", [("FRST", txs)]), tmp_path / "bad.xml")
    assert "(transaction fp:BIB:8, number 8 in the file)" in str(refused.value)
    assert list(tmp_path.iterdir()) == []


def test_a_valid_file_is_the_same_whichever_thread_checked_its_chunks(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(pain008, "CHUNK", 4)
    digests = set()
    for in_flight in (0, 2, 100):
        monkeypatch.setattr(chunk_validation, "IN_FLIGHT", in_flight)
        digests.add(write_pain008(_message("pain.008.001.08", [("RCUR", [_tx(n) for n in range(1, 60)])]),
                                  tmp_path / f"{in_flight}.xml").sha256)
    assert len(digests) == 1


def test_a_transaction_without_end_to_end_id_is_named_by_its_number(tmp_path, monkeypatch) -> None:
    # Counted over the whole file: the second payment block's third transaction is the file's sixth.
    monkeypatch.setattr(pain008, "CHUNK", 2)
    rcur = [_tx(n) for n in range(4, 8)]
    rcur[2] = _tx(6, end_to_end_id="")
    with pytest.raises(ExportRejected) as refused:
        write_pain008(_message("pain.008.001.02", [("FRST", [_tx(1), _tx(2), _tx(3)]), ("RCUR", rcur)]),
                      tmp_path / "bad.xml")
    assert "at DrctDbtTxInf/PmtId/EndToEndId (transaction number 6 in the file)" in str(refused.value)


def test_a_header_error_names_its_element_path_and_the_allowed_values(tmp_path) -> None:
    message = _message("pain.008.001.02", [("FRST", [_tx(1)])])
    message.batches[0].sequence_type = "NEXT"
    with pytest.raises(ExportRejected) as refused:
        write_pain008(message, tmp_path / "bad.xml")
    text = str(refused.value)
    assert text.startswith("XSD validation failed: bad.xml: ") and "'NEXT'" in text
    assert "'FRST'" in text and "'RCUR'" in text  # libxml2's set of allowed values is kept
    assert text.endswith(" at PmtInf/PmtTpInf/SeqTp") and "urn:iso" not in text


def test_an_invalid_header_is_refused(tmp_path) -> None:
    message = _message("pain.008.001.08", [("FRST", [_tx(1)])])
    message.creditor = Creditor(name="Bib", iban="BE19068240219012", bic="NOT A BIC", creditor_id="BE69ZZZ050D000000008")
    with pytest.raises(ExportRejected, match="BICFI"):
        write_pain008(message, tmp_path / "bad.xml")
    assert not (tmp_path / "bad.xml").exists()


def test_declared_totals_must_match_the_streamed_transactions(tmp_path) -> None:
    message = _message("pain.008.001.02", [("FRST", [_tx(1), _tx(2)])])
    message.batches[0].count = 3
    with pytest.raises(ExportRejected, match="declares 3 transactions"):
        write_pain008(message, tmp_path / "count.xml")
    assert not (tmp_path / "count.xml").exists()



@pytest.mark.parametrize(("safe", "where", "value"), [
    (True, "end_to_end_id", "fp:BIB_GENT:1"),  # SAFESEPA made it fp:BIB?GENT:1: its return was never matched
    (True, "mandate_id", "MND-ÉÉN"),
    (False, "end_to_end_id", "fp:BIB:" + "1" * 30),  # cut to 35 characters
    (True, "message_id", "fj:BIB_GENT:7"),
    (False, "payment_id", "fj:BIBLIOTHEEK-ANTWERPEN:1234567/FRST"),  # cut, /FRST and /FNAL would be one id
    (True, "original_mandate_reference", "MND-OUD_1"),
])
def test_an_identifier_the_file_would_alter_is_refused(tmp_path, safe, where, value) -> None:
    # Ids tie the bank's answers (returns, rejects) to the collection, the run and the mandate: they are written
    # as they are or not at all, never cut or reduced to the basic set.
    tx = _tx(1, amendment=Amendment(value)) if where == "original_mandate_reference" else _tx(1, **(
        {where: value} if where in Transaction._fields else {}))
    message = _message("pain.008.001.02", [("FRST", [_tx(2), tx])], safe=safe)
    if where == "message_id":
        message.message_id = value
    if where == "payment_id":
        message.batches[0].payment_id = value
    with pytest.raises(ExportRejected, match=re.escape(repr(value))):
        write_pain008(message, tmp_path / "ids.xml")
    assert list(tmp_path.iterdir()) == []


def test_an_identifier_outside_the_basic_set_is_kept_as_it_is_in_sepa_utf8(tmp_path) -> None:
    message = _message("pain.008.001.02", [("FRST", [_tx(1, end_to_end_id="fp:BIB_GENT:1")])])
    message.message_id, message.batches[0].payment_id = "fj:BIB_GENT:7", "fj:BIB_GENT:7/FRST"
    root = etree.parse(write_pain008(message, tmp_path / "a.xml").path).getroot()
    assert (_local(root, "MsgId"), _local(root, "PmtInfId"), _local(root, "EndToEndId")) == (
        ["fj:BIB_GENT:7"], ["fj:BIB_GENT:7/FRST"], ["fp:BIB_GENT:1"])


@pytest.mark.parametrize("in_flight", [0, 1, 100])
def test_a_schema_error_is_told_before_a_count_mismatch_whichever_thread_checked_it(
    tmp_path, monkeypatch, in_flight
) -> None:
    # The schema error is in the file's first chunk; the count is found wrong only after the last one.
    monkeypatch.setattr(pain008, "CHUNK", 2)
    monkeypatch.setattr(chunk_validation, "IN_FLIGHT", in_flight)
    txs = [_tx(n) for n in range(1, 8)]
    txs[0] = _tx(1, debtor_iban="XX00")
    for attempt in range(5):
        message = _message("pain.008.001.02", [("FRST", txs)])
        message.batches[0].count = 9
        with pytest.raises(ExportRejected) as refused:
            write_pain008(message, tmp_path / "bad.xml")
        assert "(transaction fp:BIB:1, number 1 in the file)" in str(refused.value), attempt
        assert "declares" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []

UNSTRUCTURED = "<PstlAdr><Ctry>BE</Ctry><AdrLine>Rue de l'Étuve 12</AdrLine><AdrLine>4000 Liège</AdrLine></PstlAdr>"


@pytest.mark.parametrize(("collected", "address"), [
    (date(2026, 11, 13), UNSTRUCTURED),
    (date(2026, 11, 14), UNSTRUCTURED),
    (date(2026, 11, 16), None),  # EPC: no unstructured address from settlement date 15 November 2026
])
def test_the_creditor_address_in_pain_008_001_02_follows_the_collection_date(tmp_path, collected, address) -> None:
    message = _message("pain.008.001.02", [("RCUR", [_tx(1)])])
    message.batches[0].collection_date = collected
    written = write_pain008(message, tmp_path / "a.xml")
    text = Path(written.path).read_text(encoding="utf-8")
    if address is None:
        assert "<PstlAdr>" not in text and "<AdrLine>" not in text
    else:
        assert address in text


@pytest.mark.parametrize(("city", "street", "address"), [
    ("Liège", None, "<PstlAdr><PstCd>4000</PstCd><TwnNm>Liège</TwnNm><Ctry>BE</Ctry></PstlAdr>"),
    (None, "Rue de l'Étuve", None),  # town and country are the least an address must have in its own fields
])
def test_the_creditor_address_in_pain_008_001_08_is_structured_or_left_out(tmp_path, city, street, address) -> None:
    message = _message("pain.008.001.08", [("RCUR", [_tx(1)])])
    message.creditor = Creditor(name="Bib", iban="BE19068240219012", bic="GKCCBEBB", creditor_id="BE69ZZZ050D000000008",
                                street=street, house_number=None, postal_code="4000", city=city, country="BE")
    text = Path(write_pain008(message, tmp_path / "a.xml").path).read_text(encoding="utf-8")
    if address is None:
        assert "<PstlAdr>" not in text
    else:
        assert address in text and "<AdrLine>" not in text


@pytest.mark.parametrize(
    ("golden_name", "version", "safe"),
    [("pain008_small.xml", "pain.008.001.02", False), ("pain008_small_safesepa_v08.xml", "pain.008.001.08", True)],
)
def test_golden_file(tmp_path, golden_name, version, safe) -> None:
    """Small files reviewed by hand, byte for byte (tests/golden/)."""
    golden = Path(__file__).resolve().parent.parent / "golden" / golden_name
    message = _message(version, [("FRST", [_tx(1)]), ("RCUR", [_tx(2), _tx(3)])], safe=safe)
    write_pain008(message, tmp_path / "small.xml")
    assert (tmp_path / "small.xml").read_bytes() == golden.read_bytes()
