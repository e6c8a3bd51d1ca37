"""The demo institution: a Leuven library network and an arts academy, with their patrons and pupils.

Deterministic (one seeded random generator) and built relative to the run
date, so that the demo's direct-debit run always yields FRST, RCUR, FNAL and
OOFF collections and every outcome of the mandate check.

* financial systems ``BIB`` (Bibliotheeknetwerk Regio Leuven) and ``SKA``
  (Stedelijke Kunstacademie Leuven);
* hubs ``KBC-BIB`` (SEPA, pain.008.001.02, lead 2 days) and ``BELFIUS-SKA``
  (SAFESEPA, pain.008.001.08, lead 1 day), plus ``BNP-OUD``, an old hub whose
  creditor identifier is wrong: its mandates land on active-err and it never
  gets a file;
* 520 end users with Belgian names (accents, apostrophes), addresses and
  e-mail contacts; 380 mandates over daily, monthly and yearly frequencies;
  debt lines under several transaction codes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from schwifty import IBAN
from sqlalchemy import select
from sqlalchemy.orm import Session

from include.airflow_roles import FINANCE, FINANCE_ADMIN
from include.finance.counters import reserve
from include.finance.models import (
    Address,
    BankHub,
    Collection,
    CollectionRun,
    Contact,
    DebtLine,
    EndUser,
    FinancialSystem,
    Frequency,
    Mandate,
    MandateTransactionCode,
    PaymentReference,
    PaymentReferenceLine,
    PaymentReferenceType,
    SalesJournal,
)
from include.finance.reference_numbers import format_ogm, make_reference
from sandbox.camt_writer import SDD_COLLECTED, SDD_RETURNED, Entry, Tx, write_camt053
from include.sepa.identifiers import creditor_id, enterprise_number
from include.sepa.schedule import slot

SEED = 20261122
USERS = 520

FIRST_NAMES = (
    "Jan", "Marie", "Lucas", "Zoë", "Noémie", "Chloé", "Anaïs", "Thiébaut", "Renée", "Hélène", "Maëlle",
    "Jérôme", "François", "Gaëtan", "Lotte", "Wout", "Febe", "Seppe", "Elif", "Mohamed", "Yasmine", "Ines",
    "Arthur", "Louise", "Noah", "Olivia", "Finn", "Julie", "Bart", "Griet", "Luc", "Nathalie", "Kobe", "Aïcha",
    "Björn", "Léa", "Siebe", "Emiel", "Fien", "Jef",
)
LAST_NAMES = (
    "Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens", "Wouters", "De Smet",
    "D'Hondt", "Van den Broeck", "Dubois", "Lambert", "Dupont", "Vandenbroucke", "D'Haese", "Van Damme",
    "Lefèvre", "Noël", "D'Hooghe", "Verhaeghe", "Deprez", "Bogaert", "Coppens", "Vermeulen", "Van Acker",
    "Desmet", "Lemaître", "Geeraerts", "Van Gestel", "Çelik", "El Amrani", "Vanhoutte", "D'Ursel", "Stroobants",
    "Crèvecœur", "Gevaert", "Van Ransbeeck", "De Wolf",
)
STREETS = (
    ("Bondgenotenlaan", "3000", "Leuven"), ("Naamsestraat", "3000", "Leuven"), ("Tiensestraat", "3000", "Leuven"),
    ("Diestsesteenweg", "3010", "Kessel-Lo"), ("Naamsesteenweg", "3001", "Heverlee"),
    ("Aarschotsesteenweg", "3012", "Wilsele"), ("Sint-Maartenstraat", "3000", "Leuven"),
    ("Rue de l'Étuve", "1000", "Brussel"), ("Chaussée de Wavre", "1050", "Elsene"),
    ("Place de l'Université", "1348", "Louvain-la-Neuve"), ("Kapucijnenvoer", "3000", "Leuven"),
    ("Tervuursesteenweg", "3001", "Heverlee"), ("Brusselsesteenweg", "3020", "Herent"),
)
# Belgian bank codes (first three BBAN digits) of banks in schwifty's registry.
BANK_CODES = ("734", "001", "068", "363", "751", "063", "310", "103", "973", "096")
BIB_CODES = ("LIDGELD", "BOETE-LAAT", "BOETE-BESCHADIGD", "RESERVATIE", "PRINT")
SKA_CODES = ("INSCHRIJVING", "MATERIAAL", "UITSTAP-BRUGGE", "UITSTAP-GENT")


@dataclass
class DemoInstitution:
    run_date: date
    users: int
    mandates: int
    debt_lines: int


class _Builder:
    def __init__(self, session: Session, run_date: date) -> None:
        self.session = session
        self.run_date = run_date
        self.rng = random.Random(SEED)
        self.created_at = datetime.combine(run_date - timedelta(days=400), time(9), tzinfo=timezone.utc)

    def iban(self) -> IBAN:
        return IBAN.generate("BE", self.rng.choice(BANK_CODES), f"{self.rng.randrange(10**7):07d}")

    def amount(self, low: int, high: int) -> Decimal:
        return Decimal(self.rng.randrange(low * 100, high * 100)) / 100

    def metadata(self) -> None:
        s = self.session
        self.bib = FinancialSystem(code="BIB", name="Bibliotheeknetwerk Regio Leuven", merchant_name="Bibliotheek Leuven")
        self.ska = FinancialSystem(code="SKA", name="Stedelijke Kunstacademie Leuven", merchant_name="Kunstacademie Leuven",
                                   partial_payment_strategy="matching_amount")
        s.add_all([self.bib, self.ska])
        s.flush()
        self.daily = Frequency(code="daily", name="Dagelijks", unit="day")
        self.monthly = Frequency(code="monthly", name="Maandelijks", unit="month")
        self.yearly = Frequency(code="yearly", name="Jaarlijks", unit="year")
        s.add_all([self.daily, self.monthly, self.yearly])
        # Read by everyone; made, sealed and booked on by finance; unsealed and deleted by finance-admin only.
        locks = {"access_read": None, "access_write": FINANCE, "access_admin": FINANCE_ADMIN}
        common = {**locks, "address_types": "thuis;emailonly"}
        self.type_bib = PaymentReferenceType(
            code="DOM-BIB", name="Domiciliëring bibliotheek", reference_format="OGM", reference_counter="ogm-bib",
            reference_prefix="062", invoice_counter="fact-bib", invoice_prefix="BIB-", print_state="FAC-DOM",
            transaction_cost_code="KOST-DOM", **common,
        )
        self.type_ska = PaymentReferenceType(
            code="DOM-SKA", name="Domiciliëring schoolgeld", reference_format="RF", reference_counter="rf-ska",
            reference_prefix="71", invoice_counter="fact-ska", invoice_prefix="SKA-", direct_print=True, **common,
        )
        self.type_once = PaymentReferenceType(
            code="EENMALIG-SKA", name="Eenmalige inning (uitstap)", default_sequence_type="OOFF",
            invoice_counter="fact-ska", invoice_prefix="SKA-", **common,
        )
        self.type_invoice = PaymentReferenceType(
            code="FACTUUR-BIB", name="Factuur (overschrijving)", reference_format="OGM", reference_counter="ogm-fact-bib",
            reference_prefix="063", invoice_counter="fact-bib", invoice_prefix="BIB-", print_state="FAC",
            allowed_online=True, **common,  # the invoice carries a POM QR code beside its OGM
        )
        self.type_online = PaymentReferenceType(
            code="ONLINE", name="Online betaling", lifetime_seconds=7 * 86400, allowed_online=True,
            address_types="emailonly", reference_format="OGM", reference_counter="ogm-online", reference_prefix="064",
            pom_auto_cancel=True,  # room and material bookings: unpaid after the due date, the booking lapses
            **locks,
        )
        s.add_all([self.type_bib, self.type_ska, self.type_once, self.type_invoice, self.type_online])
        address = {"creditor_street": "Rijschoolstraat", "creditor_house_number": "4", "creditor_postal_code": "3000",
                   "creditor_city": "Leuven", "creditor_country": "BE"}
        bib_iban = IBAN.generate("BE", "734", "0190012")
        ska_iban = IBAN.generate("BE", "068", "2402190")
        self.hub_bib = BankHub(
            code="KBC-BIB", name="KBC Bank — bibliotheek", financial_system_id=self.bib.id,
            creditor_iban=str(bib_iban), creditor_bic=str(bib_iban.bic), cash_register="KAS-BIB-01",
            initiator_name="Bibliotheeknetwerk Regio Leuven", initiator_id=enterprise_number(2074625),
            creditor_name="Bibliotheeknetwerk Regio Leuven", creditor_id=creditor_id("BE", enterprise_number(2074625)),
            export_format="SEPA", pain008_version="pain.008.001.02", lead_days=2, batch_booking=True,
            proposal_generators="dom-maandelijks", **address,
        )
        self.hub_ska = BankHub(
            code="BELFIUS-SKA", name="Belfius — kunstacademie", financial_system_id=self.ska.id,
            creditor_iban=str(ska_iban), creditor_bic=str(ska_iban.bic), cash_register="KAS-SKA-01",
            initiator_name="Stedelijke Kunstacademie Leuven", creditor_name="Stedelijke Kunstacademie Leuven — Dienst Financiën",
            creditor_id=creditor_id("BE", enterprise_number(2074626)), export_format="SAFESEPA",
            pain008_version="pain.008.001.08", lead_days=1, batch_booking=False,
            **{**address, "creditor_street": "Vlamingenstraat", "creditor_house_number": "86"},
        )
        self.hub_broken = BankHub(
            code="BNP-OUD", name="BNP Paribas Fortis (oud contract)", financial_system_id=self.bib.id,
            creditor_iban=str(IBAN.generate("BE", "001", "4413312")), creditor_bic="GEBABEBB",
            creditor_name="Bibliotheek Leuven", creditor_id="BE00ZZZ0123456789", export_format="SEPA",
        )
        s.add_all([self.hub_bib, self.hub_ska, self.hub_broken])
        s.flush()

    def users(self) -> list[EndUser]:
        users = []
        for n in range(1, USERS + 1):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            user = EndUser(eloi=f"e:LEU:{10000 + n}", first_name=first, last_name=last, language="nl")
            street, postal_code, city = self.rng.choice(STREETS)
            user.addresses.append(Address(position=1, address_type="thuis", street=street,
                                          house_number=str(self.rng.randrange(1, 250)), postal_code=postal_code, city=city))
            mail = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
            user.contacts.append(Contact(kind="email", value=f"{mail}{n}@example.be"))
            users.append(user)
        self.session.add_all(users)
        self.session.flush()
        return users

    def debts(self, user: EndUser, system: FinancialSystem, codes: tuple[str, ...], count: int) -> list[DebtLine]:
        lines = []
        for _ in range(count):
            code = self.rng.choice(codes)
            amount = self.amount(1, 15) if code.startswith(("BOETE", "PRINT", "RESERV")) else self.amount(20, 180)
            lines.append(DebtLine(financial_system_id=system.id, end_user_id=user.id, transaction_code=code,
                                  description=code.replace("-", " ").capitalize(), amount=amount, open_amount=amount,
                                  created_on=self.run_date - timedelta(days=self.rng.randrange(1, 60))))
        self.session.add_all(lines)
        return lines

    def mandate(self, owner: EndUser, debtor: EndUser | None, hub: BankHub | None, type_: PaymentReferenceType | None,
                patterns: tuple[str, ...], frequency: Frequency | None, first: date, *, last: date | None = None,
                end: date | None = None, active: bool = True, iban: str | None = None, bic: str | None = None,
                signed: date | None = None) -> Mandate:
        system = self.bib if hub is None or hub.financial_system_id == self.bib.id else self.ska
        number = reserve(self.session, f"fm:{system.code}")
        account = self.iban()
        mandate = Mandate(
            loi=f"fm:{system.code}:{number}", financial_system_id=system.id,
            reference=make_reference("OGM", "", number) if system is self.bib else f"SKA-M-{number:05d}",
            active=active, type_id=type_.id if type_ else None,
            signature_date=signed or first - timedelta(days=self.rng.randrange(20, 700)),
            first_collection_date=first, last_collection_date=last, end_date=end,
            frequency_id=frequency.id if frequency else None, hub_id=hub.id if hub else None,
            end_user_id=owner.id, debtor_id=debtor.id if debtor else None,
            debtor_iban=iban if iban is not None else str(account),
            debtor_bic=bic if bic is not None else (str(account.bic) if account.bic else None),
            created_at=self.created_at,
            transaction_codes=[MandateTransactionCode(pattern=p) for p in patterns],
        )
        self.session.add(mandate)
        return mandate

    def invoice(self, user: EndUser, run_date: date) -> PaymentReference:
        """A sealed invoice over the user's open library debt, payable by transfer with its OGM."""
        lines = self.session.scalars(
            select(DebtLine).where(DebtLine.end_user_id == user.id, DebtLine.payment_reference_id.is_(None))
        ).all()
        number = reserve(self.session, "fp:BIB")
        counter = reserve(self.session, "ogm-fact-bib")
        total = sum((line.open_amount for line in lines), Decimal("0.00"))
        moment = datetime.combine(run_date - timedelta(days=20), time(9), tzinfo=timezone.utc)
        reference = PaymentReference(
            loi=f"fp:BIB:{number}", financial_system_id=self.bib.id, type_id=self.type_invoice.id, end_user_id=user.id,
            status="sealed", amount=total, open_amount=total, reference_number=make_reference("OGM", "063", counter),
            invoice_number=f"BIB-{reserve(self.session, 'fact-bib')}", due_date=run_date + timedelta(days=10),
            description="Factuur bibliotheek", created_at=moment, sealed_at=moment,
        )
        self.session.add(reference)
        self.session.flush()
        for line in lines:
            line.payment_reference_id = reference.id
            self.session.add(PaymentReferenceLine(payment_reference_id=reference.id, debt_line_id=line.id,
                                                  transaction_code=line.transaction_code, amount=line.open_amount))
        return reference


    def online_order(self, user: EndUser, created: datetime, due: date) -> PaymentReference:
        """A room or material booking at the academy, to be paid online (POM) within the type's lifetime."""
        code = self.rng.choice(("ZAALHUUR", "MATERIAAL"))
        amount = self.amount(15, 120)
        line = DebtLine(financial_system_id=self.ska.id, end_user_id=user.id, transaction_code=code,
                        description=code.capitalize(), amount=amount, open_amount=amount, created_on=created.date())
        self.session.add(line)
        self.session.flush()
        number = reserve(self.session, "fp:SKA")
        reference = PaymentReference(
            loi=f"fp:SKA:{number}", financial_system_id=self.ska.id, type_id=self.type_online.id, end_user_id=user.id,
            status="sealed", amount=amount, open_amount=amount,
            reference_number=make_reference("OGM", "064", reserve(self.session, "ogm-online")),
            due_date=due, description=f"{code.capitalize()} Kunstacademie", created_at=created, sealed_at=created,
        )
        self.session.add(reference)
        self.session.flush()
        line.payment_reference_id = reference.id
        self.session.add(PaymentReferenceLine(payment_reference_id=reference.id, debt_line_id=line.id,
                                              transaction_code=code, amount=amount))
        return reference


