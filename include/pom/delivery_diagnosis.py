"""What a POM delivery report says about one invoice and one recipient, and what finance should do (seed 003).

Pure functions, no database: :mod:`include.pom.delivery_store` feeds them the
report's lines and the customer data, and stores what they return.

One recipient of one invoice gets exactly one :class:`Diagnosis` (a code, an
action, and a detail that makes the action specific). Two sources decide it:

* **the report's lines** for that invoice and e-mail address
  (:func:`diagnose_attempts`). The latest attempt decides (a ``DELIVERED``
  after a temporary ``FAILED`` means delivered). A temporary failure ("…
  Retrying might result in a successful delivery." or "… mailbox is full.") is
  retried by POM for 48 hours: within 48 hours of the first failure of the
  latest run of temporary failures the mail is *retrying*; after that, with no
  later ``DELIVERED``, POM has *given up*. The 48 hours are measured against
  an explicit ``now`` (or the latest line, if that is later: POM's own clock
  says at least that much time has passed);
* **no line at all**: POM never tried. Seed 003 names the causes, found in
  the customer data (:func:`diagnose_not_attempted`): the contact's "E-mail
  ontvanger" flag is off; or the contact hangs on an address other than the
  customer's first one, and then the invoice only goes to it when both the
  address ("Exemplaar factuur/aanmaning") and the sales journal that holds the
  invoice ("Exemplaar per adres") have their copy-per-address flag set. The
  detail names every flag to set and where.

Messages are classified after normalisation (:func:`normalise_message`):
case, runs of whitespace, typographic quotes, "e-mail" vs "email" and
trailing punctuation do not matter, and each message is recognised by its
distinctive phrase rather than the exact sentence. Any other text is
*unknown* and keeps the raw text.

The same rule decides, before sending, whom POM will mail:
:func:`expected_recipient` (``True`` when nothing in the customer data stops
an attempt).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple
from zoneinfo import ZoneInfo

RETRY_WINDOW = timedelta(hours=48)
LOCAL_ZONE = ZoneInfo("Europe/Brussels")

# -- statuses and messages ---------------------------------------------------------------------

DELIVERED = "DELIVERED"
FAILED = "FAILED"
STATUS_SYNONYMS = {
    "DELIVERED": DELIVERED, "BEZORGD": DELIVERED, "AFGELEVERD": DELIVERED,
    "FAILED": FAILED, "MISLUKT": FAILED,
}

# What one report line says (stored as delivery_report_line.message_kind).
MESSAGE_KINDS = (
    "delivered",  # status DELIVERED
    "temporary",  # "… rejected by the recipient's mail server. Retrying might result in a successful delivery."
    "mailbox_full",  # "… rejected by the recipient's mail server. The user's mailbox is full."
    "rejected_blacklisted",  # "… rejected by the recipient's mail server. It will be blacklisted to prevent …"
    "blacklisted",  # "EmailAddress of recipient is blacklisted."
    "unsubscribed",  # "User has unsubscribed from receiving pom mails."
    "document_id_used",  # "DocumentId already used."
    "unknown",  # any other text, or a status that is neither DELIVERED nor FAILED
)
TEMPORARY_KINDS = frozenset({"temporary", "mailbox_full"})

# The messages exactly as seed 003 prints them (the tests use every one).
_REJECTED = "The email was rejected by the recipient’s mail server."
SEED_MESSAGES = {
    "temporary": f"{_REJECTED} Retrying might result in a successful delivery.",
    "rejected_blacklisted": f"{_REJECTED} It will be blacklisted to prevent further bounces.",
    "blacklisted": "EmailAddress of recipient is blacklisted.",
    "mailbox_full": f"{_REJECTED} The user’s mailbox is full.",
    "unsubscribed": "User has unsubscribed from receiving pom mails.",
    "document_id_used": "DocumentId already used.",
}

# Distinctive phrases, searched in the normalised text, most specific first.
_PATTERNS = (
    ("rejected_blacklisted", re.compile(r"(will|shall) be blacklisted to prevent (any )?further bounces")),
    ("mailbox_full", re.compile(r"\bmail ?box is full\b|\bmail ?box (is )?(full|over ?quota)\b")),
    ("temporary", re.compile(r"retrying might result in a successful delivery")),
    # Found inside a longer text too (a portal may put the server's first sentence before it); "It will be
    # blacklisted …" is matched first, above.
    ("blacklisted", re.compile(
        r"\b(email ?address of (the )?recipient|(the )?recipient'?s? email ?address|recipient) (is|has been) blacklisted\b")),
    ("unsubscribed", re.compile(r"\bunsubscribed from receiving pom (e?mails?|messages)\b")),
    ("document_id_used", re.compile(r"\bdocument ?id (is |has )?(already (been )?used|already in use)\b")),
)
_QUOTES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "“": '"', "”": '"', "\u00a0": " "})
_SPACES = re.compile(r"\s+")
_EMAIL_WORD = re.compile(r"\be-mail")
_TRAILING = re.compile(r"[\s.!?;:,…]+$")


def normalise_message(text: str | None) -> str:
    """The text as compared: NFKC, plain quotes, lower case, "email", single spaces, no end punctuation or quotes.

    >>> normalise_message("  EmailAddress of  recipient is BLACKLISTED.. ")
    'emailaddress of recipient is blacklisted'
    """
    if not text:
        return ""
    value = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    value = _EMAIL_WORD.sub("email", value)
    value = _SPACES.sub(" ", value).strip().strip("'\"").strip()
    return _TRAILING.sub("", value)


_classified: dict[str, str] = {}


def classify_message(text: str | None) -> str:
    """The kind of a ``FAILED`` line's description: one of :data:`MESSAGE_KINDS` (never ``delivered``)."""
    kind = _classified.get(text or "")
    if kind is None:
        normal = normalise_message(text)
        kind = next((name for name, pattern in _PATTERNS if pattern.search(normal)), "unknown")
        if len(_classified) < 10_000:  # a report repeats a handful of messages; unknown texts may not repeat
            _classified[text or ""] = kind
    return kind


