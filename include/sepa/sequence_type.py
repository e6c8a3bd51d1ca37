"""Which sequence type a collection carries (seed 2.4.4, EPC SDD Core rulebook).

>>> sequence_type(one_off=False, has_prior=False, final=False, rcur_only=False)
'FRST'
>>> sequence_type(one_off=False, has_prior=False, final=False, rcur_only=True)
'RCUR'
>>> sequence_type(one_off=False, has_prior=True, final=True, rcur_only=False)
'FNAL'
"""

from __future__ import annotations


def sequence_type(*, one_off: bool, has_prior: bool, final: bool, rcur_only: bool) -> str:
    """OOFF for a one-off mandate; FRST for the first of a series; FNAL for the last; else RCUR.

    ``has_prior``: an earlier collection of this mandate that was not returned,
    or a "last collection" date carried over from a converted mandate.
    The first collection stays FRST even when it is also the last one: a
    series must open with FRST and FNAL is optional. Since November 2016 the
    EPC rulebook lets a first collection go as RCUR; hubs whose bank wants
    that set ``rcur_only``.
    """
    if one_off:
        return "OOFF"
    if not has_prior:
        return "RCUR" if rcur_only else "FRST"
    return "FNAL" if final else "RCUR"
