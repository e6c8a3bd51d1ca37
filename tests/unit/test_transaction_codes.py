"""Transaction-code patterns: exact codes, or prefixes ending in '*'."""

from __future__ import annotations

import pytest

from include.sepa.transaction_codes import matcher


@pytest.mark.parametrize(
    ("patterns", "code", "expected"),
    [
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
    ],
)
def test_matcher(patterns: list[str], code: str, expected: bool) -> None:
    assert matcher(patterns)(code) is expected


def test_matcher_takes_a_one_shot_iterable_and_can_be_reused() -> None:
    matches = matcher(p for p in ["LID", "BOETE*"])
    assert [matches(c) for c in ["LID", "BOETE-X", "LIDGELD", "LID", "BOETE"]] == [True, True, False, True, True]
