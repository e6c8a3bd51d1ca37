"""Sequence type of a collection (EPC SDD Core): OOFF, FRST, RCUR, FNAL."""

from __future__ import annotations

import itertools

import pytest

from include.sepa.sequence_type import sequence_type

# The whole truth table, written out row by row from the rulebook rules:
#   one-off mandate                           -> OOFF (nothing else matters)
#   first of a series                         -> FRST, or RCUR when the hub is rcur_only
#   first of a series that is also the last   -> still FRST (FRST wins over FNAL)
#   later collection, last one                -> FNAL
#   later collection, not the last            -> RCUR
TRUTH_TABLE = [
    # one_off, has_prior, final, rcur_only, expected
    (True, False, False, False, "OOFF"),
    (True, False, False, True, "OOFF"),
    (True, False, True, False, "OOFF"),
    (True, False, True, True, "OOFF"),
    (True, True, False, False, "OOFF"),
    (True, True, False, True, "OOFF"),
    (True, True, True, False, "OOFF"),
    (True, True, True, True, "OOFF"),
    (False, False, False, False, "FRST"),
    (False, False, False, True, "RCUR"),
    (False, False, True, False, "FRST"),  # first and last: FRST, not FNAL
    (False, False, True, True, "RCUR"),  # rcur_only first and last: RCUR, not FNAL
    (False, True, False, False, "RCUR"),
    (False, True, False, True, "RCUR"),
    (False, True, True, False, "FNAL"),
    (False, True, True, True, "FNAL"),
]


def test_truth_table_is_complete() -> None:
    assert sorted(row[:4] for row in TRUTH_TABLE) == sorted(itertools.product([False, True], repeat=4))


@pytest.mark.parametrize(("one_off", "has_prior", "final", "rcur_only", "expected"), TRUTH_TABLE)
def test_sequence_type(one_off: bool, has_prior: bool, final: bool, rcur_only: bool, expected: str) -> None:
    assert sequence_type(one_off=one_off, has_prior=has_prior, final=final, rcur_only=rcur_only) == expected


def test_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        sequence_type(False, False, False, False)  # type: ignore[misc]
