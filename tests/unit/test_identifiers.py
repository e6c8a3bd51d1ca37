"""IBAN, BIC and SEPA creditor identifier checks, and IBAN masking.

Test data is checked here with independent implementations of ISO 13616
(IBAN mod 97 = 1) and EPC AT-02 (creditor identifier) before it is used.
"""

from __future__ import annotations

import re

import pytest
from schwifty import IBAN
from stdnum.eu import at_02

from include.sepa.charset import bank_text
from include.sepa.identifiers import (
    bic_problem,
    compact,
    creditor_id_problem,
    iban_problem,
    mandate_reference_problem,
    mask_iban,
    mask_ibans_in,
)


def _letters_to_digits(text: str) -> str:
    return "".join(str(int(ch, 36)) for ch in text)


def iban_checksum_ok(value: str) -> bool:
    """ISO 13616: move the first four characters to the end, A=10..Z=35, the number mod 97 is 1."""
    iban = re.sub(r"\s", "", value).upper()
    return iban.isalnum() and int(_letters_to_digits(iban[4:] + iban[:4])) % 97 == 1


def at02_check_digits(value: str) -> str:
    """EPC AT-02: national identifier (after the business code) + country + '00', 98 - (n mod 97)."""
    cid = re.sub(r"[^0-9A-Za-z]", "", value).upper()
    national = cid[7:]
    return f"{98 - int(_letters_to_digits(national + cid[:2] + '00')) % 97:02d}"


GENERATED_BE = str(IBAN.generate("BE", "734", "0123456").compact)


def corrupt(iban: str, position: int) -> str:
    """Change one digit; mod 97 catches every single-digit error."""
    old = iban[position]
    assert old.isdigit()
    return iban[:position] + str((int(old) + 1) % 10) + iban[position + 1 :]


VALID_IBANS = [
    GENERATED_BE,
    "BE68539007547034",  # public example
    "BE68 5390 0754 7034",
    "be68 5390 0754 7034",
    "DE89370400440532013000",  # public example
    "NL91ABNA0417164300",  # public example
    "NO9386011117947",  # shortest (15)
    "MT84MALT011000012345MTLCAST001S",  # long (31)
]

INVALID_IBANS = [
    corrupt(GENERATED_BE, 6),
    corrupt(GENERATED_BE, 10),
    corrupt(GENERATED_BE, 15),  # last (national check) digit
    corrupt(GENERATED_BE, 2),  # the check digits themselves
    "BE68539007547035",
    "BE00539007547034",
    "DE89370400440532013001",
    "NL91ABNA0417164301",
]


def test_generated_iban_is_belgian_and_valid_by_definition() -> None:
    assert GENERATED_BE.startswith("BE") and len(GENERATED_BE) == 16
    assert GENERATED_BE[4:7] == "734" and GENERATED_BE[7:14] == "0123456"
    assert iban_checksum_ok(GENERATED_BE)
    # Belgian BBAN: the last two digits are the first ten mod 97 (97 for 0)
    assert int(GENERATED_BE[14:]) == int(GENERATED_BE[4:14]) % 97 or 97


@pytest.mark.parametrize("value", VALID_IBANS)
def test_valid_ibans(value: str) -> None:
    assert iban_checksum_ok(value)
    assert iban_problem(value) is None


@pytest.mark.parametrize("value", INVALID_IBANS)
def test_invalid_ibans(value: str) -> None:
    assert not iban_checksum_ok(value)
    problem = iban_problem(value)
    assert problem is not None
    assert problem.startswith(f"IBAN {mask_iban(value)} is invalid: ")


@pytest.mark.parametrize("value", [None, "", "   ", "\t\n"])
def test_missing_iban(value: str | None) -> None:
    assert iban_problem(value) == "IBAN missing"


@pytest.mark.parametrize(
    "value",
    [
        *INVALID_IBANS,
        "BE6853900754703X",  # letter where a digit belongs
        "BE68-5390-0754-7034",  # dashes
        "BE68.5390.0754.7034",
        "BE685390075470345",  # too long
        "BE6853900754703",  # too short
        "XX68539007547034",  # unknown country
    ],
)
def test_iban_problem_never_reveals_the_hidden_middle(value: str) -> None:
    # The message goes to logs and reports: like mask_iban it may show the
    # country, the check digits and the last four characters, nothing between.
    problem = iban_problem(value)
    assert problem is not None
    alnum = re.sub(r"[^0-9A-Z]", "", value.upper())
    middle = alnum[4:-4]
    assert len(middle) >= 7
    assert middle not in re.sub(r"[^0-9A-Z]", "", problem.upper()), problem


