"""The shared database: one schema for SQLite (embedded) and PostgreSQL (production).

Finance queries these tables directly, so table and column names are a
contract (see the README). Money columns are ``NUMERIC(12,2)`` read and written
as :class:`~decimal.Decimal` through :class:`Money`. Statuses are lower-case
strings guarded by CHECK constraints, so a typo can never be stored.

``sql/schema.sqlite.sql`` and ``sql/schema.postgresql.sql`` are generated from
these models (``python -m include.finance.schema``); a test keeps them current.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    cast,
    false,
    func,
    text,
    true,
    type_coerce,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from include.finance.money import CENT, money
from include.finance.names import end_user_key
from include.finance.statuses import (
    LIVE_POM_REQUEST,
    OPEN_REFERENCE,
    ApprovalStatus,
    CollectionStatus,
    EntryOutcome,
    PomRequestStatus,
    ReferenceStatus,
    RunStatus,
    values,
)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A moment, written in UTC.

    SQLite keeps no offset: a moment written with Brussels' (or a bank's) offset was read back as that
    wall-clock time in UTC, an hour or two off, and compared as such. A naive moment is UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.astimezone(timezone.utc)
        return value


class Money(TypeDecorator[Decimal]):
    """NUMERIC(12,2) that only ever holds a two-place Decimal.

    SQLite has no decimal storage class: a NUMERIC column keeps a non-integral
    value as an IEEE double, which preserves 15 significant digits, so every
    NUMERIC(12,2) value reads back exactly. We bind it as text (no Python float
    is ever made on the way in) and turn what SQLite returns into a Decimal
    through its shortest repr, which gives back the stored digits.
    """

    impl = Numeric(12, 2, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        amount = money(value)
        return str(amount) if dialect.name == "sqlite" else amount

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # A float only comes from SQLite; an aggregate of such values (SUM) may
        # carry binary noise far below a cent, which the quantize removes.
        return (Decimal(repr(value)) if isinstance(value, float) else Decimal(value)).quantize(CENT)

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            # Plain NUMERIC on SQLite: SQLAlchemy's own Numeric would convert via float.
            return dialect.type_descriptor(_SqliteNumeric(12, 2))
        return dialect.type_descriptor(Numeric(12, 2, asdecimal=True))


class _SqliteNumeric(Numeric):
    def bind_processor(self, dialect: Dialect) -> None:
        return None

    def result_processor(self, dialect: Dialect, coltype: Any) -> None:
        return None


def in_cents(column: Any) -> Any:
    """SQL for a Money column as whole cents: sums of these are exact on SQLite as on PostgreSQL."""
    return cast(func.round(type_coerce(column, Numeric) * 100), BigInteger)


def _in(column: str, values: tuple[str, ...]) -> str:
    """A CHECK that ``column`` holds one of ``values``, written as ``=`` … ``OR``.

    SQLite evaluates an ``IN (…)`` list in a CHECK about four microseconds
    slower per row (1.5 s against 0.4 s for 300 000 bulk-inserted rows).
    """
    return "(" + " OR ".join(f"{column} = {value!r}" for value in values) + ")"


REFERENCE_STATUSES = values(ReferenceStatus)
OPEN_REFERENCE_STATUSES = tuple(status.value for status in OPEN_REFERENCE)
SEQUENCE_TYPES = ("FRST", "RCUR", "FNAL", "OOFF")
EXPORT_FORMATS = ("SEPA", "SAFESEPA", "CSV", "BXML")
PAIN008_VERSIONS = ("pain.008.001.02", "pain.008.001.08")
FREQUENCY_UNITS = ("day", "month", "year")
RUN_STATUSES = values(RunStatus)
COLLECTION_STATUSES = values(CollectionStatus)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Counter(Base):
    """Named counters: identifiers (``fp:SYS``), reference and invoice number series."""

    __tablename__ = "counter"
    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class FinancialSystem(Base):
    """Seed 2.4.1/2.5.1: a group of debts and payments handled by one set of rules."""

    __tablename__ = "financial_system"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    merchant_name: Mapped[str | None] = mapped_column(String(200))
    partial_payment_strategy: Mapped[str] = mapped_column(String(30), default="first_transaction")
    __table_args__ = (
        CheckConstraint(
            _in("partial_payment_strategy", ("first_transaction", "matching_amount")),
            name="strategy",
        ),
    )


class EndUser(Base):
    """A patron, parent or citizen: who owes debts and who pays them."""

    __tablename__ = "end_user"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    eloi: Mapped[str] = mapped_column(String(40), unique=True)
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    # The name as banks write it, for finding a payer by name: see include/finance/names.py.
    name_key: Mapped[str] = mapped_column(String(210), default=end_user_key, onupdate=end_user_key, index=True)
    language: Mapped[str] = mapped_column(String(2), default="nl")
    addresses: Mapped[list[Address]] = relationship(order_by="Address.position")
    contacts: Mapped[list[Contact]] = relationship()

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


class Address(Base):
    __tablename__ = "address"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_user_id: Mapped[int] = mapped_column(ForeignKey("end_user.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=1)
    address_type: Mapped[str] = mapped_column(String(30), default="thuis")
    street: Mapped[str | None] = mapped_column(String(140))
    house_number: Mapped[str | None] = mapped_column(String(16))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(140))
    country: Mapped[str] = mapped_column(String(2), default="BE")
    copy_per_address: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (UniqueConstraint("end_user_id", "position"),)


class Contact(Base):
    __tablename__ = "contact"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    end_user_id: Mapped[int] = mapped_column(ForeignKey("end_user.id"), index=True)
    address_id: Mapped[int | None] = mapped_column(ForeignKey("address.id"))
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(254))
    email_recipient: Mapped[bool] = mapped_column(Boolean, default=True)
    __table_args__ = (CheckConstraint(_in("kind", ("email", "phone")), name="kind"),)


class DebtLine(Base):
    """One debt of an end user within a financial system (a cash-register transaction).

    ``payment_reference_id`` points at the *open* payment reference holding the
    line, so a line can never sit in two open references; deleting or expiring
    that reference clears it and the debt is open again.
    """

    __tablename__ = "debt_line"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    financial_system_id: Mapped[int] = mapped_column(ForeignKey("financial_system.id"))
    end_user_id: Mapped[int] = mapped_column(ForeignKey("end_user.id"))
    transaction_code: Mapped[str] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money)
    open_amount: Mapped[Decimal] = mapped_column(Money)
    created_on: Mapped[date] = mapped_column(Date)
    payment_reference_id: Mapped[int | None] = mapped_column(ForeignKey("payment_reference.id"))
    # A transaction cost (seed 2.5.2 ``transcost``): the reference whose sealing added it (once per reference),
    # and when its open part was taken back because that reference was deleted.
    cost_of_reference_id: Mapped[int | None] = mapped_column(ForeignKey("payment_reference.id"), unique=True)
    reversed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("open_amount >= 0 AND open_amount <= amount", name="open_amount_range"),
        # Open debt of a user in a system. No index on payment_reference_id alone: without statistics
        # SQLite would pick it for "IS NULL" and scan every open line; a reference's lines are found
        # through payment_reference_line.
        Index(None, "end_user_id", "financial_system_id", "payment_reference_id"),
    )


class PaymentReferenceType(Base):
    """Seed 2.5.2: how references of this type are numbered, printed, guarded and aged."""

    __tablename__ = "payment_reference_type"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # gen: structured communication generator; empty = OGM over the fp number
    reference_format: Mapped[str | None] = mapped_column(String(3))
    reference_counter: Mapped[str | None] = mapped_column(String(60))
    reference_prefix: Mapped[str] = mapped_column(String(9), default="")
    # geninv: invoice numbers from a named counter; empty = no invoice number
    invoice_counter: Mapped[str | None] = mapped_column(String(60))
    invoice_prefix: Mapped[str] = mapped_column(String(20), default="")
    # genmnd: mandate reference generator; empty = OGM over the fm number
    mandate_reference_format: Mapped[str | None] = mapped_column(String(3))
    mandate_reference_counter: Mapped[str | None] = mapped_column(String(60))
    mandate_reference_prefix: Mapped[str] = mapped_column(String(9), default="")
    access_read: Mapped[str | None] = mapped_column(String(60))  # accread
    access_write: Mapped[str | None] = mapped_column(String(60))  # accwrite
    access_admin: Mapped[str | None] = mapped_column(String(60))  # accadmin
    print_state: Mapped[str | None] = mapped_column(String(60))  # lnstate
    direct_print: Mapped[bool] = mapped_column(Boolean, default=False)  # direct
    address_types: Mapped[str | None] = mapped_column(String(200))  # message, ';'-separated, in order
    lifetime_seconds: Mapped[int | None] = mapped_column(BigInteger)  # dies
    default_sequence_type: Mapped[str | None] = mapped_column(String(4))  # defsqty
    transaction_cost_code: Mapped[str | None] = mapped_column(String(40))  # transcost
    allowed_online: Mapped[bool] = mapped_column(Boolean, default=False)  # allowedonline
    # POM (seed 000, 3.2): the account that takes this type's online payments, by name, or "default".
    pom_account: Mapped[str] = mapped_column(String(60), default="default")
    # POM (seed 000, 4.4/4.5): unpaid requests are cancelled once their due date has passed.
    pom_auto_cancel: Mapped[bool] = mapped_column(Boolean, default=False)
    __table_args__ = (
        CheckConstraint(
            "reference_format IS NULL OR " + _in("reference_format", ("OGM", "RF")), name="ref_format"
        ),
        CheckConstraint(
            "mandate_reference_format IS NULL OR " + _in("mandate_reference_format", ("OGM", "RF")),
            name="mandate_ref_format",
        ),
        CheckConstraint(
            "default_sequence_type IS NULL OR " + _in("default_sequence_type", SEQUENCE_TYPES),
            name="sequence_type",
        ),
        CheckConstraint("lifetime_seconds IS NULL OR lifetime_seconds > 0", name="lifetime"),
    )


class BankHub(Base):
    """Seed 2.5.3: the bank that collects for the institution, plus our export settings."""

    __tablename__ = "bank_hub"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    financial_system_id: Mapped[int] = mapped_column(ForeignKey("financial_system.id"))  # finsys
    account_number_type: Mapped[str] = mapped_column(String(10), default="IBAN")  # banknrtype
    bank_id_type: Mapped[str] = mapped_column(String(10), default="BIC")  # bankidtype
    creditor_iban: Mapped[str | None] = mapped_column(String(34))  # banknr
    creditor_bic: Mapped[str | None] = mapped_column(String(11))  # bankid
    cash_register: Mapped[str | None] = mapped_column(String(40))  # kas
    currency: Mapped[str] = mapped_column(String(3), default="EUR")  # cur
    keep_days: Mapped[int] = mapped_column(Integer, default=365)  # keepdays
    initiator_name: Mapped[str | None] = mapped_column(String(140))  # initname
    initiator_id: Mapped[str | None] = mapped_column(String(35))  # initid
    creditor_name: Mapped[str | None] = mapped_column(String(140))  # cdtrname
    creditor_street: Mapped[str | None] = mapped_column(String(70))  # cdtrstreet
    creditor_house_number: Mapped[str | None] = mapped_column(String(16))  # cdtrnr
    creditor_postal_code: Mapped[str | None] = mapped_column(String(16))  # cdtrzip
    creditor_city: Mapped[str | None] = mapped_column(String(35))  # cdtrcity
    creditor_country: Mapped[str | None] = mapped_column(String(2))  # cdtrcountry
    creditor_id: Mapped[str | None] = mapped_column(String(35))  # cdtrid (SEPA creditor identifier)
    export_format: Mapped[str | None] = mapped_column(String(10))  # fmty; empty = no automatic file
    proposal_generators: Mapped[str | None] = mapped_column(String(200))  # prop, ';'-separated
    pain008_version: Mapped[str] = mapped_column(String(20), default="pain.008.001.02")
    rcur_only: Mapped[bool] = mapped_column(Boolean, default=False)  # RCUR instead of FRST
    lead_days: Mapped[int] = mapped_column(Integer, default=1)
    batch_booking: Mapped[bool] = mapped_column(Boolean, default=True)
    local_instrument: Mapped[str] = mapped_column(String(4), default="CORE")
    # Return reasons after which a mandate may not be used again (space-separated ISO codes).
    fatal_return_reasons: Mapped[str] = mapped_column(String(200), default="AC04 AC06 MD01 MS02")
    # A bank file waits in staging for finance's approval before it reaches the outbox (default: yes), and
    # whoever triggered the export may not approve it (four eyes; default: yes).
    approval_required: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    four_eyes: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    __table_args__ = (
        CheckConstraint("export_format IS NULL OR " + _in("export_format", EXPORT_FORMATS), name="format"),
        CheckConstraint(_in("pain008_version", PAIN008_VERSIONS), name="pain008_version"),
        CheckConstraint(_in("local_instrument", ("CORE", "B2B")), name="local_instrument"),
        CheckConstraint("lead_days >= 0", name="lead_days"),
    )


class Frequency(Base):
    """Seed 2.4.7/2.5.7: how often a mandate collects (every ``every`` days, months or years)."""

    __tablename__ = "frequency"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(5))
    every: Mapped[int] = mapped_column(Integer, default=1)
    __table_args__ = (
        CheckConstraint(_in("unit", FREQUENCY_UNITS), name="unit"),
        CheckConstraint("every >= 1", name="every"),
    )


class Mandate(Base):
    """Seed 2.3.2: a SEPA direct-debit mandate (``fm:SYS:n``)."""

    __tablename__ = "mandate"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loi: Mapped[str] = mapped_column(String(40), unique=True)
    financial_system_id: Mapped[int] = mapped_column(ForeignKey("financial_system.id"))
    reference: Mapped[str] = mapped_column(String(35))  # Mandaat ID (UMR), MndtId in pain.008
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    information: Mapped[str | None] = mapped_column(Text)
    type_id: Mapped[int | None] = mapped_column(ForeignKey("payment_reference_type.id"))
    signature_date: Mapped[date | None] = mapped_column(Date)
    first_collection_date: Mapped[date | None] = mapped_column(Date)
    last_collection_date: Mapped[date | None] = mapped_column(Date)  # conversions: last one elsewhere
    end_date: Mapped[date | None] = mapped_column(Date)
    frequency_id: Mapped[int | None] = mapped_column(ForeignKey("frequency.id"))
    hub_id: Mapped[int | None] = mapped_column(ForeignKey("bank_hub.id"))
    end_user_id: Mapped[int] = mapped_column(ForeignKey("end_user.id"), index=True)  # debt owner
    debtor_id: Mapped[int | None] = mapped_column(ForeignKey("end_user.id"))  # who pays
    debtor_iban: Mapped[str | None] = mapped_column(String(34), index=True)
    debtor_bic: Mapped[str | None] = mapped_column(String(11))
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Set when a collection came back with a reason that ends the mandate (MD01 ...): active-err until cleared.
    blocked_reason: Mapped[str | None] = mapped_column(String(200))
    transaction_codes: Mapped[list[MandateTransactionCode]] = relationship(
        order_by="MandateTransactionCode.pattern", cascade="all, delete-orphan"
    )
    __table_args__ = (UniqueConstraint("financial_system_id", "reference"),)


class MandateTransactionCode(Base):
    """A cash-transaction code, or a prefix pattern ending in ``*``, a mandate may collect."""

    __tablename__ = "mandate_transaction_code"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandate.id"), index=True)
    pattern: Mapped[str] = mapped_column(String(40))
    __table_args__ = (UniqueConstraint("mandate_id", "pattern"),)


class PaymentReference(Base):
    """Seed 2.3.1: a sealed group of one end user's debt lines (``fp:SYS:n``)."""

    __tablename__ = "payment_reference"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loi: Mapped[str] = mapped_column(String(40), unique=True)
    financial_system_id: Mapped[int] = mapped_column(ForeignKey("financial_system.id"))
    type_id: Mapped[int] = mapped_column(ForeignKey("payment_reference_type.id"))
    end_user_id: Mapped[int] = mapped_column(ForeignKey("end_user.id"))
    mandate_id: Mapped[int | None] = mapped_column(ForeignKey("mandate.id"))
    hub_id: Mapped[int | None] = mapped_column(ForeignKey("bank_hub.id"))
    status: Mapped[str] = mapped_column(String(10), default=ReferenceStatus.DRAFT)
    amount: Mapped[Decimal] = mapped_column(Money)
    open_amount: Mapped[Decimal] = mapped_column(Money)
    reference_number: Mapped[str | None] = mapped_column(String(25))
    invoice_number: Mapped[str | None] = mapped_column(String(40))
    due_date: Mapped[date | None] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    sealed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    lines: Mapped[list[PaymentReferenceLine]] = relationship()
    __table_args__ = (
        CheckConstraint(_in("status", REFERENCE_STATUSES), name="status"),
        CheckConstraint("open_amount >= 0 AND open_amount <= amount", name="open_amount_range"),
        UniqueConstraint("financial_system_id", "reference_number"),
        UniqueConstraint("financial_system_id", "invoice_number"),
        Index(None, "financial_system_id", "open_amount"),  # "same amount" candidates for an unmatched credit
        # Two equalities, so that SQLite prefers it to the index above when looking up a payer's references.
        Index(None, "end_user_id", "financial_system_id"),
    )


