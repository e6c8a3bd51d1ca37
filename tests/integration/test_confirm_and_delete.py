"""Confirming a run against the amount received (all or nothing) and deleting payment references."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from include.errors import InnenError
from include.finance.db import transaction
from include.finance.models import (
    AuditLog,
    Collection,
    CollectionRun,
    DebtLine,
    Payment,
    PaymentReference,
    PaymentReferenceType,
)
from include.finance.payments import Ledger
from include.finance.reference_deletion import delete_references
from include.sepa.collection_confirm import confirm_collection_run
from include.sepa.export import export_collection_run
from include.sepa.mandate_execution import execute_mandates
from tests.dag_bag import fresh_dag
from tests.factories import add_debt, make_institution, make_mandate, make_user

AMOUNTS = ("25.00", "17.50", "8.25")  # open total 50.75
ADMIN = frozenset({"finance-admin"})  # deleting needs the admin lock, which _admin_lock gives every type


def _admin_lock(engine) -> None:  # type: ignore[no-untyped-def]
    """The factory's types leave their admin lock empty, which lets nobody delete: give them one."""
    with transaction(engine) as session:
        for type_ in session.scalars(select(PaymentReferenceType)):
            type_.access_admin = "finance-admin"


@pytest.fixture
def run(engine, var_dir):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        inst = make_institution(session)
        for amount in AMOUNTS:
            owner = make_user(session)
            make_mandate(session, inst, owner, first=date(2026, 11, 21))
            add_debt(session, inst, owner, "LID", amount)
        execute_mandates(session, date(2026, 11, 20), "test")
        loi = session.scalars(select(CollectionRun.loi)).one()
    export_collection_run(loi, "test", engine=engine, outbox=var_dir / "outbox")
    return loi


def _confirm(engine, loi, amount, dry_run):  # type: ignore[no-untyped-def]
    with transaction(engine) as session:
        return confirm_collection_run(session, loi, amount, "finance:test", dry_run=dry_run)


def test_a_dry_run_reports_the_open_total_and_books_nothing(engine, run) -> None:
    result = _confirm(engine, run, "1.00", True)
    assert (result.open_total, result.difference, result.booked) == ("50.75", "-49.75", False)
    assert [c["amount"] for c in result.collections] == list(AMOUNTS)
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(Payment)).all() == []



def test_two_confirmations_of_one_run_at_once_book_it_once(engine, run) -> None:
    # Two people (or a person and a statement's import) confirm the run at the same moment: the second finds
    # it confirmed. On PostgreSQL the second waits for the ledger the first holds, then reads the run's status.
    import threading

    start, results = threading.Barrier(2, timeout=30), []

    def confirm() -> None:
        start.wait()
        results.append(_confirm(engine, run, "50.75", False))

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(result.booked for result in results) == [False, True], results
    (second,) = [result for result in results if not result.booked]
    assert second.message == f"{run} was confirmed before: nothing to book"
    with transaction(engine, readonly=True) as session:
        assert sorted(session.scalars(select(Payment.amount))) == sorted(Decimal(a) for a in AMOUNTS)
        assert session.scalars(select(CollectionRun.status)).one() == "confirmed"

def test_the_exact_amount_books_every_collection(engine, run) -> None:
    result = _confirm(engine, run, "50.75", False)
    assert result.booked and "3 collections" in result.message
    with transaction(engine, readonly=True) as session:
        assert set(session.scalars(select(Collection.status))) == {"paid"}
        assert set(session.scalars(select(PaymentReference.status))) == {"paid"}
        assert sorted(session.scalars(select(Payment.amount))) == sorted(Decimal(a) for a in AMOUNTS)
        assert set(session.scalars(select(Payment.source))) == {"collection_confirm"}
        assert session.scalars(select(CollectionRun.status)).one() == "confirmed"
        assert set(session.scalars(select(DebtLine.open_amount))) == {Decimal("0.00")}
        assert session.scalar(select(AuditLog.actor).where(AuditLog.action == "confirmed")) == "finance:test"
    again = _confirm(engine, run, "50.75", False)
    assert not again.booked and "confirmed before" in again.message