# --- mask_iban -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("BE68 5390 0754 7034", "BE68 **** **** 7034"),
        ("BE68539007547034", "BE68 **** **** 7034"),
        ("be68539007547034", "BE68 **** **** 7034"),
        ("  BE68\t5390 0754 7034\n", "BE68 **** **** 7034"),
        ("DE89370400440532013000", "DE89 **** **** 3000"),
        ("NO9386011117947", "NO93 **** **** 7947"),
        ("MT84MALT011000012345MTLCAST001S", "MT84 **** **** 001S"),
        ("BE6853900", "BE68 **** **** 3900"),  # 9 characters: one still hidden
        # 8 or fewer: only the country is shown
        ("BE685390", "BE******"),
        ("BE68", "BE**"),
        ("B", "B"),
        (None, ""),
        ("", ""),
        ("   ", ""),
    ],
)
def test_mask_iban(value: str | None, expected: str) -> None:
    assert mask_iban(value) == expected


@pytest.mark.parametrize("value", VALID_IBANS + INVALID_IBANS + ["BE6853900", "BE685390", "BE68"])
def test_mask_iban_shows_at_most_first_and_last_four(value: str) -> None:
    iban = re.sub(r"\s", "", value).upper()
    masked = mask_iban(value)
    shown = masked.replace("*", "").replace(" ", "")
    if len(iban) > 8:
        assert shown == iban[:4] + iban[-4:]
        assert masked == f"{iban[:4]} **** **** {iban[-4:]}"
    else:
        assert shown == iban[:2]
        assert len(masked) == len(iban)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("value 'BE68539007547034'", "value 'BE68 **** **** 7034'"),
        ("value 'be68539007547034' refused", "value 'BE68 **** **** 7034' refused"),
        # longer than any IBAN: masked all the same
        ("value 'BE6853900754703412345678901234567890'", "value 'BE68 **** **** 7890'"),
        ("BE68" + "1" * 200, "BE68 **** **** 1111"),
        # glued to what follows: a letter outside A-Z, punctuation, an underscore
        ("BE68539007547034é", "BE68 **** **** 7034é"),
        ("BE68539007547034_x", "BE68 **** **** 7034_x"),
        ("éBE68539007547034", "éBE68 **** **** 7034"),
        ("(IBAN:BE68539007547034)", "(IBAN:BE68 **** **** 7034)"),
        # in groups of four, the words after it left alone
        ("IBAN BE68 5390 0754 7034 is wrong", "IBAN BE68 **** **** 7034 is wrong"),
        ("NL91 ABNA 0417 1643 00, DE89 3704 0044 0532 0130 00.", "NL91 **** **** 4300, DE89 **** **** 3000."),
        ("BE68539007547034 is wrong", "BE68 **** **** 7034 is wrong"),
        # not the start of an IBAN: left as it is
        ("AB12 test", "AB12 test"),
        ("BE681234567", "BE681234567"),  # 7 characters after the check digits
        ("reference xBE68539007547034", "reference xBE68539007547034"),  # part of a longer word
        ("2026-03-16", "2026-03-16"),
    ],
)
def test_mask_ibans_in(text: str, expected: str) -> None:
    assert mask_ibans_in(text) == expected


@pytest.mark.parametrize("value", VALID_IBANS + INVALID_IBANS)
def test_mask_ibans_in_hides_the_middle_of_every_iban_however_it_is_followed(value: str) -> None:
    iban = re.sub(r"\s", "", value).upper()
    for text in (f"'{value}'", f"{iban}é", f"{iban}{iban[4:]}", f"x {value.lower()} y"):
        masked = mask_ibans_in(text)
        assert iban[4:-4] not in re.sub(r"[^0-9A-Z]", "", masked.upper()), (text, masked)


# --- BIC ---------------------------------------------------------------------------

BIC_SHAPE = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")


@pytest.mark.parametrize("value", ["KREDBEBB", "GEBABEBB", "GEBABEBBXXX", "GKCCBEBB", "BBRUBEBB"])
@pytest.mark.parametrize("required", [False, True])
def test_valid_bic(value: str, required: bool) -> None:
    assert BIC_SHAPE.match(value)
    assert bic_problem(value, required=required) is None


@pytest.mark.parametrize(
    "value",
    [
        "KREDBEB",  # 7 characters
        "KREDBEBBX",  # 9 characters
        "KREDBEBBXX",  # 10 characters
        "KRED",
        "KREDXXBB",  # no country XX
    ],
)
def test_invalid_bic(value: str) -> None:
    problem = bic_problem(value)
    assert problem is not None
    assert problem.startswith(f"BIC {compact(value)} is invalid: ")
    assert bic_problem(value, required=True) == problem


