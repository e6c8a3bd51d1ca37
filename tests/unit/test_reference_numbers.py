"""OGM/VCS structured communications and ISO 11649 RF creditor references.

Expected values come from public examples or from the definitions, re-implemented
here: an OGM check is ``int(base) % 97`` (97 when that is 0); an RF check is
``98 - int(base + "RF00" with R=27, F=15) % 97``.
"""

from __future__ import annotations

import pytest
from stdnum import iso11649

from include.errors import ReferenceNumberError
from include.finance.reference_numbers import (
    ReferenceFormat,
    display_reference,
    format_ogm,
    format_rf,
    issuer,
    make_reference,
    ogm,
    ogm_base,
    parse_ogm,
    parse_rf,
    rf,
)


def ogm_check(base: str) -> str:
    """Belgian OGM/VCS check digits, straight from the definition."""
    return f"{int(base) % 97 or 97:02d}"


def rf_check(reference: str) -> str:
    """ISO 11649 check digits: reference + 'RF00', letters as A=10..Z=35, 98 - (n mod 97)."""
    rearranged = reference + "RF00"
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return f"{98 - int(digits) % 97:02d}"


def test_helpers_agree_with_public_examples() -> None:
    # +++123/4567/89002+++: 1234567890 = 97 * 12727504 + 2 -> 02
    assert ogm_check("1234567890") == "02"
    # ISO 11649 example RF18 5390 0754 7034
    assert rf_check("539007547034") == "18"
    # a base divisible by 97 gets 97, never 00
    assert ogm_check("0000000097") == "97"


# --- ogm_base ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "counter", "expected"),
    [
        ("062", 1, "0620000001"),
        ("062", 9_999_999, "0629999999"),  # largest counter after a 3-digit prefix
        ("", 1_234_567_890, "1234567890"),
        ("", 0, "0000000000"),
        ("12345", 99_999, "1234599999"),
        ("123456789", 7, "1234567897"),
        ("000", 42, "0000000042"),
    ],
)
def test_ogm_base(prefix: str, counter: int, expected: str) -> None:
    assert ogm_base(prefix, counter) == expected


@pytest.mark.parametrize(
    ("prefix", "counter"),
    [
        ("062", 10_000_000),  # 8 digits do not fit in 7
        ("12345", 100_000),
        ("123456789", 10),
        ("1234567890", 0),  # a ten-digit prefix leaves no room for a counter
        ("", 10_000_000_000),
        ("062", -1),
        ("", -5),
    ],
)
def test_ogm_base_counter_overflow_or_negative_raises(prefix: str, counter: int) -> None:
    with pytest.raises(ReferenceNumberError):
        ogm_base(prefix, counter)


@pytest.mark.parametrize("prefix", ["06A", "-12", " 12", "1.2", "RF"])
def test_ogm_base_non_digit_prefix_raises(prefix: str) -> None:
    with pytest.raises(ReferenceNumberError):
        ogm_base(prefix, 1)


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("\uff10\uff16\uff12", id="fullwidth-062"),  # str.isdigit() is True
        pytest.param("\u0660\u0666\u0662", id="arabic-indic-062"),  # str.isdigit() is True
        pytest.param("\u00b2", id="superscript-2"),  # str.isdigit() is True, int() refuses it
    ],
)
def test_ogm_base_refuses_non_ascii_digits(prefix: str) -> None:
    # A structured communication is made of the ASCII digits 0-9 only.
    with pytest.raises(ReferenceNumberError):
        ogm_base(prefix, 1)


# --- ogm / format_ogm / parse_ogm ---------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "counter", "expected"),
    [
        # public example +++123/4567/89002+++
        ("", 1_234_567_890, "123456789002"),
        ("1234", 567_890, "123456789002"),
        # 620000001 mod 97: 10^7 = 76, 10^8 = 81 (mod 97); 6*81 + 2*76 + 1 = 639 = 6*97 + 57
        ("062", 1, "062000000157"),
        # 620000000 = 56 (mod 97), so +41 is a multiple of 97 -> check 97, not 00
        ("062", 41, "062000004197"),
        # 97 itself: mod 97 = 0 -> 97
        ("", 97, "000000009797"),
        # 0 -> 97
        ("", 0, "000000000097"),
    ],
)
def test_ogm_known_values(prefix: str, counter: int, expected: str) -> None:
    assert ogm(prefix, counter) == expected


@pytest.mark.parametrize(
    ("prefix", "counter"),
    [("062", 1), ("062", 2), ("062", 96), ("062", 9_999_999), ("9", 123_456_789), ("", 1), ("55555", 12_345)],
)
def test_ogm_matches_definition(prefix: str, counter: int) -> None:
    base = prefix + str(counter).zfill(10 - len(prefix))
    assert ogm(prefix, counter) == base + ogm_check(base)


def test_ogm_overflow_raises() -> None:
    with pytest.raises(ReferenceNumberError):
        ogm("062", 10_000_000)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("123456789002", "+++123/4567/89002+++"),
        ("062000000157", "+++062/0000/00157+++"),
        ("000000009797", "+++000/0000/09797+++"),
    ],
)
def test_format_ogm(number: str, expected: str) -> None:
    assert format_ogm(number) == expected