def test_a_different_amount_books_nothing_and_names_what_was_paid_otherwise(engine, run) -> None:
    with transaction(engine) as session:
        ledger = Ledger(session, "cash desk", __import__("datetime").datetime.now())
        ref_id = session.scalars(select(PaymentReference.id).order_by(PaymentReference.id)).first()
        ledger.pay(ledger.load([ref_id])[ref_id], Decimal("5.00"), source="manual", note="paid at the desk")
        ledger.flush()
    result = _confirm(engine, run, "50.75", False)
    assert not result.booked and result.open_total == "45.75" and result.difference == "5.00"
    assert "already paid some other way: 5.00 of 25.00" in result.collections[0]["note"]
    with transaction(engine, readonly=True) as session:
        assert len(session.scalars(select(Payment)).all()) == 1
        assert set(session.scalars(select(Collection.status))) == {"exported"}


def test_only_an_exported_run_can_be_confirmed(engine) -> None:
    with transaction(engine) as session:
        inst = make_institution(session)
        owner = make_user(session)
        make_mandate(session, inst, owner, first=date(2026, 11, 21))
        add_debt(session, inst, owner, "LID", "10.00")
        execute_mandates(session, date(2026, 11, 20), "test")
        loi = session.scalars(select(CollectionRun.loi)).one()
    with pytest.raises(InnenError, match="only an exported run"):
        _confirm(engine, loi, "10.00", False)


def test_deleting_a_run_frees_its_debt_and_refuses_paid_references(engine, run) -> None:
    with transaction(engine) as session:
        paid_id = session.scalars(select(PaymentReference.id).order_by(PaymentReference.id)).first()
        partly_id = session.scalars(select(PaymentReference.id).order_by(PaymentReference.id.desc())).first()
        ledger = Ledger(session, "cash desk", __import__("datetime").datetime.now())
        refs = ledger.load([paid_id, partly_id])
        ledger.pay(refs[paid_id], refs[paid_id].open_amount, source="manual")
        ledger.pay(refs[partly_id], Decimal("1.00"), source="manual")
        ledger.flush()
    _admin_lock(engine)
    with transaction(engine) as session:
        dry = delete_references(session, "finance:test", roles=ADMIN, run_loi=run, dry_run=True)
    assert len(dry.deleted) == 2 and dry.refused[0]["reason"].startswith("paid")
    with transaction(engine, readonly=True) as session:
        assert "deleted" not in set(session.scalars(select(PaymentReference.status)))
    with transaction(engine) as session:
        result = delete_references(session, "finance:test", roles=ADMIN, run_loi=run, dry_run=False)
    assert len(result.deleted) == 2 and result.runs_deleted == []  # the paid one keeps the run alive
    with transaction(engine, readonly=True) as session:
        statuses = dict(session.execute(select(PaymentReference.id, PaymentReference.status)).all())
        assert statuses[paid_id] == "paid" and statuses[partly_id] == "deleted"
        held = session.scalars(select(DebtLine.payment_reference_id).where(DebtLine.payment_reference_id.is_not(None))).all()
        assert held == [paid_id]
        assert len(session.scalars(select(Payment)).all()) == 2, "payments stay"
        assert sorted(session.scalars(select(Collection.status))) == ["cancelled", "cancelled", "exported"]
    # The freed debt is collected again by the next execution, FRST again.
    with transaction(engine) as session:
        again = execute_mandates(session, date(2026, 11, 27), "test")
    assert again.by_sequence_type == {"FRST": 2}


def test_deleting_named_references(engine, run) -> None:
    _admin_lock(engine)
    with transaction(engine) as session:
        lois = session.scalars(select(PaymentReference.loi).order_by(PaymentReference.id)).all()
        result = delete_references(session, "finance:test", roles=ADMIN, reference_lois=[lois[0], "fp:BIB:999"],
                                   dry_run=False)
    assert result.deleted == [lois[0]] and result.refused == [{"reference": "fp:BIB:999", "reason": "does not exist"}]
    with pytest.raises(InnenError):
        with transaction(engine) as session:
            delete_references(session, "finance:test", roles=ADMIN)