@pytest.mark.parametrize("value", [None, "", "   "])
def test_optional_bic(value: str | None) -> None:
    assert bic_problem(value) is None
    assert bic_problem(value, required=False) is None
    assert bic_problem(value, required=True) == "BIC missing"


# --- creditor identifier (AT-02) -------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "BE69ZZZ050D000000008",  # public example
        "BE69 ZZZ 050D000000008",
        "be69zzz050d000000008",
        "BE69ABC050D000000008",  # the business code is not part of the check
        "DE98ZZZ09999999999",  # Deutsche Bundesbank example
    ],
)
def test_valid_creditor_identifier(value: str) -> None:
    assert at02_check_digits(value) == re.sub(r"\s", "", value)[2:4]
    assert at_02.is_valid(value)
    assert creditor_id_problem(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "BE68ZZZ050D000000008",  # check digits off by one
        "BE70ZZZ050D000000008",
        "BE00ZZZ050D000000008",
        "BE69ZZZ050D000000009",  # national identifier changed
        "DE97ZZZ09999999999",
    ],
)
def test_creditor_identifier_with_wrong_check_digits(value: str) -> None:
    assert at02_check_digits(value) != value[2:4]
    problem = creditor_id_problem(value)
    assert problem is not None
    assert problem.startswith(f"creditor identifier {compact(value)} is invalid: ")


@pytest.mark.parametrize("value", ["BE69", "BE69ZZZ", "69ZZZ050D000000008", "BE69ZZZ050D00000000!"])
def test_malformed_creditor_identifier(value: str) -> None:
    problem = creditor_id_problem(value)
    assert problem is not None and problem.startswith("creditor identifier ")


@pytest.mark.parametrize("value", [None, "", "  "])
def test_missing_creditor_identifier(value: str | None) -> None:
    assert creditor_id_problem(value) == "creditor identifier missing"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(" be68 5390\t0754 7034 ", "BE68539007547034"), ("kredbebb", "KREDBEBB"), ("", "")],
)
def test_compact(value: str, expected: str) -> None:
    assert compact(value) == expected


# --- mandate references (UMR, MndtId) -------------------------------------------------------

GOOD_UMRS = ["MND-000001", "fm:BIB:12", "062000000123", "A", "x" * 35, "BIB/2019/42", "Lid (2024) nr. 7, '+?'", "A /B"]
BAD_UMRS = [
    (None, "missing"), ("", "missing"), ("  ", "missing"), ("x" * 36, "has 36 characters"),
    ("BIB//42", "holds '//'"), ("/BIB-42", "'/' at an end"), ("BIB-42/", "'/' at an end"), ("/", "'/' at an end"),
    ("Mandaat Zoë", "holds 'ë'"), ("MND_7", "holds '_'"), ("MND\t7", "holds '\\t'"), ("MND&7", "holds '&'"), ("MND_7#", "holds '#', '_':"),
    (" MND-7", "starts or ends with a space"), ("MND-7 ", "starts or ends with a space"), ("MND  7", "two in a row"),
]


@pytest.mark.parametrize("value", GOOD_UMRS)
def test_mandate_references_banks_take(value: str) -> None:
    assert mandate_reference_problem(value) is None
    # and the bank file carries them unchanged, in either character mode
    assert bank_text(value, 35, safe=True) == bank_text(value, 35, safe=False) == value


@pytest.mark.parametrize(("value", "reason"), BAD_UMRS)
def test_mandate_references_banks_refuse_or_the_file_would_change(value: str | None, reason: str) -> None:
    problem = mandate_reference_problem(value)
    assert problem is not None and reason in problem, problem


def test_every_printable_ascii_character_in_a_mandate_reference() -> None:
    # The EPC basic Latin set, spelled out here: exactly these pass in the middle of an id.
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")
    for code in range(0x20, 0x7F):
        char = chr(code)
        assert (mandate_reference_problem(f"M{char}7") is None) == (char in allowed), repr(char)


def test_the_quick_answer_for_a_plain_mandate_reference_is_the_full_rule_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """mandate_reference_problem answers plain references without working out bank_text; the answer is the same."""
    import random

    from include.sepa import identifiers

    rng = random.Random(7)
    alphabet = "aZ09/-?:().,'+ &ë\t"
    values = ["", " ", "/", "A", "A/", "/A", "A//B", "A / B", "A  B", " A", "A ", "x" * 35, "x" * 36]
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(20_000)]
    quick = [identifiers.mandate_reference_problem(value) for value in values]
    monkeypatch.setattr(identifiers, "kept_as_is", lambda *args, **kwargs: False)  # never the quick answer
    assert quick == [identifiers.mandate_reference_problem(value) for value in values]
    assert quick.count(None) > 1_000