@pytest.mark.parametrize(
    "text",
    [
        "+++123/4567/89002+++",
        "***123/4567/89002***",
        "123456789002",
        "123/4567/89002",
        "+++123456789002+++",
        "+++ 123 / 4567 / 89002 +++",
        "  +++123/4567/89002+++  ",
        "123 4567 89002",
        "123-4567-89002",
        "123.4567.89002",
        " 123456789002\n",
    ],
)
def test_parse_ogm_accepts_common_spellings(text: str) -> None:
    assert parse_ogm(text) == "123456789002"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+++062/0000/00157+++", "062000000157"),
        ("***062/0000/04197***", "062000004197"),  # check 97
        ("000000009797", "000000009797"),
    ],
)
def test_parse_ogm_other_values(text: str, expected: str) -> None:
    assert parse_ogm(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "+++123/4567/89003+++",  # wrong check digits (02 is right)
        "***123/4567/89001***",
        "123456789012",
        "062000004100",  # multiple of 97 written with 00 instead of 97
        "12345678900",  # 11 digits
        "1234567890021",  # 13 digits
        "+++123/4567/8900A+++",
        "",
        "   ",
        "RF18539007547034",
        "abc",
    ],
)
def test_parse_ogm_rejects(text: str) -> None:
    with pytest.raises(ReferenceNumberError):
        parse_ogm(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19\uff10\uff10\uff12", id="fullwidth-plain"
        ),
        pytest.param(
            "+++\uff11\uff12\uff13/\uff14\uff15\uff16\uff17/\uff18\uff19\uff10\uff10\uff12+++", id="fullwidth-plusses"
        ),
    ],
)
def test_parse_ogm_never_returns_non_ascii_digits(text: str) -> None:
    # "The twelve digits": either refuse the text or hand back ASCII digits that
    # compare equal to the stored reference -- never fullwidth look-alikes.
    try:
        result = parse_ogm(text)
    except ReferenceNumberError:
        return
    assert result == "123456789002"


@pytest.mark.parametrize(("prefix", "counter"), [("062", 1), ("", 1_234_567_890), ("062", 41), ("7", 5)])
def test_ogm_format_parse_round_trip(prefix: str, counter: int) -> None:
    number = ogm(prefix, counter)
    assert parse_ogm(format_ogm(number)) == number
    assert parse_ogm(format_ogm(number).replace("+", "*")) == number


# --- RF creditor references --------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "counter", "expected"),
    [
        # "0620000001" + "271500" = 620000001271500; mod 97 = 81; 98 - 81 = 17
        ("062", 1, "RF170620000001"),
        # a check below 10 keeps its leading zero
        ("062", 5, "RF060620000005"),
    ],
)
def test_rf_known_values(prefix: str, counter: int, expected: str) -> None:
    assert rf_check(expected[4:]) == expected[2:4]  # the table itself is right
    assert rf(prefix, counter) == expected


@pytest.mark.parametrize(
    ("prefix", "counter"),
    [("062", 1), ("062", 2), ("062", 41), ("", 0), ("", 1_234_567_890), ("9", 999_999_999), ("12345", 54_321)],
)
def test_rf_matches_definition_and_stdnum(prefix: str, counter: int) -> None:
    base = prefix + str(counter).zfill(10 - len(prefix))
    reference = rf(prefix, counter)
    assert reference == "RF" + rf_check(base) + base
    assert iso11649.is_valid(reference)
    assert parse_rf(reference) == reference
    assert parse_rf(format_rf(reference)) == reference


def test_rf_overflow_raises() -> None:
    with pytest.raises(ReferenceNumberError):
        rf("062", 10_000_000)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("RF18539007547034", "RF18 5390 0754 7034"),
        ("RF170620000001", "RF17 0620 0000 01"),
    ],
)
def test_format_rf(reference: str, expected: str) -> None:
    assert format_rf(reference) == expected


@pytest.mark.parametrize(
    "text",
    ["RF18539007547034", "RF18 5390 0754 7034", "rf18539007547034", " RF18 5390 0754 7034 "],
)
def test_parse_rf_accepts(text: str) -> None:
    assert parse_rf(text) == "RF18539007547034"


@pytest.mark.parametrize(
    "text",
    [
        "RF19539007547034",  # wrong check digits
        "RF18539007547035",  # wrong body
        "RF00539007547034",
        "XX18539007547034",
        "123456789002",
        "",
    ],
)
def test_parse_rf_rejects(text: str) -> None:
    with pytest.raises(ReferenceNumberError):
        parse_rf(text)


# --- make_reference / display_reference / issuer -----------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (ReferenceFormat.OGM, "062000000157"),
        ("OGM", "062000000157"),
        (ReferenceFormat.RF, "RF170620000001"),
        ("RF", "RF170620000001"),
    ],
)
def test_make_reference(fmt: ReferenceFormat | str, expected: str) -> None:
    assert make_reference(fmt, "062", 1) == expected


@pytest.mark.parametrize("fmt", ["SEPA", "ogm", "", "BBA"])
def test_make_reference_unknown_format(fmt: str) -> None:
    with pytest.raises(ValueError):
        make_reference(fmt, "062", 1)


@pytest.mark.parametrize(
    ("reference", "shown", "issued_by"),
    [
        ("123456789002", "+++123/4567/89002+++", "BBA"),
        ("062000000157", "+++062/0000/00157+++", "BBA"),
        ("RF18539007547034", "RF18 5390 0754 7034", "ISO"),
        ("rf18539007547034", "RF18 5390 0754 7034", "ISO"),
        ("RF170620000001", "RF17 0620 0000 01", "ISO"),
    ],
)
def test_display_reference_and_issuer(reference: str, shown: str, issued_by: str) -> None:
    assert display_reference(reference) == shown
    assert issuer(reference) == issued_by