class PaymentReferenceLine(Base):
    """A debt line as it was put into a payment reference (kept after deletion, for history)."""

    __tablename__ = "payment_reference_line"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_reference_id: Mapped[int] = mapped_column(ForeignKey("payment_reference.id"))
    debt_line_id: Mapped[int] = mapped_column(ForeignKey("debt_line.id"), index=True)
    transaction_code: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Money)
    __table_args__ = (UniqueConstraint("payment_reference_id", "debt_line_id"),)


class CollectionRun(Base):
    """Seed 2.3.3.2: one hub's collections for one collection date, and its bank file (``fj:SYS:n``)."""

    __tablename__ = "collection_run"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loi: Mapped[str] = mapped_column(String(40), unique=True)
    hub_id: Mapped[int] = mapped_column(ForeignKey("bank_hub.id"))
    collection_date: Mapped[date] = mapped_column(Date)
    run_date: Mapped[date] = mapped_column(Date)  # the logical date of the execution that made it
    status: Mapped[str] = mapped_column(String(10), default=RunStatus.READY)
    export_format: Mapped[str | None] = mapped_column(String(10))
    file_path: Mapped[str | None] = mapped_column(String(500))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    transaction_count: Mapped[int] = mapped_column(Integer, default=0)
    total_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str | None] = mapped_column(String(250))
    exported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    collections: Mapped[list[Collection]] = relationship(order_by="Collection.id")
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        Index(None, "hub_id", "collection_date", "status"),
    )