def _month(day: date, months: int) -> date:
    return slot(day, "month", 1, months)


def load_demo(session: Session, run_date: date, *, bank_file_approval: bool = True) -> DemoInstitution:
    """Fill an empty schema with the demo institution, dated around ``run_date``.

    ``bank_file_approval=False``: its hubs release bank files without finance's approval (for runs nobody answers).
    """
    b = _Builder(session, run_date)
    b.metadata()
    if not bank_file_approval:
        for hub in (b.hub_bib, b.hub_ska, b.hub_broken):
            hub.approval_required = False
    users = b.users()
    rng = b.rng
    bib_patterns, ska_patterns = ("LIDGELD", "BOETE*"), ("INSCHRIJVING", "MATERIAAL")
    soon = run_date + timedelta(days=1)  # within every hub's lead time: due today
    later = run_date + timedelta(days=15)  # not yet due
    mandates = 0
    debts = 0
    pool = iter(users)

    def person() -> EndUser:
        return next(pool)

    def with_debt(user: EndUser, system: FinancialSystem, codes: tuple[str, ...], n: int = 2) -> None:
        nonlocal debts
        debts += len(b.debts(user, system, codes, n))

    # (count, hub, type, patterns, frequency, dates...) for mandates that are active-ok.
    plans = []
    for _ in range(70):  # monthly library mandates carried over from the old system: RCUR
        plans.append(("RCUR", b.hub_bib, b.type_bib, bib_patterns, b.monthly, soon, _month(soon, -1), None))
    for _ in range(40):  # new mandates, first collection now: FRST
        plans.append(("FRST", b.hub_bib, b.type_bib, bib_patterns, b.monthly, soon, None, None))
    for _ in range(25):  # school fees, yearly, collected last year: RCUR
        plans.append(("RCUR", b.hub_ska, b.type_ska, ska_patterns, b.yearly, soon, slot(soon, "year", 1, -1), None))
    for _ in range(20):  # school fees, monthly, ending before the next slot: FNAL
        plans.append(("FNAL", b.hub_ska, b.type_ska, ska_patterns, b.monthly, soon, _month(soon, -1), soon + timedelta(days=12)))
    for _ in range(15):  # first monthly school collection: FRST
        plans.append(("FRST", b.hub_ska, b.type_ska, ska_patterns, b.monthly, soon, None, None))
    for _ in range(25):  # school trips, one-off: OOFF
        plans.append(("OOFF", b.hub_ska, b.type_once, ("UITSTAP*",), None, soon, None, None))
    for _ in range(10):  # daily fines collection (a pilot): RCUR
        plans.append(("RCUR", b.hub_bib, b.type_bib, ("BOETE*",), b.daily, run_date - timedelta(days=30), run_date, None))
    for _ in range(40):  # not due yet
        plans.append(("later", b.hub_bib, b.type_bib, bib_patterns, b.monthly, later, _month(later, -1), None))
    for _ in range(15):  # due, but nothing to collect
        plans.append(("nodebt", b.hub_bib, b.type_bib, bib_patterns, b.monthly, soon, _month(soon, -1), None))
    for _ in range(10):  # ended: end date passed, still flagged active
        plans.append(("ended", b.hub_bib, b.type_bib, bib_patterns, b.monthly, _month(run_date, -12), _month(run_date, -2),
                      _month(run_date, -1)))

    for kind, hub, type_, patterns, frequency, first, last, end in plans:
        owner = person()
        debtor = owner if rng.random() < 0.7 else users[rng.randrange(len(users))]  # a parent pays for a child
        b.mandate(owner, debtor, hub, type_, patterns, frequency, first, last=last, end=end)
        mandates += 1
        if kind == "nodebt":
            continue
        if hub is b.hub_bib:
            with_debt(owner, b.bib, ("LIDGELD", "BOETE-LAAT", "BOETE-BESCHADIGD", "RESERVATIE"), rng.randrange(1, 4))
        elif type_ is b.type_once:
            with_debt(owner, b.ska, ("UITSTAP-BRUGGE", "UITSTAP-GENT"), 1)
        else:
            with_debt(owner, b.ska, ("INSCHRIJVING", "MATERIAAL"), rng.randrange(1, 3))

    # Active mandates with errors: each reason of the check at least five times.
    def broken(**kwargs) -> None:  # type: ignore[no-untyped-def]
        nonlocal mandates
        owner = person()
        defaults = {"debtor": owner, "hub": b.hub_bib, "type_": b.type_bib, "patterns": bib_patterns,
                    "frequency": b.monthly, "first": soon}
        defaults.update(kwargs)
        b.mandate(owner, defaults.pop("debtor"), defaults.pop("hub"), defaults.pop("type_"), defaults.pop("patterns"),
                  defaults.pop("frequency"), defaults.pop("first"), **defaults)
        with_debt(owner, b.bib, BIB_CODES, 2)
        mandates += 1

    for _ in range(5):
        good = str(b.iban())
        broken(iban=good[:-1] + str((int(good[-1]) + 1) % 10))  # one digit off: check digits fail
        broken(bic="KREDBEB")  # seven characters
        broken(signed=soon + timedelta(days=3))  # signed after the first collection
        broken(first=soon, end=soon - timedelta(days=10))  # first collection after the end date
        broken(hub=None)
        broken(hub=b.hub_broken)  # creditor identifier fails its check digits
        broken(debtor=None)
        broken(type_=None)
        broken(patterns=())
    # Inactive mandates: cancelled ones (fine) and abandoned drafts (with errors).
    for n in range(30):
        owner = person()
        b.mandate(owner, owner, b.hub_bib if n % 2 else b.hub_ska, b.type_bib if n % 2 else b.type_ska,
                  bib_patterns if n % 2 else ska_patterns, b.monthly, _month(run_date, -8), end=_month(run_date, -2),
                  active=False)
        mandates += 1
    for n in range(10):
        owner = person()
        b.mandate(owner, None if n % 2 else owner, b.hub_bib, b.type_bib, bib_patterns, b.monthly,
                  _month(run_date, 1), active=False, iban="BE00 0000 0000 0000" if n % 2 == 0 else None)
        mandates += 1
    # Patrons without a mandate who owe something: every other one got an invoice to pay by transfer.
    for n, user in enumerate(users[len(plans) + 45 + 40 :]):
        if rng.random() < 0.5:
            with_debt(user, b.bib, BIB_CODES, rng.randrange(1, 3))
            if n % 2 == 0:
                session.flush()
                b.invoice(user, run_date)
    # Bookings at the academy paid online: recent ones, some past the type's 7-day lifetime, some overdue.
    morning = datetime.combine(run_date, time(9), tzinfo=timezone.utc)
    for n, user in enumerate(users[:40]):
        if n < 28:
            b.online_order(user, morning - timedelta(days=2), run_date + timedelta(days=12))
        elif n < 34:
            b.online_order(user, morning - timedelta(days=9), run_date + timedelta(days=5))
        else:
            b.online_order(user, morning - timedelta(days=5), run_date - timedelta(days=1))
    session.flush()
    _mailing(session, b)
    return DemoInstitution(run_date, len(users), mandates, debts)


