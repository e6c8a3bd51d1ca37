"""What an invoice says, gathered from the database for many references at once, and put into words.

:func:`gather` reads everything the invoices of a set of references need in a
handful of queries; :func:`invoice_data` (pure) turns one :class:`InvoiceFacts`
into the values of the template's placeholders, in the customer's language.

Decisions the seeds leave open:

* the creditor on the invoice is the financial system's merchant name
  (seed 2.5.1) with the account of the reference's hub, or else of the
  system's first complete hub (the one its transfers are matched on);
* a reference collected by direct debit gets its invoice as the debtor's
  pre-notification: it says when and from which (masked) account the amount
  is collected, under which mandate, and carries no transfer QR code and no
  POM code, so nobody pays twice;
* amounts and dates are written the Belgian way (``1.234,50``, ``31/12/2026``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.finance.models import (
    Address,
    BankHub,
    Collection,
    CollectionRun,
    DebtLine,
    EndUser,
    FinancialSystem,
    Mandate,
    PaymentReference,
    PaymentReferenceLine,
    PaymentReferenceType,
    PomPaymentRequest,
    SalesJournal,
)
from include.finance.money import ZERO
from include.finance.reference_numbers import display_reference
from include.finance.statuses import SETTLED_COLLECTION, PomRequestStatus
from include.invoices.channel import Channel, address_types, decide_channel
from include.invoices.templates import LANGUAGES
from include.pom.delivery_store import email_contacts
from include.pom.payment_requests import safe_pay_url
from include.sepa.hubs import hub_problems
from include.sepa.identifiers import mask_iban


@dataclass(frozen=True)
class PostalAddress:
    id: int
    kind: str
    street: str | None
    number: str | None
    postal_code: str | None
    city: str | None
    country: str


@dataclass(frozen=True)
class DirectDebit:
    collection_date: date
    mandate_reference: str
    creditor_id: str
    debtor_iban: str


@dataclass(frozen=True)
class InvoiceFacts:
    """Everything one invoice shows, as read from the database."""

    reference_id: int
    loi: str
    type_id: int
    print_state: str | None
    language: str
    invoice_number: str | None
    reference_number: str | None
    open_amount: Decimal
    currency: str
    due_date: date | None
    description: str | None
    first_name: str | None
    last_name: str
    eloi: str
    creditor_name: str
    creditor_iban: str | None
    creditor_bic: str | None
    creditor_id: str | None
    channel: Channel
    recipients: tuple[str, ...]
    address: PostalAddress | None
    lines: tuple[tuple[str, str, Decimal, Decimal], ...]  # code, description, amount, open amount
    sales_journal_id: int | None = None
    direct_debit: DirectDebit | None = None
    pom_request_id: int | None = None
    pom_svg: str | None = None
    pay_url: str | None = None
    amount: Decimal | None = None  # the reference's whole amount: what was paid on it is this less the open amount

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def paid(self) -> Decimal:
        """What was paid on the invoice's debt so far: the debt lines' amounts less what is open, so that the table
        adds up (lines, less paid, is what is asked), a line paid in part under an earlier reference included.
        Without lines: the reference's amount less what is open."""
        whole = sum((line[2] for line in self.lines), ZERO) if self.lines else self.amount
        return max(whole - self.open_amount, ZERO) if whole is not None else ZERO

    @property
    def transfer_qr(self) -> bool:
        """Whether the invoice carries the EPC bank-transfer code: not on a direct-debit notice."""
        return self.direct_debit is None and bool(self.creditor_iban and self.reference_number)


def gather(session: Session, reference_ids: Iterable[int]) -> list[InvoiceFacts]:
    """The facts of the invoices of ``reference_ids`` (in id order)."""
    ids = sorted(set(reference_ids))
    if not ids:
        return []
    facts: list[InvoiceFacts] = []
    for start in range(0, len(ids), 500):
        facts.extend(_gather_chunk(session, ids[start : start + 500]))
    return facts