class Collection(Base):
    """One direct debit: a mandate collecting one payment reference on one due date."""

    __tablename__ = "collection"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("collection_run.id"), index=True)
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandate.id"), index=True)
    payment_reference_id: Mapped[int] = mapped_column(ForeignKey("payment_reference.id"), unique=True)
    sequence_type: Mapped[str] = mapped_column(String(4))
    due_date: Mapped[date] = mapped_column(Date)  # the mandate's schedule slot
    amount: Mapped[Decimal] = mapped_column(Money)
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=CollectionStatus.PENDING)
    return_reason: Mapped[str | None] = mapped_column(String(10))
    # What the collection tells the banks about its mandate, as it was when the collection was made: the bank
    # file writes these, and the mandate's next collection compares with them (include/sepa/amendments.py).
    # Empty on collections made before Innen kept them: the file then takes the mandate's own values.
    mandate_reference: Mapped[str | None] = mapped_column(String(35))
    debtor_iban: Mapped[str | None] = mapped_column(String(34))
    debtor_bic: Mapped[str | None] = mapped_column(String(11))
    creditor_id: Mapped[str | None] = mapped_column(String(35))
    # The mandate amendment it carries (AmdmntInd): what the previous collection said, where that changed.
    original_mandate_reference: Mapped[str | None] = mapped_column(String(35))
    original_creditor_id: Mapped[str | None] = mapped_column(String(35))
    original_debtor_iban: Mapped[str | None] = mapped_column(String(34))
    debtor_agent_changed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # SMNDA
    __table_args__ = (
        CheckConstraint(_in("sequence_type", SEQUENCE_TYPES), name="sequence_type"),
        CheckConstraint(_in("status", COLLECTION_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        # One live collection per mandate and due date; a returned or cancelled one may be made again.
        Index(
            "uq_collection_live_mandate_due_date", "mandate_id", "due_date", unique=True,
            sqlite_where=text("status NOT IN ('returned', 'cancelled')"),
            postgresql_where=text("status NOT IN ('returned', 'cancelled')"),
        ),
    )


POM_REQUEST_STATUSES = values(PomRequestStatus)
LIVE_POM_REQUEST_STATUSES = tuple(status.value for status in LIVE_POM_REQUEST)


class PomPaymentRequest(Base):
    """A POM payment request (QR code and pay link) for one payment reference.

    ``creating`` is written and committed before POM is asked, with the
    idempotency key the request is created under: a task that dies between
    POM's answer and our commit finds the row on its rerun and asks again with
    the same key, so POM never holds two requests for one reference.
    """

    __tablename__ = "pom_payment_request"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_reference_id: Mapped[int] = mapped_column(ForeignKey("payment_reference.id"), index=True)
    account: Mapped[str] = mapped_column(String(60))
    pom_id: Mapped[str | None] = mapped_column(String(60))
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    communication: Mapped[str] = mapped_column(String(25))
    due_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default=PomRequestStatus.CREATING)
    qr_id: Mapped[str | None] = mapped_column(String(60))
    qr_payload: Mapped[str | None] = mapped_column(Text)
    pay_url: Mapped[str | None] = mapped_column(Text)
    qr_svg: Mapped[str | None] = mapped_column(Text)
    qr_created_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    qr_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    cancelled_reason: Mapped[str | None] = mapped_column(String(200))
    paid_amount: Mapped[Decimal | None] = mapped_column(Money)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    channel: Mapped[str | None] = mapped_column(String(20))
    __table_args__ = (
        CheckConstraint(_in("status", POM_REQUEST_STATUSES), name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        UniqueConstraint("account", "pom_id"),
        # Exactly one live request per reference.
        Index("uq_pom_payment_request_live_reference", "payment_reference_id", unique=True,
              sqlite_where=text("status IN ('creating', 'open')"),
              postgresql_where=text("status IN ('creating', 'open')")),
        Index(None, "status", "account"),
    )


class PomEvent(Base):
    """A callback POM sent us: each event id is taken once."""

    __tablename__ = "pom_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(60))
    event_id: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(60))
    pom_id: Mapped[str | None] = mapped_column(String(60))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    outcome: Mapped[str] = mapped_column(String(40))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    __table_args__ = (UniqueConstraint("account", "event_id"),)


INVOICE_CHANNELS = ("email", "paper", "both", "none")


class TransactionCost(Base):
    """The tariff of a transaction-cost code (seed 2.5.2 ``transcost``) in a financial system."""

    __tablename__ = "transaction_cost"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    financial_system_id: Mapped[int] = mapped_column(ForeignKey("financial_system.id"))
    transaction_code: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Money)
    description: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (
        UniqueConstraint("financial_system_id", "transaction_code"),
        CheckConstraint("amount > 0", name="amount_positive"),
    )


