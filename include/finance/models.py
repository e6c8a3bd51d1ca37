"""The shared database: one schema for SQLite (embedded) and PostgreSQL (production).

Finance queries these tables directly, so table and column names are a
contract (see the README). Money columns are ``NUMERIC(12,2)`` read and written
as :class:`~decimal.Decimal` through :class:`Money`. Statuses are lower-case
strings guarded by CHECK constraints, so a typo can never be stored.

``sql/schema.sqlite.sql`` and ``sql/schema.postgresql.sql`` are generated from
these models (``python -m include.finance.schema``); a test keeps them current.
"""

from __future__ import annotations

from datetime import date, datetime
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
    func,
    text,
    type_coerce,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from include.finance.money import CENT, money
from include.finance.names import end_user_key

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


REFERENCE_STATUSES = ("draft", "sealed", "paid", "deleted", "expired")
OPEN_REFERENCE_STATUSES = ("draft", "sealed")
SEQUENCE_TYPES = ("FRST", "RCUR", "FNAL", "OOFF")
EXPORT_FORMATS = ("SEPA", "SAFESEPA", "CSV", "BXML")
PAIN008_VERSIONS = ("pain.008.001.02", "pain.008.001.08")
FREQUENCY_UNITS = ("day", "month", "year")
RUN_STATUSES = ("ready", "exported", "failed", "confirmed", "deleted")
COLLECTION_STATUSES = ("pending", "exported", "paid", "returned", "cancelled")


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
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
    status: Mapped[str] = mapped_column(String(10), default="draft")
    amount: Mapped[Decimal] = mapped_column(Money)
    open_amount: Mapped[Decimal] = mapped_column(Money)
    reference_number: Mapped[str | None] = mapped_column(String(25))
    invoice_number: Mapped[str | None] = mapped_column(String(40))
    due_date: Mapped[date | None] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sealed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
    status: Mapped[str] = mapped_column(String(10), default="ready")
    export_format: Mapped[str | None] = mapped_column(String(10))
    file_path: Mapped[str | None] = mapped_column(String(500))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    transaction_count: Mapped[int] = mapped_column(Integer, default=0)
    total_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(250))
    exported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
    mandate_id: Mapped[int] = mapped_column(ForeignKey("mandate.id"))
    payment_reference_id: Mapped[int] = mapped_column(ForeignKey("payment_reference.id"), unique=True)
    sequence_type: Mapped[str] = mapped_column(String(4))
    due_date: Mapped[date] = mapped_column(Date)  # the mandate's schedule slot
    amount: Mapped[Decimal] = mapped_column(Money)
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    return_reason: Mapped[str | None] = mapped_column(String(10))
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
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index(None, "entity", "entity_id"),)


STATEMENT_KINDS = ("camt.053", "camt.054")
ENTRY_OUTCOMES = (
    "paid",  # credit paying a reference's open amount exactly
    "partial",  # credit lower than the open amount
    "overpaid",  # credit above the open amount: open amount booked, the rest on the control list
    "closed_reference",  # the reference is paid, deleted or expired: control list
    "unmatched",  # no reference found: control list, with candidates
    "returned",  # a collection came back (return or reversal)
    "unknown_return",  # a return or reversal we cannot tie to a collection: control list
    "unsplit",  # a batch entry without transaction amounts: control list
    "not_booked",  # pending or information-only entry
    "other_debit",  # a debit that is none of ours (fees, transfers out)
    "unknown_account",  # the statement's account belongs to no bank hub
)
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
    created_on_bank: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
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
    booked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    booked_by: Mapped[str] = mapped_column(String(250))
    note: Mapped[str | None] = mapped_column(String(250))
    __table_args__ = (
        CheckConstraint(_in("source", PAYMENT_SOURCES), name="source"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        UniqueConstraint("bank_entry_id", "payment_reference_id"),
    )


class PaymentAllocation(Base):
    """How much of a payment went to which debt line (so it can be undone line by line)."""

    __tablename__ = "payment_allocation"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payment.id"), index=True)
    debt_line_id: Mapped[int] = mapped_column(ForeignKey("debt_line.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)


class ControlListItem(Base):
    """An irregular bank entry (or statement) for finance to handle: why, and what to do."""

    __tablename__ = "control_list_item"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("bank_statement.id"), index=True)
    bank_entry_id: Mapped[int | None] = mapped_column(ForeignKey("bank_entry.id"))
    kind: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal | None] = mapped_column(Money)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
