"""E-mailing invoices through the POM simulator over HTTP (SQLite and PostgreSQL).

Each invoice once, as made, to seed 003's recipients; never twice, whatever dies in between.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from include.config import invoices_dir
from include.errors import InnenError
from include.finance.db import transaction
from include.finance.models import (
    Address,
    AuditLog,
    Contact,
    Invoice,
    PaymentReference,
    PaymentReferenceType,
    SalesJournal,
    SentDocument,
)
from include.finance.reference_numbers import display_reference
from include.invoices import mailing
from include.invoices.mailing import MailingIncomplete, MailingRefused, mail_invoices
from include.invoices.making import make_invoices
from include.pom.accounts import PomClients
from include.pom.client import PomAccount, PomClient, PomDocument, PomRecipient
from tests.factories import Institution, make_institution, make_reference, make_user
from tests.integration.pom_fixtures import *  # noqa: F403
from tests.integration.pom_fixtures import ACCOUNTS, SimApi, dag_named

NOW = datetime(2026, 12, 4, 2, 30, tzinfo=timezone.utc)
LATER = datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc)
DAY = date(2026, 12, 4)
BATCH = "VERKOOP-BIB-2026-12-04-1"


def _account(base_url: str, name: str = "prod", timeout: float = 2.0) -> PomAccount:
    data = ACCOUNTS[name]
    return PomAccount(
        name=name, base_url=base_url, env=data["env"], username=data["username"], password=data["password"],
        sender_id=data["sender_id"], sender_contract_number=data["sender_contract_number"],
        callback_secret=data["callback_secret"], timeout_seconds=timeout,
    )


def _clients(base_url: str, *, max_attempts: int = 4, timeout: float = 2.0) -> PomClients:
    """Account ``default`` (the sim's prod ``bib``) and ``tickets``; no waiting between retries."""
    accounts = {"default": _account(base_url, "prod", timeout), "tickets": _account(base_url, "tickets", timeout)}
    return PomClients(accounts, factory=lambda account: PomClient(
        account, max_attempts=max_attempts, sleep=lambda _: None, jitter=lambda: 0.0))


def _user(session: Any, first: str, email: str | None, *, off: str | None = None,
          later: tuple[str, bool] | None = None) -> Any:
    """A customer with a home address; ``email`` on it, ``off`` on it with e-mail recipient off, ``later`` on a
    second address (that address's copy-per-address flag given)."""
    user = make_user(session, first, "Peeters")
    home = Address(end_user_id=user.id, position=1, address_type="thuis", street="Bondgenotenlaan",
                   house_number="1", postal_code="3000", city="Leuven")
    session.add(home)
    session.flush()
    if email:
        session.add(Contact(end_user_id=user.id, address_id=home.id, kind="email", value=email))
    if off:
        session.add(Contact(end_user_id=user.id, address_id=home.id, kind="email", value=off, email_recipient=False))
    if later:
        work = Address(end_user_id=user.id, position=2, address_type="werk", street="Naamsestraat",
                       house_number="22", postal_code="3000", city="Leuven", copy_per_address=later[1])
        session.add(work)
        session.flush()
        session.add(Contact(end_user_id=user.id, address_id=work.id, kind="email", value=later[0]))
    session.flush()
    return user


def _reference(session: Any, inst: Institution, user: Any, number: int, amount: str = "20.50",
               type_: PaymentReferenceType | None = None) -> int:
    ref = make_reference(session, inst, user, (amount,), number=number)
    ref.invoice_number = f"{inst.system.code}-{number:06d}"
    ref.due_date = date(2026, 12, 24)
    if type_ is not None:
        ref.type_id = type_.id
    session.flush()
    return ref.id


def _setup(engine: Engine, *, journal_copies: bool = True) -> dict[str, int]:
    """Five customers of one institution, their invoices on the type with journal VERKOOP-BIB."""
    with transaction(engine) as session:
        inst = make_institution(session)
        inst.recurring.address_types = "thuis;emailonly"
        session.add(SalesJournal(code="VERKOOP-BIB", name="Verkoopdagboek bibliotheek",
                                 copy_per_address=journal_copies, payment_reference_type_id=inst.recurring.id))
        users = {
            "an": _user(session, "An", "an@example.be", off="an.off@example.be"),
            "bert": _user(session, "Bert", "bert@example.be", later=("bert.werk@example.be", True)),
            "chris": _user(session, "Chris", "chris@example.be", later=("chris.werk@example.be", False)),
            "dirk": _user(session, "Dirk", None),  # no e-mail contact: paper
            "els": _user(session, "Els", "els@example.be"),
        }
        return {key: _reference(session, inst, user, n) for n, (key, user) in enumerate(users.items(), start=1)}


def _documents(sim_api: SimApi) -> list[dict[str, Any]]:
    return sim_api.control("GET", "documents")["documents"]


def _sent(engine: Engine) -> list[SentDocument]:
    with transaction(engine, readonly=True) as session:
        rows = session.scalars(select(SentDocument).order_by(SentDocument.id)).all()
        session.expunge_all()
    return list(rows)


def _current(engine: Engine, ref_id: int) -> Invoice:
    with transaction(engine, readonly=True) as session:
        row = session.scalars(select(Invoice).where(Invoice.payment_reference_id == ref_id,
                                                    Invoice.withdrawn_at.is_(None))).one()
        session.expunge(row)
    return row


def _audits(engine: Engine) -> Counter[str]:
    with transaction(engine, readonly=True) as session:
        return Counter(session.scalars(select(AuditLog.action).where(AuditLog.entity == "sent_document")))


def _mail(engine: Engine, base_url: str, now: datetime = NOW, **options: Any) -> mailing.MailingRun:
    with _clients(base_url, **options) as clients:
        return mail_invoices(engine, clients, "test", now, day=DAY)


def test_each_email_invoice_goes_once_as_made_to_the_seed_003_recipients(engine: Engine, var_dir: Path,
                                                                        sim_api: SimApi, pom_sim: Any) -> None:
    refs = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    run = _mail(engine, pom_sim.base_url)
    assert run.journalled == [BATCH] and run.accepted == [BATCH]
    assert run.counts["journalled"] == 4 and run.counts["handed_to_pom"] == 4 and not run.problems

    documents = {d["document_id"]: d for d in _documents(sim_api)}
    assert sorted(documents) == ["BIB-000001", "BIB-000002", "BIB-000003", "BIB-000005"]  # Dirk's goes on paper
    recipients = {doc: [(r["name"], r["email"]) for r in d["recipients"]] for doc, d in documents.items()}
    assert recipients == {
        "BIB-000001": [("An Peeters", "an@example.be")],  # the contact with e-mail recipient off gets nothing
        "BIB-000002": [("Bert Peeters", "bert@example.be"), ("Bert Peeters", "bert.werk@example.be")],
        "BIB-000003": [("Chris Peeters", "chris@example.be")],  # later address without its copy flag
        "BIB-000005": [("Els Peeters", "els@example.be")],
    }
    with transaction(engine, readonly=True) as session:
        numbers = dict(session.execute(
            select(PaymentReference.invoice_number, PaymentReference.reference_number)).all())
    for key, ref_id in refs.items():
        invoice = _current(engine, ref_id)
        if key == "dirk":
            assert invoice.channel == "paper"
            continue
        assert invoice.channel == "email"
        sent = documents[invoice.document_id]
        pdf = base64.b64decode(sent["pdf"])
        assert pdf == (invoices_dir() / invoice.file_path).read_bytes()
        assert sent["sha256"] == hashlib.sha256(pdf).hexdigest() == invoice.sha256
        assert sent["communication"] == display_reference(numbers[invoice.document_id] or "")
        assert sent["batch"] == BATCH and sent["username"] == "bib"

    rows = _sent(engine)
    with transaction(engine, readonly=True) as session:
        invoices = {i.document_id: i for i in session.scalars(select(Invoice))}
        journal_id = session.scalar(select(SalesJournal.id))
    assert [r.document_id for r in rows] == ["BIB-000001", "BIB-000002", "BIB-000003", "BIB-000005"]
    for row in rows:
        invoice = invoices[row.document_id]
        assert (row.batch, row.invoice_id, row.pdf_sha256) == (BATCH, invoice.id, invoice.sha256)
        assert row.payment_reference_id == invoice.payment_reference_id and row.sales_journal_id == journal_id
        assert [tuple(r) for r in row.recipients or []] == recipients[row.document_id]
        assert row.accepted_at is not None and row.sent_at is not None
    assert _audits(engine) == {"batch_journalled": 1, "batch_accepted": 1}

    again = _mail(engine, pom_sim.base_url, LATER)
    assert again.journalled == [] and again.accepted == [] and not again.counts["handed_to_pom"]
    assert len(_documents(sim_api)) == 4 and len(_sent(engine)) == 4
    assert sim_api.hits("document-batches")["total"] == 1
    assert _audits(engine) == {"batch_journalled": 1, "batch_accepted": 1}


def test_an_invoice_nobody_is_to_receive_is_recorded_not_handed_over(engine: Engine, var_dir: Path,
                                                                     sim_api: SimApi, pom_sim: Any) -> None:
    refs = _setup(engine)
    with transaction(engine) as session:  # only An's invoice is made: a batch with nothing to hand over
        for ref in session.scalars(select(PaymentReference).where(PaymentReference.id != refs["an"])):
            ref.status = "draft"
    make_invoices(engine, "test", NOW, print_day=DAY)
    with transaction(engine) as session:  # made for e-mail, then An switched it off
        an = session.get(PaymentReference, refs["an"])
        assert an is not None
        for contact in session.scalars(select(Contact).where(Contact.end_user_id == an.end_user_id)):
            contact.email_recipient = False
    run = _mail(engine, pom_sim.base_url)
    assert run.accepted == [BATCH] and run.counts["no_recipient"] == 1 and run.counts["handed_to_pom"] == 0
    assert sim_api.hits("document-batches")["total"] == 0 and _documents(sim_api) == []
    (row,) = _sent(engine)
    assert row.recipients == [] and row.accepted_at is not None and row.document_id == "BIB-000001"
    assert _mail(engine, pom_sim.base_url, LATER).accepted == []


def test_a_lost_answer_leaves_the_batch_journalled_and_the_rerun_sends_nothing_twice(
    engine: Engine, var_dir: Path, sim_api: SimApi, pom_sim: Any
) -> None:
    _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    # POM takes the batch, but the answer never arrives, and this client does not try again: the task dies.
    sim_api.control("POST", "faults", {"path_contains": "document-batches", "kind": "timeout", "seconds": 1.5,
                                       "times": 1})
    with pytest.raises(MailingIncomplete, match=BATCH) as failed:
        _mail(engine, pom_sim.base_url, max_attempts=1, timeout=0.5)
    assert failed.value.run.journalled == [BATCH] and failed.value.run.accepted == []
    eventually(lambda: len(_documents(sim_api)) == 4 or None, timeout=15)  # POM did the work, answer or not
    rows = _sent(engine)
    assert len(rows) == 4 and all(r.accepted_at is None and r.batch == BATCH for r in rows)
    assert _audits(engine) == {"batch_journalled": 1}

    run = _mail(engine, pom_sim.base_url, LATER)
    assert run.journalled == [] and run.accepted == [BATCH] and run.counts["batches_resumed"] == 1
    assert len(_documents(sim_api)) == 4  # the same body again: POM answered 200, nothing sent twice
    hits = sim_api.hits("document-batches")
    assert hits["total"] == 2 and hits["statuses"].get("200") == 1  # the first (answer lost), then the replay
    rows = _sent(engine)
    assert len(rows) == 4 and all(r.accepted_at is not None for r in rows)
    assert _audits(engine) == {"batch_journalled": 1, "batch_accepted": 1}
    assert _mail(engine, pom_sim.base_url, LATER).accepted == []


def test_a_timeout_the_client_retries_sends_each_document_once(engine: Engine, var_dir: Path, sim_api: SimApi,
                                                               pom_sim: Any) -> None:
    _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    sim_api.control("POST", "faults", {"path_contains": "document-batches", "kind": "timeout", "seconds": 1.5,
                                       "times": 1})
    run = _mail(engine, pom_sim.base_url, timeout=0.5)
    assert run.accepted == [BATCH]
    assert len(_documents(sim_api)) == 4 and sim_api.hits("document-batches")["total"] == 2


def test_a_crash_before_the_second_transaction_is_finished_by_the_rerun(
    engine: Engine, var_dir: Path, sim_api: SimApi, pom_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    accept = mailing._accept

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("worker killed")

    monkeypatch.setattr(mailing, "_accept", crash)
    with pytest.raises(RuntimeError):
        _mail(engine, pom_sim.base_url)
    assert len(_documents(sim_api)) == 4
    assert all(r.accepted_at is None for r in _sent(engine)) and _audits(engine) == {"batch_journalled": 1}

    monkeypatch.setattr(mailing, "_accept", accept)
    run = _mail(engine, pom_sim.base_url, LATER)
    assert run.accepted == [BATCH] and run.journalled == []
    assert Counter(d["document_id"] for d in _documents(sim_api)) == {
        "BIB-000001": 1, "BIB-000002": 1, "BIB-000003": 1, "BIB-000005": 1}
    assert all(r.accepted_at is not None for r in _sent(engine)) and len(_sent(engine)) == 4


def test_pom_unreachable_keeps_the_journal_and_a_later_run_sends_it(engine: Engine, var_dir: Path,
                                                                    sim_api: SimApi, pom_sim: Any) -> None:
    _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    sim_api.control("POST", "faults", {"path_contains": "document-batches", "kind": "status", "status": 503,
                                       "times": None})
    with pytest.raises(MailingIncomplete, match="POM unavailable") as failed:
        _mail(engine, pom_sim.base_url, max_attempts=2)
    assert isinstance(failed.value, InnenError) and failed.value.run.counts["unavailable"] == 1
    assert _documents(sim_api) == [] and len(_sent(engine)) == 4
    sim_api.control("DELETE", "faults")
    assert _mail(engine, pom_sim.base_url, LATER).accepted == [BATCH]
    assert len(_documents(sim_api)) == 4 and {d["batch"] for d in _documents(sim_api)} == {BATCH}


def test_pom_refusing_a_batch_names_it(engine: Engine, var_dir: Path, sim_api: SimApi, pom_sim: Any) -> None:
    _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    with _clients(pom_sim.base_url) as clients:  # someone used our batch name for something else
        clients.client("default").send_batch(BATCH, [PomDocument("OTHER-1", (PomRecipient("X", "x@example.be"),))])
    with pytest.raises(MailingRefused, match=f"batch {BATCH}: refused by POM.*batch_exists"):
        _mail(engine, pom_sim.base_url)
    assert [d["document_id"] for d in _documents(sim_api)] == ["OTHER-1"]
    assert all(r.accepted_at is None for r in _sent(engine))


def test_an_invoice_file_that_changed_is_refused_by_name(engine: Engine, var_dir: Path, sim_api: SimApi,
                                                         pom_sim: Any) -> None:
    refs = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    bert = _current(engine, refs["bert"])
    path = invoices_dir() / bert.file_path
    original = path.read_bytes()
    path.write_bytes(original + b"\n% changed\n")
    with pytest.raises(MailingRefused, match=f"{path.name}.*no longer matches"):
        _mail(engine, pom_sim.base_url)
    assert sorted(d["document_id"] for d in _documents(sim_api)) == ["BIB-000001", "BIB-000003", "BIB-000005"]
    assert "BIB-000002" not in {r.document_id for r in _sent(engine)}  # not journalled: nothing stuck

    path.write_bytes(original)  # restored: it goes in the day's second batch
    run = _mail(engine, pom_sim.base_url, LATER)
    assert run.journalled == ["VERKOOP-BIB-2026-12-04-2"] and run.accepted == ["VERKOOP-BIB-2026-12-04-2"]
    assert len(_documents(sim_api)) == 4


def test_a_file_changed_after_journalling_is_refused_before_pom_sees_it(engine: Engine, var_dir: Path,
                                                                        sim_api: SimApi, pom_sim: Any) -> None:
    refs = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    sim_api.control("POST", "faults", {"path_contains": "document-batches", "kind": "status", "status": 503,
                                       "times": None})
    with pytest.raises(MailingIncomplete):
        _mail(engine, pom_sim.base_url, max_attempts=1)
    sim_api.control("DELETE", "faults")
    path = invoices_dir() / _current(engine, refs["els"]).file_path
    path.unlink()
    with pytest.raises(MailingRefused, match=f"batch {BATCH}: not sent: invoice file .*{path.name}"):
        _mail(engine, pom_sim.base_url, LATER)
    assert _documents(sim_api) == [] and all(r.accepted_at is None for r in _sent(engine))


def test_a_remade_invoice_is_mailed_again_under_its_new_document_id(engine: Engine, var_dir: Path,
                                                                    sim_api: SimApi, pom_sim: Any) -> None:
    refs = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    _mail(engine, pom_sim.base_url)
    with transaction(engine) as session:
        ref = session.get(PaymentReference, refs["an"])
        assert ref is not None
        ref.open_amount = Decimal("8.00")
    assert make_invoices(engine, "test", LATER, print_day=DAY).made == ["BIB-000001-2"]
    run = _mail(engine, pom_sim.base_url, LATER)
    assert run.journalled == run.accepted == ["VERKOOP-BIB-2026-12-04-2"] and run.counts["journalled"] == 1
    documents = _documents(sim_api)
    assert [d["document_id"] for d in documents] == ["BIB-000001", "BIB-000002", "BIB-000003", "BIB-000005",
                                                     "BIB-000001-2"]
    new = _current(engine, refs["an"])
    assert documents[-1]["sha256"] == new.sha256 and documents[-1]["batch"] == "VERKOOP-BIB-2026-12-04-2"
    assert [r.invoice_id for r in _sent(engine) if r.document_id == "BIB-000001-2"] == [new.id]


def test_an_invoice_no_longer_asking_its_amount_waits_for_the_invoice_run(engine: Engine, var_dir: Path,
                                                                          sim_api: SimApi, pom_sim: Any) -> None:
    refs = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    with transaction(engine) as session:
        ref = session.get(PaymentReference, refs["an"])
        assert ref is not None
        ref.open_amount = Decimal("8.00")  # partly paid meanwhile
    run = _mail(engine, pom_sim.base_url)
    assert run.counts["stale"] == 1 and run.counts["journalled"] == 3
    assert "BIB-000001" not in {d["document_id"] for d in _documents(sim_api)}


def test_a_document_id_sent_by_other_means_is_not_sent_again(engine: Engine, var_dir: Path, sim_api: SimApi,
                                                              pom_sim: Any) -> None:
    from include.pom.delivery_store import DocumentToSend, record_sent_documents

    refs = _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    with transaction(engine) as session:  # e-mailed by hand before (the old way: no invoice on the row)
        ref = session.get(PaymentReference, refs["els"])
        assert ref is not None
        record_sent_documents(session, "BIB-2026-12-03", [DocumentToSend("BIB-000005", ref.end_user_id, ref.id)],
                              "by hand", NOW)
    run = _mail(engine, pom_sim.base_url)
    assert run.counts["document_id_sent_before"] == 1 and run.counts["journalled"] == 3
    assert sorted(d["document_id"] for d in _documents(sim_api)) == ["BIB-000001", "BIB-000002", "BIB-000003"]
    assert "BIB-2026-12-03" not in run.accepted  # a batch recorded without invoices is never sent from here


def test_one_batch_per_sales_journal_each_through_its_type_s_account(engine: Engine, var_dir: Path,
                                                                     sim_api: SimApi, pom_sim: Any) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        inst.recurring.address_types = "emailonly"
        tickets = PaymentReferenceType(code="TICKETS", name="Tickets", reference_format="OGM",
                                       address_types="emailonly", pom_account="tickets")
        shop = PaymentReferenceType(code="SHOP", name="Shop", address_types="thuis;email")  # no journal
        session.add_all([tickets, shop])
        session.flush()
        session.add_all([
            SalesJournal(code="VERKOOP-BIB", name="Bibliotheek", payment_reference_type_id=inst.recurring.id),
            SalesJournal(code="VERKOOP-TICKETS", name="Tickets", payment_reference_type_id=tickets.id),
        ])
        first, second, third = (_user(session, n, f"{n.lower()}@example.be") for n in ("Fien", "Gust", "Hanne"))
        _reference(session, inst, first, 11)
        _reference(session, inst, second, 12, type_=tickets)
        _reference(session, inst, third, 13, type_=shop)
        _reference(session, inst, first, 14, type_=tickets)
    make_invoices(engine, "test", NOW, print_day=DAY)
    run = _mail(engine, pom_sim.base_url)
    assert sorted(run.accepted) == sorted(run.journalled) == [
        "SHOP-2026-12-04-1", "VERKOOP-BIB-2026-12-04-1", "VERKOOP-TICKETS-2026-12-04-1"]
    sent = {(d["batch"], d["document_id"], d["username"]) for d in _documents(sim_api)}
    assert sent == {
        ("VERKOOP-BIB-2026-12-04-1", "BIB-000011", "bib"),
        ("VERKOOP-TICKETS-2026-12-04-1", "BIB-000012", "tickets"),
        ("VERKOOP-TICKETS-2026-12-04-1", "BIB-000014", "tickets"),
        ("SHOP-2026-12-04-1", "BIB-000013", "bib"),  # channel both: paper and e-mail
    }
    with transaction(engine, readonly=True) as session:
        journals = dict(session.execute(select(SentDocument.document_id, SentDocument.sales_journal_id)).all())
        codes = dict(session.execute(select(SalesJournal.id, SalesJournal.code)).all())
    assert {doc: codes.get(j) if j else None for doc, j in journals.items()} == {
        "BIB-000011": "VERKOOP-BIB", "BIB-000012": "VERKOOP-TICKETS", "BIB-000014": "VERKOOP-TICKETS",
        "BIB-000013": None}
    assert mailing.mailing_accounts(engine) == set()


def test_a_journal_with_more_invoices_than_a_batch_holds_fills_several(engine: Engine, var_dir: Path,
                                                                       sim_api: SimApi, pom_sim: Any) -> None:
    _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    with _clients(pom_sim.base_url) as clients:
        run = mail_invoices(engine, clients, "test", NOW, day=DAY, batch_size=3)
    assert run.accepted == ["VERKOOP-BIB-2026-12-04-1", "VERKOOP-BIB-2026-12-04-2"]
    assert Counter(d["batch"] for d in _documents(sim_api)) == {"VERKOOP-BIB-2026-12-04-1": 3,
                                                                "VERKOOP-BIB-2026-12-04-2": 1}


# -- through Airflow ------------------------------------------------------------------------------


def test_invoice_mailing_dag(db_url: str, engine: Engine, var_dir: Path, airflow_db: None, sim_api: SimApi,
                             airflow_pom_connection: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INNEN_DB_URL", db_url)
    _setup(engine)
    make_invoices(engine, "test", NOW, print_day=DAY)
    dag = dag_named("invoice_mailing")
    run = dag.test(run_conf={"day": DAY.isoformat()})
    assert str(run.state).endswith("success"), {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert sorted(d["document_id"] for d in _documents(sim_api)) == ["BIB-000001", "BIB-000002", "BIB-000003",
                                                                     "BIB-000005"]
    rows = _sent(engine)
    assert {r.batch for r in rows} == {BATCH} and all(r.accepted_at is not None for r in rows)
    with transaction(engine, readonly=True) as session:
        actors = set(session.scalars(select(AuditLog.actor).where(AuditLog.entity == "sent_document")))
    assert all(a.startswith("airflow:invoice_mailing/") and a.endswith("/mail") for a in actors)

    again = dag.test(run_conf={"day": DAY.isoformat()})
    assert str(again.state).endswith("success")
    assert len(_documents(sim_api)) == 4 and len(_sent(engine)) == 4
    with transaction(engine, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(SentDocument).where(
            SentDocument.accepted_at.is_(None))) == 0


def test_an_address_on_two_contacts_of_a_customer_receives_the_invoice_once(engine: Engine, var_dir: Path,
                                                                            sim_api: SimApi, pom_sim: Any) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        inst.recurring.address_types = "thuis;emailonly"
        session.add(SalesJournal(code="VERKOOP-BIB", name="Verkoopdagboek bibliotheek", copy_per_address=True,
                                 payment_reference_type_id=inst.recurring.id))
        user = _user(session, "Fien", "fien@example.be", later=("Fien@Example.be ", True))
        _reference(session, inst, user, 1)
    make_invoices(engine, "test", NOW, print_day=DAY)
    _mail(engine, pom_sim.base_url)
    (document,) = _documents(sim_api)
    assert [r["email"] for r in document["recipients"]] == ["fien@example.be"]
    assert [[email for _name, email in row.recipients or []] for row in _sent(engine)] == [["fien@example.be"]]


def test_an_account_pom_refuses_keeps_its_batches_and_the_other_accounts_are_mailed(
        engine: Engine, var_dir: Path, sim_api: SimApi, pom_sim: Any) -> None:
    """Seed 000, 3: several POM accounts. One whose password changed at POM must not keep the others' invoices
    from going out; its batches stay journalled for the next run, and the run names them."""
    from dataclasses import replace

    with transaction(engine) as session:
        inst = make_institution(session)
        inst.recurring.address_types = "emailonly"
        tickets = PaymentReferenceType(code="TICKETS", name="Tickets", reference_format="OGM",
                                       address_types="emailonly", pom_account="tickets")
        session.add(tickets)
        session.flush()
        session.add_all([
            SalesJournal(code="VERKOOP-BIB", name="Bibliotheek", payment_reference_type_id=inst.recurring.id),
            SalesJournal(code="VERKOOP-TICKETS", name="Tickets", payment_reference_type_id=tickets.id),
        ])
        first, second = (_user(session, n, f"{n.lower()}@example.be") for n in ("Fien", "Gust"))
        _reference(session, inst, first, 11)
        _reference(session, inst, second, 12, type_=tickets)
    make_invoices(engine, "test", NOW, print_day=DAY)
    accounts = {"default": replace(_account(pom_sim.base_url, "prod"), password="changed-at-pom"),
                "tickets": _account(pom_sim.base_url, "tickets")}
    with PomClients(accounts, factory=lambda account: PomClient(account, max_attempts=2, sleep=lambda _: None)) as clients, \
            pytest.raises(MailingRefused, match="VERKOOP-BIB-2026-12-04-1.*credentials") as refused:
        mail_invoices(engine, clients, "test", NOW, day=DAY)
    assert refused.value.run.accepted == ["VERKOOP-TICKETS-2026-12-04-1"]
    assert {(d["batch"], d["username"]) for d in _documents(sim_api)} == {("VERKOOP-TICKETS-2026-12-04-1", "tickets")}
    assert {r.batch: r.accepted_at is not None for r in _sent(engine)} == {
        "VERKOOP-BIB-2026-12-04-1": False, "VERKOOP-TICKETS-2026-12-04-1": True}
    assert _mail(engine, pom_sim.base_url).accepted == ["VERKOOP-BIB-2026-12-04-1"]  # password fixed: sent
