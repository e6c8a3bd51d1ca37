"""Every status, outcome and control-list kind Innen stores, defined once.

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
>>> "overpaid" in BOOKABLE_ITEM
True
>>> SYNC_RECEIVED[ReconciliationOutcome.PAID]
<RequestSync.RECEIVED_PAID: 'received_paid'>
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


class ReconciliationOutcome(StrEnum):
    """A line of the nightly POM reconciliation's report (:mod:`include.pom.reconciliation`, its ``ACTIONS`` say
    what finance does); the first four are :class:`Received`'s, for a payment POM reported."""

    PAID = "paid"  # paid at POM, the open amount: booked
    PARTIAL = "partial"  # paid at POM, less than the open amount: booked, the rest stays open
    OVERPAID = "overpaid"  # paid at POM, more than the open amount: the open amount booked, the excess to refund
    CLOSED_REFERENCE = "closed_reference"  # paid at POM on a paid, deleted or expired reference: nothing booked, refund
    ALREADY_BOOKED = "already_booked"  # paid at POM and booked before (the callback came first): nothing to do
    CANCELLED_OVERDUE = "cancelled_overdue"  # unpaid past its due date, of a type that cancels: cancelled at POM
    PAID_WHILE_CANCELLING = "paid_while_cancelling"  # overdue, but paid at POM when we cancelled: booked at once
    FOUND_CANCELLED = "found_cancelled"  # cancelled at POM (its portal, or its own auto-cancel): recorded here
    FOUND_EXPIRED = "found_expired"  # expired at POM: recorded here
    ERROR = "error"  # POM did not answer (status or cancel: the task fails, to be retried), answered a status Innen
    # does not know or 404 for all of an account's requests (a person's), or the account refused: on the report
    NOTE = "note"  # what a step above reported (a refund after a payment while cancelling): read the note


class RequestSync(StrEnum):
    """What the POM request sync did (the counts of :class:`include.pom.payment_requests.SyncSummary`)."""

    UNCHANGED = "unchanged"  # the live request fits its reference
    UNAVAILABLE = "unavailable"  # POM not reached: the run ends incomplete and Airflow retries
    REFUSED = "refused"  # POM refused a step: see the problems
    SKIPPED_CONCURRENT = "skipped_concurrent"  # another run journalled a request for the reference meanwhile
    CREATED = "created"  # a new request with its QR code
    REPLACED = "replaced"  # cancelled for another amount or account, and made anew
    RENEWED = "renewed"  # a new QR code on the same request
    CANCELLED = "cancelled"  # the reference no longer waits for an online payment
    BELOW_MINIMUM = "below_minimum"  # its open amount is below its POM account's min_amount: no request
    RECEIVED_PAID = "received_paid"  # POM had it paid, the open amount: booked
    RECEIVED_PARTIAL = "received_partial"  # POM had it paid, less than the open amount: booked, the rest stays open
    RECEIVED_OVERPAID = "received_overpaid"  # POM had it paid, more: the excess is to refund (in the problems)
    RECEIVED_CLOSED_REFERENCE = "received_closed_reference"  # POM had it paid on a closed reference: refund
    RECEIVED_ALREADY_BOOKED = "received_already_booked"  # POM had it paid, and it was booked before
    FOUND_CANCELLED = "found_cancelled"  # cancelled at POM: recorded here
    FOUND_EXPIRED = "found_expired"  # expired at POM: recorded here


# The sync's count of a payment POM reported, by the booking's outcome, and of a request POM ended unpaid.
SYNC_RECEIVED = {
    Received.PAID: RequestSync.RECEIVED_PAID,
    Received.PARTIAL: RequestSync.RECEIVED_PARTIAL,
    Received.OVERPAID: RequestSync.RECEIVED_OVERPAID,
    Received.CLOSED_REFERENCE: RequestSync.RECEIVED_CLOSED_REFERENCE,
    ReconciliationOutcome.ALREADY_BOOKED: RequestSync.RECEIVED_ALREADY_BOOKED,
}
SYNC_FOUND = {
    PomRequestStatus.CANCELLED: RequestSync.FOUND_CANCELLED,
    PomRequestStatus.EXPIRED: RequestSync.FOUND_EXPIRED,
}


class ControlListKind(StrEnum):
    """Why a control-list item (``control_list_item.kind``) needs a person; its ``action`` says what to do.

    From a statement's lines (most are named after the line's :class:`EntryOutcome`),
    from the statement itself (``sequence_gap``, ``foreign_currency``), and
    ``overpaid`` and ``closed_reference`` also from POM and from an over-payment
    booked by hand (:mod:`include.finance.control_list_resolution`).
    """

    UNMATCHED = "unmatched"  # a credit for no reference we found: identify the payer, book by hand or refund
    BATCH_MISMATCH = "batch_mismatch"  # a batch credit that is not the open total of its collections: nothing booked
    PARTIAL = "partial"  # less than the open amount was paid: the rest stays open on the reference
    OVERPAID = "overpaid"  # more than the open amount was paid: the excess is to refund or keep as a credit
    CLOSED_REFERENCE = "closed_reference"  # paid on a paid, deleted or expired reference: nothing booked, refund
    RETURNED = "returned"  # a collection, or a credit we booked, came back: its payment undone
    UNKNOWN_RETURN = "unknown_return"  # a return or reversal tied to nothing of ours
    UNSPLIT = "unsplit"  # a batch entry without transaction amounts: to split by hand
    UNKNOWN_ACCOUNT = "unknown_account"  # the statement's account belongs to no bank hub: nothing booked
    SEQUENCE_GAP = "sequence_gap"  # statements missing before this one (its electronic sequence jumps)
    FOREIGN_CURRENCY = "foreign_currency"  # a statement not in euro: stored, none of it booked


# Money received and not (or not wholly) booked: the only items finance can book onto a reference.
BOOKABLE_ITEM = frozenset({ControlListKind.UNMATCHED, ControlListKind.CLOSED_REFERENCE, ControlListKind.OVERPAID})
# Money received that the payer should get back unless it is booked elsewhere (the Finance page's refunds).
REFUND_ITEM = (ControlListKind.OVERPAID, ControlListKind.CLOSED_REFERENCE)


def values(enum: type[StrEnum]) -> tuple[str, ...]:
    """The plain strings of ``enum``, in definition order (for CHECK constraints and SQL)."""
    return tuple(member.value for member in enum)
