"""Every status and outcome Innen stores, defined once.

Each is a ``StrEnum``: a member *is* the string stored in the database
(``ReferenceStatus.PAID == "paid"``), so rows read back compare equal to the
members, and the tables' CHECK constraints are built from the same members
(:mod:`include.finance.models`).

>>> ReferenceStatus.SEALED in OPEN_REFERENCE
True
>>> [str(status) for status in OPEN_REFERENCE]
['draft', 'sealed']
>>> values(RunStatus)
('ready', 'exported', 'failed', 'confirmed', 'deleted')
"""

from __future__ import annotations

from enum import StrEnum


class ReferenceStatus(StrEnum):
    """A payment reference (seed 2.4.6): open while draft or sealed."""

    DRAFT = "draft"
    SEALED = "sealed"
    PAID = "paid"
    DELETED = "deleted"
    EXPIRED = "expired"


OPEN_REFERENCE = (ReferenceStatus.DRAFT, ReferenceStatus.SEALED)
RELEASED_REFERENCE = (ReferenceStatus.DELETED, ReferenceStatus.EXPIRED)  # closed unpaid: its debt lines are free


class RunStatus(StrEnum):
    """A collection run."""

    READY = "ready"
    EXPORTED = "exported"
    FAILED = "failed"
    CONFIRMED = "confirmed"
    DELETED = "deleted"


UNSENT_RUN = (RunStatus.READY, RunStatus.FAILED)
SENT_RUN = (RunStatus.EXPORTED, RunStatus.CONFIRMED)


class CollectionStatus(StrEnum):
    """One collection of a run."""

    PENDING = "pending"
    EXPORTED = "exported"
    PAID = "paid"
    RETURNED = "returned"
    CANCELLED = "cancelled"


WAITING_COLLECTION = (CollectionStatus.PENDING, CollectionStatus.EXPORTED)
SETTLED_COLLECTION = (CollectionStatus.RETURNED, CollectionStatus.CANCELLED)  # never paid by the run any more


class PomRequestStatus(StrEnum):
    """A POM payment request: live while being created or open."""

    CREATING = "creating"
    OPEN = "open"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


LIVE_POM_REQUEST = (PomRequestStatus.CREATING, PomRequestStatus.OPEN)
ENDED_UNPAID_POM_REQUEST = (PomRequestStatus.CANCELLED, PomRequestStatus.EXPIRED)


class ApprovalStatus(StrEnum):
    """A bank file waiting for finance's approval."""

    WAITING = "waiting"
    APPROVED = "approved"
    REJECTED = "rejected"


class Received(StrEnum):
    """Money received against an open amount (:func:`include.finance.payments.receipt`)."""

    PAID = "paid"  # exactly the open amount
    PARTIAL = "partial"  # less: the rest stays open
    OVERPAID = "overpaid"  # more: the open amount is booked, the excess goes to the control list
    CLOSED_REFERENCE = "closed_reference"  # the reference is paid, deleted or expired: nothing booked


class EntryOutcome(StrEnum):
    """What a statement's line did (``bank_entry.outcome``); the first four are :class:`Received`'s."""

    PAID = "paid"
    PARTIAL = "partial"
    OVERPAID = "overpaid"
    CLOSED_REFERENCE = "closed_reference"
    UNMATCHED = "unmatched"  # no reference found: control list, with candidates
    RETURNED = "returned"  # a collection, or a credit we booked, came back (return or reversal)
    UNKNOWN_RETURN = "unknown_return"  # a return or reversal tied to nothing of ours: control list
    UNSPLIT = "unsplit"  # a batch entry without transaction amounts: control list
    NOT_BOOKED = "not_booked"  # pending, information only, or the detail of what was booked
    OTHER_DEBIT = "other_debit"  # a debit that is none of ours (fees, transfers out)
    UNKNOWN_ACCOUNT = "unknown_account"  # the statement's account belongs to no bank hub


BOOKED_OUTCOMES = (EntryOutcome.PAID, EntryOutcome.PARTIAL, EntryOutcome.OVERPAID)


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The plain strings of ``enum``, in definition order (for CHECK constraints and SQL)."""
    return tuple(member.value for member in enum)