class Invoice(Base):
    """The document of a sealed payment reference (seed 2.3.1 "Drukwerk"): one PDF, made from a template.

    A reference has at most one current invoice (``withdrawn_at`` empty).
    Unsealing it, or a change of its open amount, withdraws the invoice; the
    next one gets a new ``document_id``, so POM never sees an id twice.
    """

    __tablename__ = "invoice"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_reference_id: Mapped[int] = mapped_column(ForeignKey("payment_reference.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per reference
    document_id: Mapped[str] = mapped_column(String(100), unique=True)
    template: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(2))
    channel: Mapped[str] = mapped_column(String(5))
    postal_address_id: Mapped[int | None] = mapped_column(Integer)  # the address the paper copy goes to
    amount: Mapped[Decimal] = mapped_column(Money)  # the open amount it asks for
    pom_payment_request_id: Mapped[int | None] = mapped_column(ForeignKey("pom_payment_request.id"))
    file_path: Mapped[str] = mapped_column(String(500))  # relative to the invoices folder
    sha256: Mapped[str] = mapped_column(String(64))
    pages: Mapped[int] = mapped_column(Integer)
    print_day: Mapped[date] = mapped_column(Date)  # the day's printing it belongs to (seed 2.3.4.1)
    made_at: Mapped[datetime] = mapped_column(UtcDateTime())
    made_by: Mapped[str] = mapped_column(String(250))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    withdrawn_reason: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (
        CheckConstraint(_in("channel", INVOICE_CHANNELS), name="channel"),
        UniqueConstraint("payment_reference_id", "version"),
        Index("uq_invoice_current_reference", "payment_reference_id", unique=True,
              sqlite_where=text("withdrawn_at IS NULL"), postgresql_where=text("withdrawn_at IS NULL")),
        Index(None, "print_day"),
    )


class AuditLog(Base):
    """Every state change: what, before, after, who (DAG run and task, or user), when."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(40))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(250))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    __table_args__ = (Index(None, "entity", "entity_id"),)


STATEMENT_KINDS = ("camt.053", "camt.054")
ENTRY_OUTCOMES = values(EntryOutcome)
PAYMENT_SOURCES = ("bank_statement", "collection_confirm", "pom", "manual")


class BankStatement(Base):
    """One imported statement (camt.053) or notification (camt.054): account + id + electronic sequence."""

    __tablename__ = "bank_statement"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identity: Mapped[str] = mapped_column(String(250), unique=True)  # account|statement id|electronic sequence
    kind: Mapped[str] = mapped_column(String(8))
    version: Mapped[str] = mapped_column(String(20))
    account: Mapped[str] = mapped_column(String(40))
    statement_id: Mapped[str] = mapped_column(String(100))
    electronic_seq: Mapped[int | None] = mapped_column(BigInteger)
    legal_seq: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(100))
    created_on_bank: Mapped[datetime | None] = mapped_column(UtcDateTime())
    from_date: Mapped[date | None] = mapped_column(Date)
    to_date: Mapped[date | None] = mapped_column(Date)
    copy_indicator: Mapped[str | None] = mapped_column(String(4))
    currency: Mapped[str | None] = mapped_column(String(3))
    opening_balance: Mapped[Decimal | None] = mapped_column(Money)
    closing_balance: Mapped[Decimal | None] = mapped_column(Money)
    hub_id: Mapped[int | None] = mapped_column(ForeignKey("bank_hub.id"))
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    entries: Mapped[int] = mapped_column(Integer, default=0)
    new_lines: Mapped[int] = mapped_column(Integer, default=0)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    imported_by: Mapped[str] = mapped_column(String(250))
    __table_args__ = (
        CheckConstraint(_in("kind", STATEMENT_KINDS), name="kind"),
        Index(None, "account", "electronic_seq"),
    )


class BankEntry(Base):
    """One movement of a statement (a batch entry gives one row per transaction), and what we made of it."""

    __tablename__ = "bank_entry"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("bank_statement.id"), index=True)
    account: Mapped[str] = mapped_column(String(40))
    entry_key: Mapped[str] = mapped_column(String(200))  # the bank's reference, or a fingerprint (see camt_import)
    entry_index: Mapped[int] = mapped_column(Integer)
    tx_index: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Money)
    credit: Mapped[bool] = mapped_column(Boolean)
    reversal: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(4))
    booking_date: Mapped[date | None] = mapped_column(Date)
    value_date: Mapped[date | None] = mapped_column(Date)
    entry_ref: Mapped[str | None] = mapped_column(String(100))
    account_servicer_ref: Mapped[str | None] = mapped_column(String(100))
    end_to_end_id: Mapped[str | None] = mapped_column(String(100))
    bank_tx_code: Mapped[str | None] = mapped_column(String(60))
    counterparty_name: Mapped[str | None] = mapped_column(String(140))
    counterparty_iban: Mapped[str | None] = mapped_column(String(40), index=True)
    counterparty_bic: Mapped[str | None] = mapped_column(String(11))
    reference: Mapped[str | None] = mapped_column(String(40))  # the structured communication we read
    remittance: Mapped[str | None] = mapped_column(Text)
    return_reason: Mapped[str | None] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(20))
    payment_reference_id: Mapped[int | None] = mapped_column(ForeignKey("payment_reference.id"), index=True)
    collection_id: Mapped[int | None] = mapped_column(ForeignKey("collection.id"))
    booked_amount: Mapped[Decimal | None] = mapped_column(Money)
    __table_args__ = (
        UniqueConstraint("account", "entry_key"),
        CheckConstraint(_in("outcome", ENTRY_OUTCOMES), name="outcome"),
        CheckConstraint("amount >= 0", name="amount_positive"),
    )


class Payment(Base):
    """One booking on a payment reference; a reversal is a negative payment pointing at the one it undoes."""

    __tablename__ = "payment"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_reference_id: Mapped[int] = mapped_column(ForeignKey("payment_reference.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    source: Mapped[str] = mapped_column(String(20))
    bank_entry_id: Mapped[int | None] = mapped_column(ForeignKey("bank_entry.id"), index=True)
    reverses_payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id"), unique=True)
    booked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    booked_by: Mapped[str] = mapped_column(String(250))
    note: Mapped[str | None] = mapped_column(String(250))
    pom_payment_request_id: Mapped[int | None] = mapped_column(ForeignKey("pom_payment_request.id"))
    __table_args__ = (
        CheckConstraint(_in("source", PAYMENT_SOURCES), name="source"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        UniqueConstraint("bank_entry_id", "payment_reference_id"),
        # A POM payment is booked once, whether the callback or the reconciliation sees it first.
        Index("uq_payment_pom_booked_once", "pom_payment_request_id", unique=True,
              sqlite_where=text("amount > 0"), postgresql_where=text("amount > 0")),
    )


class PaymentAllocation(Base):
    """How much of a payment went to which debt line (so it can be undone line by line)."""

    __tablename__ = "payment_allocation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"), index=True)
    debt_line_id: Mapped[int] = mapped_column(ForeignKey("debt_line.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)


CONTROL_LIST_SOURCES = ("bank_statement", "pom")
CONTROL_LIST_RESOLUTIONS = ("booked", "handled")
APPROVAL_STATUSES = values(ApprovalStatus)


class ControlListItem(Base):
    """Something irregular for finance to handle: why, what to do, and how it was resolved.

    From a bank statement (an entry, or the statement itself) or from POM (an
    over-payment or a payment on a closed reference, booked by a callback or
    the reconciliation: no statement). An item is resolved once
    (:mod:`include.finance.control_list_resolution`): booked onto a payment
    reference, or handled with a note; ``resolved_at`` empty means still open.
    """

    __tablename__ = "control_list_item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    statement_id: Mapped[int | None] = mapped_column(ForeignKey("bank_statement.id"), index=True)
    bank_entry_id: Mapped[int | None] = mapped_column(ForeignKey("bank_entry.id"))
    kind: Mapped[str] = mapped_column(String(30))  # a ControlListKind
    reason: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(20), default="bank_statement", server_default="bank_statement")
    pom_event_id: Mapped[int | None] = mapped_column(ForeignKey("pom_event.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), server_default=func.current_timestamp())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(250))
    resolution: Mapped[str | None] = mapped_column(String(10))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolution_payment_reference_id: Mapped[int | None] = mapped_column(ForeignKey("payment_reference.id"))
    __table_args__ = (
        CheckConstraint(_in("source", CONTROL_LIST_SOURCES), name="source"),
        CheckConstraint("statement_id IS NOT NULL OR source <> 'bank_statement'", name="statement"),
        CheckConstraint("resolution IS NULL OR " + _in("resolution", CONTROL_LIST_RESOLUTIONS), name="resolution"),
        CheckConstraint(
            "(resolved_at IS NULL AND resolution IS NULL) OR "
            "(resolved_at IS NOT NULL AND resolution IS NOT NULL AND resolved_by IS NOT NULL)",
            name="resolved",
        ),
        # What is still open, for the Finance page (a resolved item is never looked for this way).
        Index("ix_control_list_item_open", "created_at", "id",
              sqlite_where=text("resolved_at IS NULL"), postgresql_where=text("resolved_at IS NULL")),
    )


# --- POM delivery reports (seed 003) -------------------------------------------------------------

DELIVERY_MESSAGE_KINDS = (
    "delivered", "temporary", "mailbox_full", "rejected_blacklisted", "blacklisted", "unsubscribed",
    "document_id_used", "unknown",
)
DELIVERY_DIAGNOSES = (
    "not_attempted_email_recipient_off", "not_attempted_copy_per_address_off", "not_attempted_no_email_address",
    "not_attempted_unexplained", "delivered", "retrying", "given_up", "rejected_blacklisted", "blacklisted",
    "unsubscribed", "document_id_used", "unknown",
)
DELIVERY_ACTIONS = ("fix_customer_record", "correct_address", "send_another_way", "contact_support", "wait", "none")
DELIVERY_REPORT_SOURCES = ("file", "pom")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """Like ``_in``, written as ``=`` … ``OR``: SQLite builds an ephemeral table for an ``IN`` list on every
    execution of an INSERT, which costs a few microseconds a row in the million-row executemany of a report."""
    return "(" + " OR ".join(f"{column} = {value!r}" for value in values) + ")"


class SalesJournal(Base):
    """A sales journal (verkoopdagboek, "detailboek" in seed 003): the series an invoice is booked in.

    Seed 003: a customer's contacts hanging on an address other than the first
    only get the invoice when *both* the address ("Exemplaar factuur/aanmaning",
    ``address.copy_per_address``) and the journal holding the invoice
    ("Exemplaar per adres", this ``copy_per_address``) say so. The flag is the
    journal's, not the payment reference type's: the seed sets it on the
    journal's own record (Verkopen – Detailboeken – Fiche), one journal may
    serve several kinds of debt, and a reference type is about numbering and
    collecting, not about who receives paper. So it is a table of its own. A
    journal may stand for one payment reference type (its invoice series):
    a sent document that names no journal takes the one of its reference's type.
    """

    __tablename__ = "sales_journal"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    copy_per_address: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_reference_type_id: Mapped[int | None] = mapped_column(ForeignKey("payment_reference_type.id"), unique=True)


class SentDocument(Base):
    """An invoice we handed to POM to e-mail, in a batch, under a document id (what a delivery report is about).

    ``invoice_mailing`` writes the row (with the recipients and the PDF's
    SHA-256) and commits it before POM is asked, and sets ``accepted_at`` once
    POM took the batch: a mailing that dies in between sends the very same
    batch again, which POM answers without sending anything twice.
    """

    __tablename__ = "sent_document"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[str] = mapped_column(String(100))
    document_id: Mapped[str] = mapped_column(String(100))
    payment_reference_id: Mapped[int | None] = mapped_column(ForeignKey("payment_reference.id"), index=True)
    end_user_id: Mapped[int] = mapped_column(ForeignKey("end_user.id"), index=True)  # the customer on the invoice
    sales_journal_id: Mapped[int | None] = mapped_column(ForeignKey("sales_journal.id"))
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime())
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id"), unique=True)
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    recipients: Mapped[list[Any] | None] = mapped_column(JSON)  # [[name, email], ...] as handed to POM
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    __table_args__ = (UniqueConstraint("batch", "document_id"),)


class DeliveryReport(Base):
    """The latest analysis of one batch's delivery report: analysing the batch again replaces its lines and diagnoses."""

    __tablename__ = "delivery_report"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch: Mapped[str] = mapped_column(String(100), unique=True)
    source: Mapped[str] = mapped_column(String(4))
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64))
    encoding: Mapped[str] = mapped_column(String(20))
    lines: Mapped[int] = mapped_column(Integer, default=0)
    recipients: Mapped[int] = mapped_column(Integer, default=0)  # diagnoses: invoice × recipient
    first_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    as_of: Mapped[datetime] = mapped_column(UtcDateTime())  # the "now" of the 48-hour rule
    analysed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    analysed_by: Mapped[str] = mapped_column(String(250))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)  # diagnosis -> count
    __table_args__ = (CheckConstraint(_in("source", DELIVERY_REPORT_SOURCES), name="source"),)