def normalise_status(status: str | None) -> str:
    """``DELIVERED`` or ``FAILED`` (Dutch words accepted, any case); anything else as written, upper case."""
    value = (status or "").strip().upper()
    return STATUS_SYNONYMS.get(value, value)


def line_kind(status: str, description: str | None) -> str:
    """The kind of one report line from its (normalised) status and its description."""
    if status == DELIVERED:
        return "delivered"
    if status == FAILED:
        return classify_message(description)
    return "unknown"


# -- diagnoses and actions ----------------------------------------------------------------------

# Action groups of the action list, in the order finance works through them.
ACTIONS = {
    "fix_customer_record": "Fix the customer record",
    "correct_address": "Correct or replace the e-mail address",
    "send_another_way": "Send the invoice another way",
    "contact_support": "Contact POM support",
    "wait": "Wait: POM is still retrying",
    "none": "Delivered: nothing to do",
}
ACTION_ORDER = tuple(ACTIONS)

_RESEND = " Then send this invoice again, by e-mail or another way: the fix only affects the next invoices."
_SUPPORT = "Contact POM support with the batch, the document id and the e-mail address"

# diagnosis -> (action, label for the summary, what to do; {detail} and {retry_until} filled in)
DIAGNOSES: dict[str, tuple[str, str, str]] = {
    "not_attempted_email_recipient_off": (
        "fix_customer_record", "not attempted: 'E-mail ontvanger' is off",
        "POM made no attempt: {detail}." + _RESEND,
    ),
    "not_attempted_copy_per_address_off": (
        "fix_customer_record", "not attempted: contact on another address without 'copy per address'",
        "POM made no attempt: invoices go to the contacts of the customer's first address only. {detail}." + _RESEND,
    ),
    "not_attempted_no_email_address": (
        "fix_customer_record", "not attempted: the customer has no e-mail address",
        "The customer has no e-mail contact: add one under Boekhouden – Klanten – Adressen – Telecom "
        "with 'E-mail ontvanger' ticked, and send this invoice another way.",
    ),
    "not_attempted_unexplained": (
        "contact_support", "not attempted, no cause in the customer data",
        "POM made no attempt although the customer record allows one (the record may have changed after the "
        "sending, or the report is not final yet). Fetch the report again; if the line is still missing, "
        "contact POM support with the batch, the document id and the e-mail address.",
    ),
    "delivered": (
        "none", "delivered",
        "Nothing to do (never arrived? a spam filter: add pom.be to the safe senders, see index.html).",
    ),
    "retrying": (
        "wait", "temporarily rejected, POM still retrying",
        "Temporarily rejected ({detail}); POM retries for 48 hours. Look again after {retry_until}.",
    ),
    "given_up": (
        "send_another_way", "temporarily rejected, given up after 48 hours",
        "POM stopped retrying 48 hours after the first failure ({detail}) without delivering: send the invoice "
        "another way (post, or another e-mail address of the recipient).",
    ),
    "rejected_blacklisted": (
        "correct_address", "rejected and blacklisted",
        "The recipient's mail server rejected the address and POM blacklisted it (it no longer exists, is "
        "misspelt, or a strict filter blocks POM). Check the spelling on the customer record (Boekhouden – "
        "Klanten – Adressen – Telecom) and correct it; if it is right, remove it and add another address. "
        "Send this invoice again to the new address or another way.",
    ),
    "blacklisted": (
        "correct_address", "address on POM's blacklist",
        "The address is on POM's blacklist since an earlier bounce: every mail to it fails. Check the spelling "
        "on the customer record and correct it; if it is right, remove it and add another address. Send this "
        "invoice again to the new address or another way.",
    ),
    "unsubscribed": (
        "send_another_way", "recipient unsubscribed from POM mails",
        "The recipient unsubscribed from POM's e-mails (the opt-out link European data-protection law requires): "
        "POM will not mail this address again. Send this and later invoices to them another way.",
    ),
    "document_id_used": (
        "contact_support", "document id already used",
        "POM refused the document id as already used; the cause cannot be read from the report. " + _SUPPORT + ".",
    ),
    "unknown": (
        "contact_support", "message not known",
        "POM reported a message we do not know: {detail}. " + _SUPPORT + " and this text.",
    ),
}
DIAGNOSIS_CODES = tuple(DIAGNOSES)

