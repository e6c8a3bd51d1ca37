"""Small builders for test data: one institution, its users, mandates and debts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from itertools import count

from schwifty import IBAN
from sqlalchemy.orm import Session

from include.sepa.identifiers import creditor_id, enterprise_number
from include.finance.models import (
    BankHub,
    DebtLine,
    EndUser,
    FinancialSystem,
    Frequency,
    Mandate,
    MandateTransactionCode,
    PaymentReference,
    PaymentReferenceLine,
    PaymentReferenceType,
)
from include.finance.reference_numbers import ogm

_serial = count(1)


@dataclass
class Institution:
    system: FinancialSystem
    hub: BankHub
    recurring: PaymentReferenceType
    one_off: PaymentReferenceType
    daily: Frequency
    monthly: Frequency
    yearly: Frequency


def iban(n: int) -> str:
    return str(IBAN.generate("BE", "734", f"{n:07d}"))


def make_institution(session: Session, code: str = "BIB", **hub_settings: object) -> Institution:
    system = FinancialSystem(code=code, name=f"Financial system {code}")
    session.add(system)
    session.flush()
    account = IBAN.generate("BE", "068", f"{next(_serial):07d}")
    hub = BankHub(
        code=f"HUB-{code}", name=f"Hub {code}", financial_system_id=system.id, creditor_iban=str(account),
        creditor_bic=str(account.bic), creditor_name=f"Bibliothèque d'{code}", initiator_name=f"Bibliothèque d'{code}",
        creditor_id=creditor_id("BE", enterprise_number(2074600 + next(_serial))), creditor_country="BE",
        creditor_street="Naamsestraat", creditor_house_number="1", creditor_postal_code="3000", creditor_city="Leuven",
        export_format="SEPA", lead_days=2,
    )
    for key, value in hub_settings.items():
        setattr(hub, key, value)
    recurring = PaymentReferenceType(code=f"DOM-{code}", name="Direct debit", reference_format="OGM",
                                     reference_counter=f"ogm-{code}", reference_prefix="062",
                                     invoice_counter=f"inv-{code}", invoice_prefix=f"{code}-")
    one_off = PaymentReferenceType(code=f"ONCE-{code}", name="One-off", default_sequence_type="OOFF")
    frequencies = [Frequency(code=f"{unit}-{code}", name=unit, unit=unit) for unit in ("day", "month", "year")]
    session.add_all([hub, recurring, one_off, *frequencies])
    session.flush()
    return Institution(system, hub, recurring, one_off, *frequencies)


def make_user(session: Session, first: str = "Zoë", last: str = "D'Hondt") -> EndUser:
    user = EndUser(eloi=f"e:T:{next(_serial)}", first_name=first, last_name=last)
    session.add(user)
    session.flush()
    return user


def make_mandate(
    session: Session,
    inst: Institution,
    owner: EndUser,
    *,
    first: date,
    patterns: tuple[str, ...] = ("LID", "BOETE*"),
    frequency: Frequency | None | str = "monthly",
    one_off: bool = False,
    **fields: object,
) -> Mandate:
    n = next(_serial)
    if frequency == "monthly":
        frequency = inst.monthly
    values: dict[str, object] = {
        "loi": f"fm:{inst.system.code}:{n}", "financial_system_id": inst.system.id, "reference": f"MND-{n:06d}",
        "active": True, "type_id": (inst.one_off if one_off else inst.recurring).id,
        "signature_date": date(2024, 1, 15), "first_collection_date": first,
        "frequency_id": None if one_off or frequency is None else frequency.id,  # type: ignore[union-attr]
        "hub_id": inst.hub.id, "end_user_id": owner.id, "debtor_id": owner.id, "debtor_iban": iban(n),
        "debtor_bic": "KREDBEBB", "created_at": datetime(2024, 1, 15, tzinfo=timezone.utc),
    }
    values.update(fields)
    mandate = Mandate(**values, transaction_codes=[MandateTransactionCode(pattern=p) for p in patterns])
    session.add(mandate)
    session.flush()
    return mandate


def add_debt(session: Session, inst: Institution, user: EndUser, code: str, amount: str, system: FinancialSystem | None = None) -> DebtLine:
    line = DebtLine(
        financial_system_id=(system or inst.system).id, end_user_id=user.id, transaction_code=code,
        amount=Decimal(amount), open_amount=Decimal(amount), created_on=date(2026, 11, 1),
    )
    session.add(line)
    session.flush()
    return line


def make_reference(
    session: Session, inst: Institution, user: EndUser, amounts: tuple[str, ...], *, number: int,
    status: str = "sealed", loi: str | None = None,
) -> PaymentReference:
    """A sealed payment reference over new debt lines of ``amounts``, with OGM ``062`` + ``number``."""
    lines = [add_debt(session, inst, user, "LID", amount) for amount in amounts]
    total = sum((line.amount for line in lines), Decimal("0.00"))
    reference = PaymentReference(
        loi=loi or f"fp:{inst.system.code}:{number}", financial_system_id=inst.system.id, type_id=inst.recurring.id,
        end_user_id=user.id, status=status, amount=total, open_amount=total, reference_number=ogm("062", number),
        created_at=datetime(2026, 11, 1, tzinfo=timezone.utc), sealed_at=datetime(2026, 11, 1, tzinfo=timezone.utc),
    )
    session.add(reference)
    session.flush()
    for line in lines:
        line.payment_reference_id = reference.id
        session.add(PaymentReferenceLine(payment_reference_id=reference.id, debt_line_id=line.id,
                                         transaction_code=line.transaction_code, amount=line.amount))
    session.flush()
    return reference