class DeliveryReportLine(Base):
    """One line of a delivery report: one attempt to e-mail one recipient, as POM wrote it."""

    __tablename__ = "delivery_report_line"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("delivery_report.id"))
    line_no: Mapped[int] = mapped_column(Integer)  # in the file, the header being line 1
    document_id: Mapped[str] = mapped_column(String(100))
    recipient_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20))
    message_kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime())
    __table_args__ = (
        CheckConstraint(_one_of("message_kind", DELIVERY_MESSAGE_KINDS), name="message_kind"),
        UniqueConstraint("report_id", "line_no"),
    )


class DeliveryDiagnosis(Base):
    """One invoice × intended recipient of a delivery report: one diagnosis and one action (seed 003).

    The invoice is the sent document (its customer and payment reference
    through ``sent_document``); the attempts are the report's lines for that
    document and e-mail address, the decisive one being line ``last_line_no``
    of the report (none when POM did not try). ``contact_id`` and
    ``address_id`` say which contact and address were meant, without a
    foreign key: finance may well delete that contact afterwards (replacing
    a blacklisted address is one of the actions). A report line for an
    address that is not (or no longer) on the customer record, or for a
    document we did not send in the batch, also gets a row, with a ``note``.
    The table is kept narrow on purpose: a report of a million lines writes
    about as many rows.
    """

    __tablename__ = "delivery_diagnosis"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("delivery_report.id"))
    sent_document_id: Mapped[int | None] = mapped_column(ForeignKey("sent_document.id"))
    document_id: Mapped[str] = mapped_column(String(100))
    contact_id: Mapped[int | None] = mapped_column(Integer)
    address_id: Mapped[int | None] = mapped_column(Integer)
    email: Mapped[str | None] = mapped_column(String(254))
    address_label: Mapped[str | None] = mapped_column(String(200))  # a contact on a later address: which one
    diagnosis: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)  # what makes the action specific: flags, raw message
    note: Mapped[str | None] = mapped_column(String(250))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_line_no: Mapped[int | None] = mapped_column(Integer)  # delivery_report_line (report_id, line_no)
    retry_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    __table_args__ = (
        CheckConstraint(_one_of("diagnosis", DELIVERY_DIAGNOSES), name="diagnosis"),
        CheckConstraint(_one_of("action", DELIVERY_ACTIONS), name="action"),
        Index(None, "report_id", "action"),  # the action list, group by group
    )