# When a DELIVERED invoice is not found by the recipient (seed 003, the last section).
SAFE_SENDERS = (
    ("Outlook (new) and Outlook.com", "Settings (gear, top right) – E-mail – Junk e-mail – Safe senders and domains – "
     "Add safe sender: 'pom.be' – OK – Save."),
    ("Outlook (classic)", "Right-click any e-mail – Junk e-mail – Junk e-mail options – tab Safe senders – Add: "
     "'pom.be' – OK – OK."),
    ("Gmail", "Quick settings (gear, top right) – See all settings – Filters and blocked addresses – Create a new filter "
     "– From: '@pom.be' – Create filter – tick 'Never send it to Spam' – Create filter."),
    ("macOS Mail", "Mail – Settings – Rules – Add rule – description e.g. 'Safe senders' – 'any' – 'From' 'ends with' "
     "'@pom.be' – actions 'Move message' 'Inbox' – OK."),
)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One invoice × recipient: the diagnosis code, its action, the detail that makes it specific."""

    diagnosis: str
    detail: str | None = None
    retry_until: datetime | None = None

    @property
    def action(self) -> str:
        return DIAGNOSES[self.diagnosis][0]

    @property
    def label(self) -> str:
        return DIAGNOSES[self.diagnosis][1]

    def what_to_do(self) -> str:
        return what_to_do(self.diagnosis, self.detail, self.retry_until)


def local_time(moment: datetime) -> str:
    """A moment as Brussels wall-clock time, the way finance reads it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(LOCAL_ZONE).strftime("%Y-%m-%d %H:%M")


def what_to_do(diagnosis: str, detail: str | None = None, retry_until: datetime | None = None) -> str:
    """The sentence for the action list."""
    template = DIAGNOSES[diagnosis][2]
    return template.format(detail=detail or "", retry_until=local_time(retry_until) if retry_until else "?")


# -- from the report's lines ---------------------------------------------------------------------


class Attempt(NamedTuple):
    """One report line for one recipient (``kind`` from :func:`line_kind`)."""

    at: datetime
    line_no: int
    kind: str
    status: str
    description: str


_TEMPORARY_TEXT = {"temporary": "rejected, retry possible", "mailbox_full": "mailbox full"}
_FIXED = {kind: Diagnosis(kind) for kind in ("delivered", "rejected_blacklisted", "blacklisted", "unsubscribed",
                                             "document_id_used")}


def _order(attempt: Attempt) -> tuple[datetime, int]:
    return attempt.at, attempt.line_no