def test_references_none_of_which_exists_are_refused(engine, run) -> None:
    """A typo in every reference named: the run succeeded ("0 deleted, 1 refused") having done nothing asked."""
    _admin_lock(engine)
    for dry_run in (True, False):
        with pytest.raises(InnenError, match=r"^none of the payment references named exists: fp:BIB:999, fp:BIB:998$"):
            with transaction(engine) as session:
                delete_references(session, "finance:test", roles=ADMIN, reference_lois=["fp:BIB:999", "fp:BIB:998"],
                                  dry_run=dry_run)


def test_a_run_and_references_named_together_are_refused(engine, run) -> None:
    """Both given, the run's references were deleted and every named one outside the run was reported as
    'does not exist', though it does: what the person meant cannot be told, so nothing is deleted."""
    _admin_lock(engine)
    with transaction(engine) as session:
        lois = session.scalars(select(PaymentReference.loi).order_by(PaymentReference.id)).all()
    with pytest.raises(InnenError, match=rf"^give a collection run or payment references, not both "
                                         rf"\(collection run {run}, references {lois[0]}\)$"):
        with transaction(engine) as session:
            delete_references(session, "finance:test", roles=ADMIN, run_loi=run, reference_lois=[lois[0]],
                              dry_run=False)
    with transaction(engine, readonly=True) as session:
        assert set(session.scalars(select(PaymentReference.status))) == {"sealed"}


def test_deleting_needs_the_admin_lock_of_every_reference_it_would_delete(engine, run) -> None:
    from include.finance.access import AccessRefused

    with transaction(engine, readonly=True) as session:
        rows = session.execute(select(PaymentReference.id, PaymentReference.loi).order_by(PaymentReference.id)).all()
    ids, lois = [ref_id for ref_id, _ in rows], [loi for _, loi in rows]

    def statuses() -> list[str]:
        with transaction(engine, readonly=True) as session:
            return [session.get(PaymentReference, ref_id).status for ref_id in ids]

    # The factory's types leave their admin lock empty: nobody may delete, whatever their roles.
    with pytest.raises(AccessRefused) as refused, transaction(engine) as session:
        delete_references(session, "finance:test", roles={"finance-admin", "admin"}, run_loi=run, dry_run=False)
    assert str(refused.value) == "nothing deleted: " + "; ".join(
        f"{loi} (type DOM-BIB): deleting needs the admin lock (accadmin), which type DOM-BIB leaves empty: nobody may "
        "break its references" for loi in lois)

    _admin_lock(engine)
    with transaction(engine) as session:  # one reference of the run of a type the academy's admins break
        once = session.scalars(select(PaymentReferenceType).where(PaymentReferenceType.code == "ONCE-BIB")).one()
        once.access_admin = "academy-admin"
        session.get(PaymentReference, ids[1]).type_id = once.id
    lock = (f"{lois[1]} (type ONCE-BIB): deleting needs the admin lock 'academy-admin' (accadmin), which none of your "
            "roles (finance-admin) is")
    # A dry run fails for no lock: it says which reference the real run is refused for, and that it would delete none.
    with transaction(engine) as session:
        dry = delete_references(session, "finance:test", roles=ADMIN, run_loi=run, dry_run=True)
    assert (dry.deleted, dry.refused, dry.locked) == ([lois[0], lois[2]], [{"reference": lois[1], "reason": lock}],
                                                      [lock])
    assert dry.message == ("dry run: 2 to delete, 1 refused; 1 of them for an access lock, so the real run would "
                           "delete nothing (one reference refused by its lock refuses the whole deletion)")
    # The real run: all or nothing, by collection run as by references named.
    with pytest.raises(AccessRefused) as refused, transaction(engine) as session:
        delete_references(session, "finance:test", roles=ADMIN, run_loi=run, dry_run=False)
    assert str(refused.value) == f"nothing deleted: {lock}"
    with pytest.raises(AccessRefused) as refused, transaction(engine) as session:
        delete_references(session, "finance:test", roles=ADMIN, reference_lois=list(lois), dry_run=False)
    assert str(refused.value) == f"nothing deleted: {lock}"
    assert statuses() == ["sealed", "sealed", "sealed"]
    with transaction(engine, readonly=True) as session:
        assert set(session.scalars(select(Collection.status))) == {"exported"}

    # A paid reference is not deleted anyway: its lock is not asked.
    with transaction(engine) as session:
        ledger = Ledger(session, "cash desk", datetime(2026, 11, 24, tzinfo=timezone.utc))
        ref = ledger.load([ids[1]])[ids[1]]
        ledger.pay(ref, ref.open_amount, source="manual")
        ledger.flush()
    with transaction(engine) as session:
        result = delete_references(session, "finance:test", roles=ADMIN, run_loi=run, dry_run=False)
    assert result.deleted == [lois[0], lois[2]] and [r["reference"] for r in result.refused] == [lois[1]]
    assert result.refused[0]["reason"].startswith("paid") and result.locked == []
    assert statuses() == ["deleted", "paid", "deleted"]