class BankFileApproval(Base):
    """A bank file in staging and finance's answer: approved (released to the outbox) or rejected, by whom, when.

    One row per attempt: a rejected run exported again gets a new row. At most one attempt of a run waits.
    ``summary`` is what the approver was shown (hub, creditor account, date, counts and totals per sequence
    type, control sum, the file's SHA-256), kept as shown.
    """

    __tablename__ = "bank_file_approval"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("collection_run.id"))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default=ApprovalStatus.WAITING)
    export_format: Mapped[str] = mapped_column(String(10))
    staged_path: Mapped[str] = mapped_column(String(500))
    file_sha256: Mapped[str] = mapped_column(String(64))
    transaction_count: Mapped[int] = mapped_column(Integer)
    total_amount: Mapped[Decimal] = mapped_column(Money)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    four_eyes: Mapped[bool] = mapped_column(Boolean)
    requested_by: Mapped[str | None] = mapped_column(String(250))  # the person who triggered the export, if any
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    airflow_task: Mapped[str | None] = mapped_column(String(500))  # dag/run/task/map index, for the UI's link
    decided_by: Mapped[str | None] = mapped_column(String(250))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        UniqueConstraint("run_id", "attempt"),
        CheckConstraint(_in("status", APPROVAL_STATUSES), name="status"),
        CheckConstraint("(status = 'waiting') = (decided_at IS NULL)", name="decided"),
        # One waiting attempt per run: two exports of the same run at once cannot both wait.
        Index("ux_bank_file_approval_waiting", "run_id", unique=True,
              sqlite_where=text("status = 'waiting'"), postgresql_where=text("status = 'waiting'")),
    )
