"""Mandate amendments (SDD rulebook, AT-24): telling the debtor's bank what changed since the last collection.

A collection keeps what it tells the banks about its mandate: the mandate
id (UMR), the debtor's account and the creditor identifier, as they were
when the collection was made. The bank file writes those, and the mandate's
next collection compares its own with them. Where one differs, that next
collection carries the amendment (``AmdmntInd`` true, the originals in
``AmdmntInfDtls``):

* another mandate id: the old one, ``OrgnlMndtId``;
* another creditor identifier: the old one, ``OrgnlCdtrSchmeId``;
* another account at the same bank: the old IBAN, ``OrgnlDbtrAcct``;
* an account at another bank: ``OrgnlDbtrAgt`` ``SMNDA`` (same mandate,
  new debtor agent) instead of the old IBAN, which the new bank never held.

Only the first collection after a change carries it; the one after compares
with that one. A mandate without an earlier collection in Innen (a new one,
or one converted with only a "last collection" date) has nothing to compare
with, and collections made before Innen kept these values count as saying
nothing.

>>> before = Told("BIB-M-7", "BE68539007547034", "BE69ZZZ050D000000008")
>>> amendment(before, before) is None
True
>>> amendment(before, before._replace(debtor_iban="BE57 5390 0754 7135"))
Amendment(original_mandate_reference=None, original_creditor_id=None, original_debtor_iban='BE68539007547034', debtor_agent_changed=False)
>>> amendment(before, before._replace(debtor_iban="BE71096123456769")).debtor_agent_changed
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from include.sepa.identifiers import compact


class Told(NamedTuple):
    """What a collection tells the banks about its mandate."""

    mandate_reference: str | None
    debtor_iban: str | None
    creditor_id: str | None


@dataclass(frozen=True, slots=True)
class Amendment:
    """The originals a collection reports, each only where it changed."""

    original_mandate_reference: str | None = None
    original_creditor_id: str | None = None
    original_debtor_iban: str | None = None
    debtor_agent_changed: bool = False  # the account moved to another bank: SMNDA


def amendment(before: Told | None, now: Told) -> Amendment | None:
    """What ``now`` must report as changed since ``before`` (the previous collection's), or None."""
    if before is None:
        return None
    reference = before.mandate_reference
    if reference is None or reference == now.mandate_reference:
        reference = None
    creditor_id = before.creditor_id
    if not creditor_id or compact(creditor_id) == compact(now.creditor_id or ""):
        creditor_id = None
    iban = before.debtor_iban
    if not iban or compact(iban) == compact(now.debtor_iban or ""):
        iban = None
    if reference is None and creditor_id is None and iban is None:
        return None
    other_bank = iban is not None and not same_bank(iban, now.debtor_iban or "")
    return Amendment(reference, creditor_id and compact(creditor_id), iban and compact(iban), other_bank)


def same_bank(iban: str, other: str) -> bool:
    """Whether two IBANs are held by one bank: same country and bank code (False when either cannot tell).

    >>> same_bank("BE68539007547034", "BE57 5390 0754 7135"), same_bank("BE68539007547034", "BE71096123456769")
    (True, False)
    """
    try:
        first, second = IBAN(iban), IBAN(other)
    except SchwiftyException:
        return False
    return bool(first.bank_code) and (first.country_code, first.bank_code) == (second.country_code, second.bank_code)
