"""The column-wise transaction formatter gives exactly what formatting row by row gives."""

from __future__ import annotations

import random
import re
from datetime import date
from decimal import Decimal

import pytest

from include.errors import ExportRejected
from include.finance.reference_numbers import ogm, rf
from include.sepa import pain008
from include.sepa.amendments import Amendment
from include.sepa.charset import bank_text
from include.sepa.pain008 import Transaction


def _row_by_row(version: str, chunk: list[Transaction], safe: bool) -> str:
    """The plain definition: each transaction's fields made bank text one by one, then the template filled."""
    templates = pain008._TEMPLATES[version]
    element = "BIC" if version == "pain.008.001.02" else "BICFI"

    def compact(value: str) -> str:
        return re.sub(r"\s+", "", value).upper()

    rows = []
    for e2e, amount, mandate, signed, name, iban, bic, reference, change in chunk:
        agent = f"<{element}>{compact(bic)}</{element}>" if bic else "<Othr><Id>NOTPROVIDED</Id></Othr>"
        rows.append(
            templates.transaction
            % (
                bank_text(e2e, 35, safe=safe),
                f"{amount:.2f}",
                bank_text(mandate, 35, safe=safe),
                signed.isoformat(),
                pain008._amendment(change, safe) if change else "",
                agent,
                bank_text(name, 70, safe=safe),
                compact(iban),
                "ISO" if reference.upper().startswith("RF") else "BBA",
                compact(reference),
            )
        )
    return "".join(rows)


NAMES = ["Jan Peeters", "Zoë D'Hondt", "De Smet & Co", "<b>", "  An  ", "a|b", "a | b", "Œuvre «x» 😀", "x" * 80, "", None]
# Ids are carried unchanged or refused (test below): the ones each mode keeps, escaped in UTF-8.
IDS = {True: ["fp:BIB:1", "fp BIB 2", "O'Brien+(1)?", "x" * 35], False: ["fp:BIB:1", "MND-é", "a|b", "A&B<1>", "x" * 35]}
ALTERED_IDS = {True: ["MND-é", "a|b", "A&B", "x" * 36, "tab\there", "  lead", "a  b"], False: ["x" * 36, "tab\there",
                                                                                                "  lead", "a  b"]}
AMOUNTS = [Decimal("1.00"), Decimal("12.5"), Decimal("0.005"), Decimal("1E+2"), Decimal("999999999.99"), 7]
IBANS = ["BE71096123456769", "be71 0961 2345 6769", "NL91ABNA0417164300"]
BICS = ["KREDBEBB", "gkcc bebb", None, ""]
AMENDMENTS = [None, None, None, Amendment(original_mandate_reference="OUD/1"), Amendment(original_debtor_iban=IBANS[1]),
              Amendment(original_debtor_iban=IBANS[0], debtor_agent_changed=True)]


def _chunk(rng: random.Random, size: int, plain: bool, safe: bool = True) -> list[Transaction]:
    """A chunk of transactions: plain ones (the fast paths) or drawn from hostile values."""
    rows = []
    for n in range(size):
        reference = ogm("062", n + 1) if rng.random() < 0.7 else rf("71", n + 1)
        if plain:
            rows.append(Transaction(f"fp:BIB:{n}", Decimal(rng.randrange(1, 10**6)).scaleb(-2), f"BIB-M-{n:07d}",
                                    date(2024, 1, 1 + n % 28), "Jan Peeters", IBANS[0], BICS[0], reference))
            continue
        if rng.random() < 0.3:
            reference = " ".join(reference[i:i + 4] for i in range(0, len(reference), 4)).lower()
        rows.append(Transaction(rng.choice(IDS[safe]), rng.choice(AMOUNTS), rng.choice(IDS[safe]),
                                date(2020 + n % 7, 1 + n % 12, 1 + n % 28), rng.choice(NAMES), rng.choice(IBANS),
                                rng.choice(BICS), reference, rng.choice(AMENDMENTS)))
    return rows


@pytest.mark.parametrize("version", ["pain.008.001.02", "pain.008.001.08"])
@pytest.mark.parametrize("safe", [False, True])
@pytest.mark.parametrize("plain", [True, False])
def test_column_wise_formatting_equals_row_by_row(version: str, safe: bool, plain: bool) -> None:
    rng = random.Random(f"{version}{safe}{plain}")
    for size in (1, 2, 17, 200):
        chunk = _chunk(rng, size, plain, safe)
        body, total = pain008._format_chunk(pain008._TEMPLATES[version], chunk, safe)
        assert body == _row_by_row(version, chunk, safe)
        assert total == sum((t.amount for t in chunk), Decimal("0.00"))


def test_a_single_hostile_value_in_a_plain_chunk_is_still_reworked() -> None:
    chunk = _chunk(random.Random(1), 50, plain=True)
    chunk[31] = chunk[31]._replace(debtor_name="De Smet & Zoë", debtor_iban="be71 0961 2345 6769",
                                   amount=Decimal("3.5"), reference=rf("71", 9).lower())
    body, _ = pain008._format_chunk(pain008._TEMPLATES["pain.008.001.02"], chunk, safe=True)
    assert body == _row_by_row("pain.008.001.02", chunk, safe=True)
    assert "<Nm>De Smet ? Zoe</Nm>" in body and "<InstdAmt Ccy=\"EUR\">3.50</InstdAmt>" in body


@pytest.mark.parametrize("safe", [False, True])
@pytest.mark.parametrize("field", ["end_to_end_id", "mandate_id"])
def test_an_id_the_mode_would_alter_is_refused_not_altered(safe: bool, field: str) -> None:
    for value in ALTERED_IDS[safe]:
        chunk = _chunk(random.Random(2), 20, plain=True)
        chunk[7] = chunk[7]._replace(**{field: value})
        with pytest.raises(ExportRejected, match=re.escape(repr(value))):
            pain008._format_chunk(pain008._TEMPLATES["pain.008.001.08"], chunk, safe)
