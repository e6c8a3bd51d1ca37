"""Transaction-code patterns: exact codes, or prefixes ending in '*'."""

from __future__ import annotations

import sys

import pytest

from include.sepa.transaction_codes import matcher, meaning

# (patterns, code, matches): the rule's table, also the SQL twin's (tests/integration/test_mandate_check.py).
CASES = [
        # exact codes
        (["LID"], "LID", True),
        (["LID"], "LIDGELD", False),  # an exact code is no prefix
        (["LID"], "LI", False),
        (["LID"], "XLID", False),
        (["LID"], "", False),
        # prefixes
        (["BOETE*"], "BOETE-LAAT", True),
        (["BOETE*"], "BOETE", True),  # '*' also matches nothing
        (["BOETE*"], "BOET", False),
        (["BOETE*"], "XBOETE", False),
        (["LID", "BOETE*"], "BOETE-LAAT", True),
        (["LID", "BOETE*"], "LIDGELD", False),
        (["LID", "BOETE*"], "LID", True),
        (["LID*", "LIDGELD"], "LIDGELD", True),
        (["A*", "B*"], "B1", True),
        (["A*", "B*"], "C1", False),
        # empty pattern list matches nothing
        ([], "LID", False),
        ([], "", False),
        # '*' alone matches everything
        (["*"], "ANYTHING", True),
        (["*"], "", True),
        (["LID", "*"], "OTHER", True),
        # whitespace around patterns is ignored
        ([" LID "], "LID", True),
        (["\tLID\n"], "LID", True),
        ([" BOETE* "], "BOETE-LAAT", True),
        ([" * "], "ANYTHING", True),
        # blank patterns are ignored, not an exact match for ""
        (["", "   "], "", False),
        (["", "   "], "LID", False),
        # what str.strip() takes off: every Unicode space, not only ASCII
        (["\u3000LID\xa0", "\x1cBOETE*\u2028"], "LID", True),
        (["\u3000LID\xa0", "\x1cBOETE*\u2028"], "BOETE-X", True),
        # a '*' inside a pattern is no wildcard, accents and case count, codes are compared whole
        (["A*B"], "AXB", False),
        (["A*B"], "A*B", True),
        (["Zoë*"], "ZOË-1", False),
        (["Zoë*"], "Zoë-1", True),
        (["lid"], "LID", False),
        (["B_*"], "BX1", False),
        (["B%"], "BX", False),
        (["B%"], "B%", True),
    ]


@pytest.mark.parametrize(("patterns", "code", "expected"), CASES)
def test_matcher(patterns: list[str], code: str, expected: bool) -> None:
    assert matcher(patterns)(code) is expected


def test_matcher_takes_a_one_shot_iterable_and_can_be_reused() -> None:
    matches = matcher(p for p in ["LID", "BOETE*"])
    assert [matches(c) for c in ["LID", "BOETE-X", "LIDGELD", "LID", "BOETE"]] == [True, True, False, True, True]


def test_meaning_strips_what_str_strip_strips() -> None:
    spaces = "".join(character for character in map(chr, range(sys.maxunicode + 1)) if character.isspace())
    assert meaning(f"{spaces}LID{spaces}") == ("LID", None)
    assert meaning(f"{spaces}*{spaces}") == (None, "")
    assert meaning(spaces) == (None, None)