# -- the DAG collection_confirm: dry run, question, answer (without dag.test(), which would wait for a person) ------


CONFIRM_DAG = Path(__file__).resolve().parents[2] / "dags"
AT = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def confirm_dag():  # type: ignore[no-untyped-def]
    """Parsed afresh for each test: rendering templates and answering change the operators in place."""
    return fresh_dag("collection_confirm")


@pytest.fixture
def app(db_url: str, run: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The exported run of ``run``, in the database the DAG's tasks use."""
    monkeypatch.setenv("INNEN_DB_URL", db_url)
    return run


def _ti(task_id: str, xcoms: dict | None = None) -> SimpleNamespace:
    """A task instance as the tasks see it: ``xcom_pull`` gives ``xcoms`` by task id; pushes are kept."""
    pushed: dict = {}
    return SimpleNamespace(dag_id="collection_confirm", run_id="manual__test", task_id=task_id, id="ti-1",
                           pushed=pushed, xcom_pull=lambda task_ids: (xcoms or {}).get(task_ids),
                           xcom_push=lambda key, value: pushed.__setitem__(key, value))


def _context(loi: str, ti: SimpleNamespace, amount: str | None = None) -> dict:
    return {"params": {"collection_run": loi, "received_amount": amount}, "ti": ti, "task_instance": ti,
            "dag_run": SimpleNamespace(triggering_user_name="alice")}


def _work(dag, name: str):  # type: ignore[no-untyped-def]
    task_id = {"preview_run": "preview", "book_decision": "book"}[name]
    return dag.get_task(task_id).python_callable.__globals__[name]


def _answer(dag, option: str, amount: str | None, name: str = "fiona") -> dict:  # type: ignore[no-untyped-def]
    """What the decide task returns once answered (the event Airflow resumes it with, validated by the operator)."""
    return dag.get_task("decide").execute_complete({}, {
        "chosen_options": [option], "params_input": {"received_amount": amount},
        "responded_by_user": {"id": "3", "name": name}, "responded_at": AT})


def _preview(dag, loi: str, amount: str | None) -> dict:  # type: ignore[no-untyped-def]
    return _work(dag, "preview_run")(_context(loi, _ti("preview"), amount))


def _book(dag, loi: str, shown: dict, answer: dict | None):  # type: ignore[no-untyped-def]
    ti = _ti("book", {"preview": shown, "decide": answer})
    return _work(dag, "book_decision")(_context(loi, ti, shown.get("amount_given"))), ti


def _run_audit(engine) -> list[tuple[str, str, dict]]:  # type: ignore[no-untyped-def]
    """The run's audit rows of a decision (its creation and export have theirs too)."""
    with transaction(engine, readonly=True) as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(AuditLog.action, AuditLog.actor, AuditLog.after)
            .where(AuditLog.entity == "collection_run", AuditLog.action.in_(("confirmed", "confirmation_aborted")))
            .order_by(AuditLog.id))]