def _mailing(session: Session, b: _Builder) -> None:
    """The library's sales journal, and two customers whose records keep POM from mailing them (seed 003).

    One switched off "e-mail recipient" on her contact; one has a second
    e-mail contact on his work address (position 2) while the sales journal
    does not copy per address. The academy's direct-debit notices go by post.
    """
    session.add(SalesJournal(code="VERKOOP-BIB", name="Verkoopdagboek bibliotheek", copy_per_address=False,
                             payment_reference_type_id=b.type_invoice.id))
    b.type_ska.address_types = "thuis"
    owners = session.scalars(select(PaymentReference.end_user_id).where(PaymentReference.type_id == b.type_invoice.id)
                             .order_by(PaymentReference.id)).all()
    quiet = session.get(EndUser, owners[-1])
    working = session.get(EndUser, owners[-2])
    assert quiet is not None and working is not None
    for contact in quiet.contacts:
        contact.email_recipient = False
    work = Address(end_user_id=working.id, position=2, address_type="werk", street="Naamsestraat",
                   house_number="22", postal_code="3000", city="Leuven", copy_per_address=True)
    session.add(work)
    session.flush()
    session.add(Contact(end_user_id=working.id, address_id=work.id, kind="email",
                        value=f"{working.first_name}.werk{working.id}@example.be".lower().replace(" ", "")))
    session.flush()


