"""The camt reader on a real third-party statement: values checked against the file's own text."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from include.sepa.camt import read_camt

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "iso20022"


def test_a_german_statement_with_a_batch_entry() -> None:
    camt = read_camt(SAMPLES / "viafintech-camt_parser__053_valid_example.xml")
    assert (camt.version, camt.message_id) == ("camt.053.001.02", "053D2013-12-27T22:05:03.0N130000005")
    (statement,) = camt.statements
    assert (statement.statement_id, statement.electronic_seq) == ("0352C5320131227220503", 130000005)
    assert (statement.opening_balance, statement.closing_balance) == (Decimal("33.06"), Decimal("23.06"))
    assert statement.entries == 4
    # Four entries: -2.00, -3.00, +1.00, and a batch of -6.00 split into its two transactions.
    assert [(line.entry_index, line.amount, line.credit) for line in statement.lines] == [
        (1, Decimal("2.00"), False), (2, Decimal("3.00"), False), (3, Decimal("1.00"), True),
        (4, Decimal("3.50"), False), (4, Decimal("2.50"), False),
    ]
    assert statement.booked_movement() == Decimal("-10.00")  # 33.06 - 10.00 = 23.06
    first, second = statement.lines[0], statement.lines[1]
    assert (first.end_to_end_id, first.tx_servicer_ref, first.entry_servicer_ref) == (
        "EndToEndReference", "BankReference", "2013122710583450000")
    assert second.end_to_end_id is None  # NOTPROVIDED
    assert statement.lines[3].end_to_end_id == "STZV-EtE27122013-11:02-1"
    assert statement.lines[3].unstructured.startswith("Sammelueberwseisung 2. Zahlung")