def test_the_dag_asks_once_with_the_forms_amount(confirm_dag) -> None:
    from airflow.providers.standard.operators.hitl import HITLOperator

    from include.sepa.collection_confirm import AMOUNT_PATTERN

    assert set(confirm_dag.params) == {"collection_run", "received_amount"}  # no dry_run: the run always shows one
    assert confirm_dag.params.get_param("received_amount").schema["pattern"] == AMOUNT_PATTERN
    assert [t.task_id for t in confirm_dag.topological_sort()] == ["preview", "decide", "book"]
    decide = confirm_dag.get_task("decide")
    assert isinstance(decide, HITLOperator)
    assert decide.options == ["Confirm", "Abort"] and decide.defaults is None and not decide.multiple
    assert decide.response_timeout is None and decide.execution_timeout is None
    assert list(decide.params) == ["received_amount"]
    assert decide.params.get_param("received_amount").schema["pattern"] == AMOUNT_PATTERN


def test_the_question_shows_the_dry_run_and_prefills_the_amount(confirm_dag, app: str, engine, var_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.standard.operators import hitl
    from airflow.sdk.exceptions import TaskAwaitingInput

    shown = _preview(confirm_dag, app, "1.00")
    assert (shown["received"], shown["open_total"], shown["difference"]) == ("1.00", "50.75", "-49.75")
    assert not shown["booked"]
    assert shown["report"] == str(var_dir / "reports" / "collection_confirm" / app.replace(":", "-") / "dry-run.html")
    assert Path(shown["report"]).exists() and shown["amount_given"] == "1.00"
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(Payment)).all() == []

    # The subject and body are Jinja templates on the preview's XCom, rendered as Airflow renders them.
    decide = confirm_dag.get_task("decide")
    ti = _ti("decide", {"preview": shown})
    context = _context(app, ti, "1.00")
    decide.render_template_fields(context)
    assert decide.subject == f"Confirm collection run {app}?"
    assert decide.body == shown["summary"] and "Open total: **50.75**" in decide.body
    assert "&gt;" not in decide.body and "&#" not in decide.body  # not HTML-escaped: it is Markdown

    # What the task writes for the UI before it parks: the rendered question, the form prefilled with the amount given.
    written: dict = {}
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kwargs: written.update(kwargs))
    with pytest.raises(TaskAwaitingInput):
        decide.execute(context)
    assert written["subject"] == f"Confirm collection run {app}?" and written["body"] == shown["summary"]
    assert written["options"] == ["Confirm", "Abort"] and written["defaults"] is None
    assert written["params"]["received_amount"]["value"] == "1.00"


def test_without_an_amount_the_form_is_empty(confirm_dag, app: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.standard.operators import hitl
    from airflow.sdk.exceptions import TaskAwaitingInput

    shown = _preview(confirm_dag, app, None)
    assert (shown["received"], shown["amount_given"]) == ("0.00", None) and "none given" in shown["summary"]
    written: dict = {}
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kwargs: written.update(kwargs))
    with pytest.raises(TaskAwaitingInput):
        confirm_dag.get_task("decide").execute(_context(app, _ti("decide", {"preview": shown})))
    assert written["params"]["received_amount"]["value"] is None


def test_the_operator_refuses_what_the_form_would_not_take(confirm_dag) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    answer = _answer(confirm_dag, "Confirm", "50.75")
    assert answer["chosen_options"] == ["Confirm"] and answer["params_input"] == {"received_amount": "50.75"}
    assert answer["responded_by_user"] == {"id": "3", "name": "fiona"} and answer["responded_at"] == AT
    with pytest.raises(ParamValidationError):
        _answer(confirm_dag, "Confirm", "50,75")
    with pytest.raises(ValueError, match="not in"):
        _answer(confirm_dag, "Maybe", "50.75")