def _gather_chunk(session: Session, ids: list[int]) -> list[InvoiceFacts]:
    refs = session.execute(
        select(PaymentReference, PaymentReferenceType, EndUser, FinancialSystem)
        .join(PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
        .join(EndUser, EndUser.id == PaymentReference.end_user_id)
        .join(FinancialSystem, FinancialSystem.id == PaymentReference.financial_system_id)
        .where(PaymentReference.id.in_(ids)).order_by(PaymentReference.id)
    ).all()
    user_ids = {user.id for _, _, user, _ in refs}
    addresses: dict[int, list[PostalAddress]] = defaultdict(list)
    for row in session.scalars(select(Address).where(Address.end_user_id.in_(user_ids)).order_by(Address.position)):
        if row.city or row.street:
            addresses[row.end_user_id].append(PostalAddress(row.id, row.address_type, row.street, row.house_number,
                                                            row.postal_code, row.city, row.country))
    lines: dict[int, list[tuple[str, str, Decimal, Decimal]]] = defaultdict(list)
    for ref_id, code, description, amount, open_amount in session.execute(
        select(PaymentReferenceLine.payment_reference_id, PaymentReferenceLine.transaction_code, DebtLine.description,
               DebtLine.amount, DebtLine.open_amount)
        .join(DebtLine, DebtLine.id == PaymentReferenceLine.debt_line_id)
        .where(PaymentReferenceLine.payment_reference_id.in_(ids))
        .order_by(PaymentReferenceLine.payment_reference_id, DebtLine.created_on, DebtLine.id)
    ):
        lines[ref_id].append((code, description or code, amount, open_amount))
    contacts = email_contacts(session, user_ids)
    hubs = {hub.id: hub for hub in session.scalars(select(BankHub).order_by(BankHub.id))}
    system_hub: dict[int, BankHub] = {}
    for hub in hubs.values():
        if hub.financial_system_id not in system_hub and not hub_problems(hub):
            system_hub[hub.financial_system_id] = hub
    journals = {type_id: (journal_id, bool(copy)) for journal_id, type_id, copy in session.execute(
        select(SalesJournal.id, SalesJournal.payment_reference_type_id, SalesJournal.copy_per_address)
        .where(SalesJournal.payment_reference_type_id.is_not(None)))}
    debits = {ref_id: DirectDebit(day, reference or mandate_ref, creditor or "", iban or mandate_iban or "")
              for ref_id, day, reference, creditor, iban, mandate_ref, mandate_iban in session.execute(
                  select(Collection.payment_reference_id, CollectionRun.collection_date, Collection.mandate_reference,
                         Collection.creditor_id, Collection.debtor_iban, Mandate.reference, Mandate.debtor_iban)
                  .join(Mandate, Mandate.id == Collection.mandate_id)
                  .join(CollectionRun, CollectionRun.id == Collection.run_id)
                  .where(Collection.payment_reference_id.in_(ids),
                         Collection.status.not_in(SETTLED_COLLECTION)))}
    # POM's code only when it asks what the invoice asks: a request the sync could not replace after a partial
    # payment still holds the old amount, and its code would have the payer pay that.
    pom = {ref_id: (request_id, svg, url) for request_id, ref_id, svg, url in session.execute(
        select(PomPaymentRequest.id, PomPaymentRequest.payment_reference_id, PomPaymentRequest.qr_svg,
               PomPaymentRequest.pay_url)
        .join(PaymentReference, PaymentReference.id == PomPaymentRequest.payment_reference_id)
        .where(PomPaymentRequest.payment_reference_id.in_(ids), PomPaymentRequest.status == PomRequestStatus.OPEN,
               PomPaymentRequest.amount == PaymentReference.open_amount))}
    out = []
    for ref, type_, user, system in refs:
        hub = hubs.get(ref.hub_id) if ref.hub_id else None
        hub = hub or system_hub.get(system.id)
        journal_id, copy = journals.get(type_.id, (None, False))
        own_contacts = contacts.get(user.id)
        recipients = tuple(own_contacts.recipients(copy)) if own_contacts is not None else ()
        own = addresses.get(user.id, [])
        channel = decide_channel(address_types(type_.address_types), [(a.id, a.kind) for a in own],
                                 has_recipient=bool(recipients),
                                 has_email_contact=own_contacts is not None and bool(own_contacts.contacts))
        request = pom.get(ref.id) if type_.allowed_online and ref.mandate_id is None else None
        out.append(InvoiceFacts(
            reference_id=ref.id, loi=ref.loi, type_id=type_.id, print_state=type_.print_state,
            language=_language(user.language),
            invoice_number=ref.invoice_number, reference_number=ref.reference_number, open_amount=ref.open_amount,
            currency=hub.currency if hub else "EUR", due_date=ref.due_date, description=ref.description,
            first_name=user.first_name, last_name=user.last_name, eloi=user.eloi,
            creditor_name=system.merchant_name or (hub.creditor_name if hub else None) or system.name,
            creditor_iban=hub.creditor_iban if hub else None, creditor_bic=hub.creditor_bic if hub else None,
            creditor_id=hub.creditor_id if hub else None, channel=channel, recipients=recipients,
            address=next((a for a in own if a.id == channel.address_id), own[0] if own else None),
            lines=tuple(lines.get(ref.id, ())), sales_journal_id=journal_id,
            direct_debit=debits.get(ref.id) if ref.mandate_id is not None else None,
            pom_request_id=request[0] if request else None, pom_svg=request[1] if request else None,
            pay_url=safe_pay_url(request[2]) if request else None,  # a link in the PDF: https only
            amount=ref.amount,
        ))
    return out


def _language(code: str | None) -> str:
    """The end user's language as the templates name it (``FR`` is ``fr``); one they have no template for: Dutch.

    >>> _language("FR"), _language(" fr "), _language("en"), _language(None)
    ('fr', 'fr', 'nl', 'nl')
    """
    code = (code or "").strip().lower()
    return code if code in LANGUAGES else LANGUAGES[0]


# -- into words -------------------------------------------------------------------------------------------

def amount_text(amount: Decimal) -> str:
    """An amount the Belgian way.

    >>> amount_text(Decimal("1234.5"))
    '1.234,50'
    >>> amount_text(Decimal("0.07"))
    '0,07'
    """
    return f"{amount:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def date_text(day: date | None) -> str:
    """A date as Belgians write it.

    >>> date_text(date(2026, 12, 4))
    '04/12/2026'
    """
    return day.strftime("%d/%m/%Y") if day else ""


def _iban_text(iban: str | None) -> str:
    """An IBAN in groups of four, as printed on paper."""
    compact = (iban or "").replace(" ", "").upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


_INSTRUCTIONS = {
    "nl": {
        "transfer": "Gelieve {amount} {cur} over te schrijven op rekening {iban} van {creditor} met de gestructureerde "
                    "mededeling {ref}{by}.",
        "by": ", uiterlijk op {date}",
        "debit": "Dit bedrag van {amount} {cur} wordt op of kort na {date} via SEPA-domiciliëring geïnd van rekening "
                 "{iban} (mandaat {mandate}, identificatie schuldeiser {cid}). U hoeft niets over te schrijven.",
        "paid": "Deze factuur is betaald. Bedankt!",
        "partly_paid": "Van het totaal van {total} {cur} is al {paid} {cur} betaald. ",
    },
    "fr": {
        "transfer": "Veuillez virer {amount} {cur} sur le compte {iban} de {creditor} avec la communication "
                    "structurée {ref}{by}.",
        "by": ", au plus tard le {date}",
        "debit": "Ce montant de {amount} {cur} sera prélevé le {date} ou peu après par domiciliation SEPA sur le "
                 "compte {iban} (mandat {mandate}, identifiant du créancier {cid}). Vous ne devez rien virer.",
        "paid": "Cette facture est payée. Merci !",
        "partly_paid": "Sur le total de {total} {cur}, {paid} {cur} ont déjà été payés. ",
    },
}


def invoice_data(facts: InvoiceFacts, epc_svg: str | None, day: date | None = None) -> dict[str, Any]:
    """The values of every placeholder for one invoice (JSON-ready: text, lists of text, None).

    ``day``: the print day, shown as the invoice's date (an invoice without a date is none to a finance officer).
    """
    words = _INSTRUCTIONS[facts.language]
    reference = display_reference(facts.reference_number) if facts.reference_number else ""
    amount = amount_text(facts.open_amount)
    title_lines = (facts.description or "").splitlines() or [""]
    if facts.direct_debit is not None:
        debit = facts.direct_debit
        instructions = words["debit"].format(amount=amount, cur=facts.currency, date=date_text(debit.collection_date),
                                             iban=mask_iban(debit.debtor_iban), mandate=debit.mandate_reference,
                                             cid=debit.creditor_id)
    elif facts.open_amount <= 0:
        instructions = words["paid"]
    else:
        instructions = words["transfer"].format(
            amount=amount, cur=facts.currency, iban=_iban_text(facts.creditor_iban), creditor=facts.creditor_name,
            ref=reference, by=words["by"].format(date=date_text(facts.due_date)) if facts.due_date else "")
    # A partly paid reference asks only what is open, and says so: otherwise the payer sees lines adding up to more
    # than is asked and may pay the whole again.
    paid = facts.paid if facts.open_amount > 0 else ZERO
    if paid > 0:
        instructions = words["partly_paid"].format(total=amount_text(facts.open_amount + paid), paid=amount_text(paid),
                                                   cur=facts.currency) + instructions
    address = facts.address
    address_lines = [facts.name]
    if address is not None:
        address_lines += [" ".join(p for p in (address.street, address.number) if p),
                          " ".join(p for p in (address.postal_code, address.city) if p)]
        if address.country and address.country != "BE":
            address_lines.append(address.country)
    address_lines = [line for line in address_lines if line]
    return _one_line({
        "language": facts.language,
        "State.Camount": amount,
        "State.Ccur": facts.currency,
        # Seed 2.5.2 (geninv): "Bij ontstentenis wordt nooit een factuurnummer toegekend": no number, none shown.
        "State.Cinvoicenr": facts.invoice_number or "",
        "State.Cref": reference,
        "State.Cpaydate": date_text(facts.direct_debit.collection_date if facts.direct_debit else facts.due_date),
        "State.Cfploi": facts.loi,
        "State.Ctitle": " ".join(line.strip() for line in title_lines if line.strip()),
        "State.Ctitle{}": title_lines,
        "Euser.name": facts.name,
        "Euser.firstname": facts.first_name or "",
        "Euser.lastname": facts.last_name,
        "Euser.eloi": facts.eloi,
        "Euser.street": address.street or "" if address else "",
        "Euser.number": address.number or "" if address else "",
        "Euser.zip": address.postal_code or "" if address else "",
        "Euser.city": address.city or "" if address else "",
        "Euser.country": address.country if address else "",
        "Euser.address": ", ".join(address_lines),
        "Euser.address{}": address_lines,
        "Creditor.name": facts.creditor_name,
        "Creditor.iban": _iban_text(facts.creditor_iban),
        "Creditor.bic": facts.creditor_bic or "",
        "Creditor.id": facts.creditor_id or "",
        "lines": [{"code": code, "description": text, "amount": amount_text(total), "open": amount_text(left)}
                  for code, text, total, left in facts.lines],
        "instructions": instructions,
        "invoice_date": date_text(day),
        # The debt lines' table ends with these before what is to be paid (empty: nothing paid yet).
        "amount_total": amount_text(facts.open_amount + paid) if paid > 0 else "",
        "amount_paid": amount_text(paid) if paid > 0 else "",
        "epc_svg": epc_svg,
        "pom_svg": facts.pom_svg,
        "pay_url": facts.pay_url,
    })


_AS_GIVEN = ("epc_svg", "pom_svg", "pay_url")


def _one_line(data: Any, key: str = "") -> Any:
    """Every text value on one line: a line break or tab kept in a stored name, street or description would print as
    an extra line in the address block (or run words together); the title's lines are separate values already.

    >>> _one_line({"Euser.name": "Zoë\\nD'Hondt\\t& Co ", "lines": [{"code": "A\\r\\nB"}], "pom_svg": "<svg/>\\n"})
    {'Euser.name': "Zoë D'Hondt & Co", 'lines': [{'code': 'A B'}], 'pom_svg': '<svg/>\\n'}
    """
    if key in _AS_GIVEN:
        return data
    if isinstance(data, str):
        return " ".join(data.split())
    if isinstance(data, list):
        return [_one_line(item) for item in data]
    if isinstance(data, dict):
        return {name: _one_line(value, name) for name, value in data.items()}
    return data
