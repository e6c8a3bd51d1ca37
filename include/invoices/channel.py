"""Where an invoice goes: e-mail, paper, both, or nowhere (seed 004, 2.5.2 ``message``).

The reference type lists the address types that may be used, in order of
importance; ``emailonly`` means by e-mail only. We read the list so:

* ``emailonly`` listed and the customer has an e-mail contact POM will mail
  (the seed-003 rule of :func:`include.pom.delivery_diagnosis.expected_recipient`)
  → **e-mail**, and no paper; e-mail contacts that a flag keeps POM from
  mailing → **both**: the invoice goes to POM without recipients, so the
  delivery report's diagnosis tells finance which flag to set, and it is
  printed so that it still arrives;
* otherwise paper goes to the customer's first address of the first listed
  type they have (``thuis``, ``werk``, ...); ``email`` listed as well, and a
  recipient to mail → **both**;
* no listed type fits, or the type lists nothing: paper to the customer's
  first address (an invoice is never silently dropped), by e-mail as well
  when ``email`` is listed and there is a recipient;
* no postal address and nobody to mail → **none**: the print overview lists it.

>>> decide_channel(["thuis", "emailonly"], [(7, "thuis")], has_recipient=True)
Channel(kind='email', address_id=None)
>>> decide_channel(["thuis", "emailonly"], [(7, "thuis")], has_recipient=False)
Channel(kind='paper', address_id=7)
>>> decide_channel(["thuis", "emailonly"], [(7, "thuis")], has_recipient=False, has_email_contact=True)
Channel(kind='both', address_id=7)
>>> decide_channel(["werk", "thuis", "email"], [(7, "thuis"), (8, "werk")], has_recipient=True)
Channel(kind='both', address_id=8)
>>> decide_channel(["emailonly"], [], has_recipient=False)
Channel(kind='none', address_id=None)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

EMAIL_ONLY = "emailonly"
EMAIL_TOO = "email"


class Channel(NamedTuple):
    kind: str  # one of models.INVOICE_CHANNELS
    address_id: int | None  # the postal address of the paper copy


def address_types(setting: str | None) -> list[str]:
    """The type's ``message`` setting (``;``-separated, in order) as a list.

    >>> address_types(" thuis ; emailonly;")
    ['thuis', 'emailonly']
    """
    return [part.strip() for part in (setting or "").split(";") if part.strip()]


def decide_channel(listed: Sequence[str], addresses: Sequence[tuple[int, str]], *, has_recipient: bool,
                   has_email_contact: bool = False) -> Channel:
    """The channel for a customer with ``addresses`` (id, address type; in their order) and maybe a recipient.

    ``has_email_contact``: the customer has e-mail contacts at all (``has_recipient``: one POM will mail).
    """
    if EMAIL_ONLY in listed and has_recipient:
        return Channel("email", None)
    email = (has_recipient or has_email_contact) and (EMAIL_TOO in listed or EMAIL_ONLY in listed)
    postal = next((address_id for kind in listed for address_id, own in addresses if own == kind), None)
    if postal is None and addresses:
        postal = addresses[0][0]
    if postal is None:
        return Channel("email" if email else "none", None)
    return Channel("both" if email else "paper", postal)
