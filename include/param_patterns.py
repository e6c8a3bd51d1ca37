"""The patterns the trigger forms check params against, defined once (a light module: DAG files import it at the top).

Surrounding spaces are allowed everywhere: the tasks strip them.

>>> import re
>>> bool(re.fullmatch(RUN, " fj:BIB:12 ")), bool(re.fullmatch(RUN, "fj:BIB:0")), bool(re.fullmatch(RUN_OR_EMPTY, ""))
(True, False, True)
>>> bool(re.fullmatch(REFERENCES, "fp:BIB:30, fp:BIB:31")), bool(re.fullmatch(REFERENCES, ""))
(True, False)
>>> bool(re.fullmatch(AMOUNT, "1234.50")), bool(re.fullmatch(AMOUNT, "1234,50"))
(True, False)
"""

_RUN = r"fj:[^:\s,]+:[1-9][0-9]*"  # a collection run, e.g. fj:BIB:12
_LOI = r"fp:[^:\s,]+:[1-9][0-9]*"  # a payment reference, e.g. fp:BIB:30

RUN = rf"^\s*{_RUN}\s*$"
RUN_OR_EMPTY = rf"^\s*({_RUN})?\s*$"
REFERENCES = rf"^\s*{_LOI}(\s*,\s*{_LOI})*\s*,?\s*$"  # fp:BIB:30 or fp:BIB:30, fp:BIB:31
REFERENCES_OR_EMPTY = rf"^\s*({_LOI}(\s*,\s*{_LOI})*)?\s*,?\s*$"
AMOUNT = r"^\d+(\.\d{1,2})?$"  # what a bank credited, e.g. 1234.56: digits, a decimal point, at most two places