def diagnose_attempts(attempts: Sequence[Attempt], now: datetime) -> Diagnosis:
    """The diagnosis of one recipient's attempts (at least one); the latest attempt decides.

    Attempts are ordered by time, then by their line in the report (a report
    sorted by another column still reads right). Anything with the fields of
    :class:`Attempt` will do (the store passes its report lines). ``now`` must be aware.
    """
    if not attempts:
        raise ValueError("no attempts: use diagnose_not_attempted")
    ordered = sorted(attempts, key=_order) if len(attempts) > 1 else attempts
    last = ordered[-1]
    kind = last.kind
    if kind in _FIXED:
        return _FIXED[kind]
    if kind in TEMPORARY_KINDS:
        start = last.at
        for attempt in reversed(ordered):
            if attempt.kind not in TEMPORARY_KINDS:
                break
            start = attempt.at
        until = start + RETRY_WINDOW
        reference = max(now, last.at)
        if reference >= until:
            return Diagnosis("given_up", f"{_TEMPORARY_TEXT[kind]}, first at {local_time(start)}", until)
        return Diagnosis("retrying", _TEMPORARY_TEXT[kind], until)
    raw = last.description.strip() if last.description and last.description.strip() else "(no description)"
    if last.status not in (DELIVERED, FAILED):
        raw = f"status {last.status or '(empty)'!r}: {raw}"
    return Diagnosis("unknown", f"'{raw}'")


# -- no line: why POM did not try ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecipientSetup:
    """What the customer data says about one e-mail contact of an invoice's customer.

    ``address_position`` is the position of the address the contact hangs on
    (``None``: on none, which counts as the customer record's own, the first);
    ``first_position`` the lowest position among the customer's addresses.
    """

    email: str
    email_recipient: bool
    address_position: int | None = None
    first_position: int | None = None
    address_copy_per_address: bool = False
    journal_copy_per_address: bool = False
    journal: str | None = None  # code or name of the invoice's sales journal, None: unknown
    address_label: str | None = None  # e.g. "Kerkstraat 12, 3000 Leuven"

    @property
    def on_first_address(self) -> bool:
        return (
            self.address_position is None or self.first_position is None
            or self.address_position <= self.first_position
        )


def missing_flags(setup: RecipientSetup) -> list[str]:
    """The flags that stop POM from mailing this contact: ``contact``, ``address``, ``journal`` (empty: none)."""
    missing = []
    if not setup.email_recipient:
        missing.append("contact")
    if not setup.on_first_address:
        if not setup.address_copy_per_address:
            missing.append("address")
        if not setup.journal_copy_per_address:
            missing.append("journal")
    return missing


def expected_recipient(setup: RecipientSetup) -> bool:
    """Whether POM gets this contact as a recipient (the rule of seed 003)."""
    return not missing_flags(setup)


def _flag_instructions(setup: RecipientSetup, missing: list[str]) -> list[str]:
    steps = []
    if "contact" in missing:
        steps.append(
            f"tick 'E-mail ontvanger' on the contact {setup.email} (Boekhouden – Klanten – Adressen – Telecom; "
            "contact.email_recipient)"
        )
    if "journal" in missing:
        journal = f"sales journal {setup.journal}" if setup.journal else "the invoice's sales journal (none recorded)"
        steps.append(
            f"tick 'Exemplaar per adres' on {journal} (Verkopen – Detailboeken – Fiche; sales_journal.copy_per_address)"
        )
    if "address" in missing:
        where = f"address {setup.address_position}" + (f" ({setup.address_label})" if setup.address_label else "")
        steps.append(
            f"tick 'Exemplaar factuur/aanmaning' on {where} of the customer (Boekhouden – Klanten – Adressen; "
            "address.copy_per_address)"
        )
    return steps


def diagnose_not_attempted(setup: RecipientSetup | None) -> Diagnosis:
    """Why a recipient has no line in the report; ``None``: the customer has no e-mail contact at all."""
    if setup is None:
        return Diagnosis("not_attempted_no_email_address")
    missing = missing_flags(setup)
    if not missing:
        return Diagnosis("not_attempted_unexplained")
    steps = _flag_instructions(setup, missing)
    if not setup.on_first_address and ("address" in missing or "journal" in missing):
        where = f"address {setup.address_position}" + (f" ({setup.address_label})" if setup.address_label else "")
        context = f"the contact {setup.email} hangs on {where}, not the first"
        if "address" not in missing:
            both = "the address already has its flag; both are needed"
        elif "journal" not in missing:
            both = "the sales journal already has its flag; both are needed"
        else:
            both = "both are needed"
        text = f"{context}: " + " and ".join(steps) + f" ({both})"
        if "contact" in missing:
            return Diagnosis("not_attempted_email_recipient_off", text)
        return Diagnosis("not_attempted_copy_per_address_off", text[0].upper() + text[1:])
    return Diagnosis("not_attempted_email_recipient_off", " and ".join(steps))