def test_confirm_books_the_amount_entered_and_audits_who_decided(confirm_dag, app: str, engine) -> None:
    shown = _preview(confirm_dag, app, "1.00")  # the amount given at the trigger is wrong; finance corrects it
    result, ti = _book(confirm_dag, app, shown, _answer(confirm_dag, "Confirm", "50.75"))
    assert result["booked"] and result["received"] == "50.75" and result["confirmed_by"] == "fiona"
    assert result["report"].endswith("booked.html") and "confirmed by" in Path(result["report"]).read_text()
    assert ti.pushed == {}
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(CollectionRun.status)).one() == "confirmed"
        assert sorted(session.scalars(select(Payment.amount))) == sorted(Decimal(a) for a in AMOUNTS)
        actors = set(session.scalars(select(AuditLog.actor).where(AuditLog.entity == "collection",
                                                                  AuditLog.action == "paid")))
    ((action, actor, after),) = _run_audit(engine)
    assert action == "confirmed" and actors == {actor}
    assert actor == "airflow:collection_confirm/manual__test/book by alice confirmed by fiona"
    assert after["received"] == "50.75" and after["decided_by"] == "fiona" and after["decided_at"] == AT.isoformat()
    assert after["shown"] == {"received": "1.00", "open_total": "50.75", "difference": "-49.75",
                              "report": shown["report"]}


def test_confirm_with_another_amount_books_nothing_and_fails(confirm_dag, app: str, engine) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    shown = _preview(confirm_dag, app, "50.75")  # the dry run agreed; the amount entered in the form does not
    ti = _ti("book", {"preview": shown, "decide": _answer(confirm_dag, "Confirm", "50.00")})
    with pytest.raises(AirflowFailException, match=r"nothing booked: received 50.00 .* open total is 50\.75"):
        _work(confirm_dag, "book_decision")(_context(app, ti, "50.75"))
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(Payment)).all() == []
        assert session.scalars(select(CollectionRun.status)).one() == "exported"
    assert _run_audit(engine) == []
    # A failed task returns nothing: the result is pushed by hand so the Reports tab finds the refused report.
    refused = ti.pushed["return_value"]
    assert refused["report"].endswith("refused.html") and Path(refused["report"]).exists()
    assert not refused["booked"] and refused["confirmed_by"] == "fiona"


def test_abort_books_nothing_and_audits_who_aborted(confirm_dag, app: str, engine) -> None:
    shown = _preview(confirm_dag, app, "50.75")
    result, _ = _book(confirm_dag, app, shown, _answer(confirm_dag, "Abort", "50.75", name="gert"))
    assert result == {"run": app, "decision": "abort", "aborted_by": "gert", "responded_at": AT.isoformat(),
                      "booked": False, "report": shown["report"]}
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(Payment)).all() == []
        assert session.scalars(select(CollectionRun.status)).one() == "exported"
    ((action, actor, after),) = _run_audit(engine)
    assert action == "confirmation_aborted"
    assert actor == "airflow:collection_confirm/manual__test/book by alice aborted by gert"
    assert after["received"] == "50.75" and after["aborted_by"] == "gert" and after["decided_at"] == AT.isoformat()
    assert after["shown"]["report"] == shown["report"] and after["shown"]["open_total"] == "50.75"


@pytest.mark.parametrize("answer", [None, {"chosen_options": ["Confirm"], "params_input": {"received_amount": None},
                                           "responded_by_user": {"id": "3", "name": "fiona"}, "responded_at": AT}])
def test_an_unclear_answer_books_nothing_and_fails(confirm_dag, app: str, engine, answer: dict | None) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    shown = _preview(confirm_dag, app, None)
    with pytest.raises(AirflowFailException, match="nothing booked for"):
        _book(confirm_dag, app, shown, answer)
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(Payment)).all() == []
    assert _run_audit(engine) == []


def test_confirming_a_run_not_exported_fails_without_retry(confirm_dag, app: str, engine) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    shown = _preview(confirm_dag, app, "50.75")
    with transaction(engine) as session:
        session.scalars(select(CollectionRun)).one().status = "failed"
    with pytest.raises(AirflowFailException, match="only an exported run"):
        _book(confirm_dag, app, shown, _answer(confirm_dag, "Confirm", "50.75"))


def test_previewing_a_run_that_does_not_exist_fails_without_retry(confirm_dag, app: str) -> None:
    """It was an InnenError, retried a minute later."""
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"^nothing to confirm: collection run fj:BIB:999 does not exist$"):
        _preview(confirm_dag, " fj:BIB:999 ", None)