def write_demo_statement(session: Session, folder: Path, statement_day: date) -> Path:
    """The library's bank statement after its direct-debit run: the batch credited, two returns, transfers.

    Full, partial and over-paid invoices, a transfer without a usable
    communication, a return (AM04) and a return that ends its mandate (MD01),
    and the bank's fee: every kind of line the control list knows.
    """
    hub = session.scalars(select(BankHub).where(BankHub.code == "KBC-BIB")).one()
    collections = session.execute(
        select(Collection.end_to_end_id, Collection.amount, Collection.sequence_type, CollectionRun.loi)
        .join(CollectionRun, CollectionRun.id == Collection.run_id)
        .where(CollectionRun.hub_id == hub.id)
        .order_by(Collection.id)
    ).all()
    invoices = session.execute(
        select(PaymentReference.reference_number, PaymentReference.open_amount, EndUser.first_name, EndUser.last_name)
        .join(EndUser, EndUser.id == PaymentReference.end_user_id)
        .where(PaymentReference.reference_number.like("063%"))
        .order_by(PaymentReference.id)
    ).all()
    rng = random.Random(SEED + 1)
    # The bank credits each payment block in one entry, as the file asked (batch booking): the FRST block with
    # a TxDtls per collection, the RCUR block as its total alone, named by the file's PmtInfId.
    first = [c for c in collections if c.sequence_type == "FRST"]
    recurring = [c for c in collections if c.sequence_type == "RCUR"]
    entries = [Entry(
        credit=True, booking_date=statement_day, bank_tx_code=SDD_COLLECTED, account_servicer_ref="KBC-SDD-0001",
        payment_info_id=f"{first[0].loi}/FRST",
        transactions=tuple(Tx(c.amount, end_to_end_id=c.end_to_end_id, account_servicer_ref=f"KBC-SDD-0001-{n}")
                           for n, c in enumerate(first, 1)),
    )]
    if recurring:
        entries.append(Entry(
            credit=True, booking_date=statement_day, bank_tx_code=SDD_COLLECTED, account_servicer_ref="KBC-SDD-0002",
            payment_info_id=f"{recurring[0].loi}/RCUR", transactions=tuple(Tx(c.amount) for c in recurring), details=False,
        ))
    later = statement_day + timedelta(days=1)
    for n, reason in enumerate(("AM04", "MD01")):
        e2e, amount, _seq, _run = first[n]
        entries.append(Entry(False, later, (Tx(amount, end_to_end_id=e2e, return_reason=reason,
                                                account_servicer_ref=f"KBC-RTR-{n}"),), bank_tx_code=SDD_RETURNED))

    def transfer(n: int, amount: Decimal, name: tuple[str | None, str], **tx: object) -> Entry:
        payer = " ".join(part for part in name if part)
        account = str(IBAN.generate("BE", rng.choice(BANK_CODES), f"{rng.randrange(10**7):07d}"))
        return Entry(True, later, (Tx(amount, counterparty_name=payer, counterparty_iban=account,
                                      account_servicer_ref=f"KBC-SCT-{n}", **tx),))  # type: ignore[arg-type]

    for n, (reference, open_amount, first, last) in enumerate(invoices[:12]):
        if n % 4 == 1:  # partly paid, the structured communication typed into the free text
            entries.append(transfer(n, (open_amount / 2).quantize(Decimal("0.01")), (first, last),
                                    unstructured=f"factuur {format_ogm(reference)}"))
        elif n % 4 == 2:  # over-paid, the twelve digits alone
            entries.append(transfer(n, open_amount + Decimal("5.00"), (first, last), unstructured=reference))
        else:
            entries.append(transfer(n, open_amount, (first, last), structured_reference=reference))
    # The payer's bank takes the first transfer back (a recall): its payment is undone, the invoice open again.
    reference, open_amount, first, last = invoices[0]
    entries.append(Entry(False, later, (Tx(open_amount, structured_reference=reference, account_servicer_ref="KBC-RVSL-0",
                                           counterparty_name=" ".join(p for p in (first, last) if p)),),
                         reversal=True, bank_tx_code=("PMNT", "RCDT", "RRTN")))
    entries.append(transfer(90, Decimal("25.00"), ("Noël", "Crèvecœur"), unstructured="lidgeld voor mijn dochter"))
    entries.append(transfer(91, Decimal("12.40"), ("Lotte", "Maes"), unstructured="+++063/0000/00099+++"))  # check digits wrong
    entries.append(Entry(False, later, (Tx(Decimal("7.50"), counterparty_name="KBC Bank", unstructured="Kosten SEPA-incasso",
                                           account_servicer_ref="KBC-FEE-1"),), bank_tx_code=("ACMT", "MDOP", "CHRG")))
    path = folder / f"KBC-BIB_{statement_day.isoformat()}.xml"
    write_camt053(
        path, account_iban=str(hub.creditor_iban), statement_id=f"{statement_day.year}-{statement_day.timetuple().tm_yday:03d}",
        electronic_seq=statement_day.timetuple().tm_yday, created_at=datetime.combine(later, time(6), tzinfo=timezone.utc),
        from_date=statement_day, to_date=later, opening_balance=Decimal("12345.67"), entries=entries,
        account_bic=hub.creditor_bic, owner_name=hub.creditor_name, message_id=f"KBC-{statement_day.isoformat()}",
    )
    return path
