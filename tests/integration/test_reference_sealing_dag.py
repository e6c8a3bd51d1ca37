"""The DAG payment_reference_seal: seal and unseal by hand, by the type's access locks (seed 2.3.1, 2.5.2).

Each test runs on SQLite and on PostgreSQL. The runs are ``dag.test()`` runs, which no person triggers
(their user is ``dag_test``): the roles a test wants are put in place of the DAG's role source
(``include.airflow_roles.run_roles``); the refusal messages are read by calling the task's work,
``seal_or_unseal``, with a role source as its argument.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from include import airflow_roles
from include.finance.db import transaction
from include.finance.models import (
    AuditLog,
    Collection,
    CollectionRun,
    EndUser,
    Invoice,
    PaymentReference,
    PaymentReferenceType,
)
from include.finance.payments import Ledger
from tests.dag_bag import parsed_dag
from tests.factories import add_debt, make_mandate, make_user
from tests.integration.test_sealing import NOW, Books, _create, _ref, books  # noqa: F401  (books: the fixture)

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "payment_reference_seal.py"
# DOM-BIB: read "viewer", write "finance", admin "finance-admin"; ONCE-BIB: write "academy", no admin lock.
LOCKED, ACADEMY = "DOM-BIB", "ONCE-BIB"


@pytest.fixture
def locked(books: Books, engine, db_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
           airflow_db: None) -> Books:
    monkeypatch.setenv("INNEN_DB_URL", db_url)
    with transaction(engine) as session:
        types = {t.code: t for t in session.scalars(select(PaymentReferenceType))}
        types[LOCKED].access_read, types[LOCKED].access_write, types[LOCKED].access_admin = (
            "viewer", "finance", "finance-admin")
        types[ACADEMY].access_write = "academy"
    return books


def _dag():  # type: ignore[no-untyped-def]
    return parsed_dag("payment_reference_seal")


def _as(monkeypatch: pytest.MonkeyPatch, user: str | None, *roles: str) -> None:
    """The runs that follow are triggered by ``user`` holding ``roles``."""
    monkeypatch.setattr(airflow_roles, "run_roles", lambda context: (user, frozenset(roles)))


def _run(action: str, *lois: str) -> dict[str, str]:
    run = _dag().test(run_conf={"references": list(lois), "action": action})
    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1] for ti in run.get_task_instances()}
    tries = [ti.try_number for ti in run.get_task_instances() if ti.task_id == "apply"]
    assert str(run.state).endswith("failed" if states["apply"] == "failed" else "success"), states
    if states["apply"] == "failed":
        assert tries == [1], "a refusal is not retried"
    return states


def _refusal(action: str, lois: list[str], user: str | None, *roles: str) -> str:
    """The message the task fails with (the task's work called with a role source)."""
    from airflow.sdk.exceptions import AirflowFailException

    work = _dag().get_task("apply").python_callable.__globals__["seal_or_unseal"]
    context = {
        "params": {"action": action, "references": lois},
        "ti": SimpleNamespace(dag_id="payment_reference_seal", run_id="manual__test", task_id="apply"),
        "dag_run": SimpleNamespace(triggering_user_name=user),
    }
    with pytest.raises(AirflowFailException) as refused:
        work(context, lambda _: (user, frozenset(roles)))
    return str(refused.value)


def _statuses(engine, *ids: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [_ref(engine, ref_id).status for ref_id in ids]


def _actions(engine, ref_id: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return [tuple(row) for row in session.execute(  # type: ignore[misc]
            select(AuditLog.action, AuditLog.actor).where(AuditLog.entity == "payment_reference",
                                                          AuditLog.entity_id == ref_id).order_by(AuditLog.id))]


def test_sealing_needs_the_write_lock_and_unsealing_the_admin_lock(engine, locked: Books,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _create(engine, locked, debt_line_ids=[locked.lines["lid"]])  # a draft of DOM-BIB
    _as(monkeypatch, "fiona", "finance")
    assert _run("seal", ref.loi) == {"apply": "success", "cancel_pom_requests": "success",
                                     "direct_invoice": "skipped"}  # DOM-BIB prints nightly
    assert _statuses(engine, ref.id) == ["sealed"]
    action, actor = _actions(engine, ref.id)[-1]
    assert action == "sealed" and actor.startswith("airflow:payment_reference_seal/")
    assert actor.endswith("/apply by dag_test")  # the user the run names

    # Breaking the seal: the write lock is not enough, and nothing changes.
    assert _run("unseal", ref.loi)["apply"] == "failed"
    assert _statuses(engine, ref.id) == ["sealed"]
    assert _refusal("unseal", [ref.loi], "fiona", "finance") == (
        f"refused: nothing unsealed: {ref.loi} (type DOM-BIB): unsealing needs the admin lock 'finance-admin' "
        "(accadmin), which none of your roles (finance) is"
    )
    assert _refusal("unseal", [ref.loi], "fiona").endswith("(accadmin), and you have no roles")

    _as(monkeypatch, "greta", "finance-admin")  # admin gives write and read
    assert _run("unseal", ref.loi) == {"apply": "success", "cancel_pom_requests": "success",
                                       "direct_invoice": "skipped"}
    assert _statuses(engine, ref.id) == ["draft"]
    assert [a for a, _ in _actions(engine, ref.id)] == ["created", "sealed", "unsealed"]
    # A draft unsealed again changes nothing and needs only the write lock.
    _as(monkeypatch, "fiona", "finance")
    assert _run("unseal", ref.loi)["apply"] == "success"
    assert _run("seal", ref.loi)["apply"] == "success" and _statuses(engine, ref.id) == ["sealed"]


def test_one_refusal_refuses_them_all_and_the_message_lists_every_one(engine, locked: Books,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _create(engine, locked, debt_line_ids=[locked.lines["lid"]])
    academy = _create(engine, locked, debt_line_ids=[locked.lines["boete_laat"]], type_code=ACADEMY)
    also = _create(engine, locked, debt_line_ids=[locked.lines["boete_schade"]], type_code=ACADEMY)
    _as(monkeypatch, "fiona", "finance", "viewer")
    assert _run("seal", mine.loi, academy.loi, also.loi)["apply"] == "failed"
    assert _statuses(engine, mine.id, academy.id, also.id) == ["draft", "draft", "draft"]
    message = _refusal("seal", [mine.loi, f"{academy.loi}, {also.loi}"], "fiona", "finance", "viewer")
    assert message == (
        f"refused: nothing sealed: {academy.loi} (type ONCE-BIB): sealing needs the write lock 'academy' (accwrite), "
        f"which none of your roles (finance, viewer) is; {also.loi} (type ONCE-BIB): sealing needs the write lock "
        "'academy' (accwrite), which none of your roles (finance, viewer) is"
    )
    # An unknown reference is named; nothing is sealed either.
    assert _refusal("seal", [mine.loi, "fp:BIB:999"], "fiona", "finance") == (
        "refused: payment reference fp:BIB:999 does not exist")
    _as(monkeypatch, "hilde", "finance", "academy")
    assert _run("seal", mine.loi, academy.loi, also.loi)["apply"] == "success"
    assert _statuses(engine, mine.id, academy.id, also.id) == ["sealed", "sealed", "sealed"]
    # ONCE-BIB's admin lock is empty: nobody may unseal its references, whatever their roles.
    assert _refusal("unseal", [academy.loi], "hilde", "academy", "finance-admin", "admin") == (
        f"refused: nothing unsealed: {academy.loi} (type ONCE-BIB): unsealing needs the admin lock (accadmin), which "
        "type ONCE-BIB leaves empty: nobody may break its references"
    )


def test_a_run_no_person_triggered_holds_no_roles(engine, locked: Books, monkeypatch: pytest.MonkeyPatch) -> None:
    # Even were dag_test a configured user holding the write lock's role, it would be nobody.
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "dag_test:finance,admin:admin")
    ref = _create(engine, locked, debt_line_ids=[locked.lines["lid"]])
    # The DAG's own role source: dag.test() names the user dag_test, which is nobody.
    assert _run("seal", ref.loi)["apply"] == "failed"
    assert _statuses(engine, ref.id) == ["draft"]
    assert _refusal("seal", [ref.loi], None) == (
        "refused: nothing sealed (no person triggered this run — a schedule, an asset or dag.test — so it holds no "
        f"roles): {ref.loi} (type DOM-BIB): sealing needs the write lock 'finance' (accwrite) or the admin lock "
        "'finance-admin' (accadmin), and you have no roles"
    )
    # A type without a write or read lock may be sealed by anyone, a run nobody triggered too.
    with transaction(engine) as session:
        academy = session.scalars(select(PaymentReferenceType).where(PaymentReferenceType.code == ACADEMY)).one()
        academy.access_write = None
    open_ = _create(engine, locked, debt_line_ids=[locked.lines["boete_laat"]], type_code=ACADEMY)
    assert _run("seal", open_.loi)["apply"] == "success"
    assert _statuses(engine, open_.id) == ["sealed"]


def test_unsealing_is_refused_for_a_paid_reference_even_with_the_admin_lock(engine, locked: Books,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _create(engine, locked, debt_line_ids=[locked.lines["lid"]], seal=True)
    with transaction(engine) as session:
        ledger = Ledger(session, "cash desk", NOW)
        ledger.pay(ledger.load([ref.id])[ref.id], Decimal("25.00"), source="manual")
        ledger.flush()
    _as(monkeypatch, "greta", "finance-admin")
    assert _run("unseal", ref.loi)["apply"] == "failed"
    assert _statuses(engine, ref.id) == ["paid"]
    assert _refusal("unseal", [ref.loi], "greta", "finance-admin") == (
        f"refused: nothing unsealed: {ref.loi} is paid: a paid payment reference cannot be unsealed")
    # Without the admin lock it is the lock that refuses first.
    assert "needs the admin lock 'finance-admin'" in _refusal("unseal", [ref.loi], "fiona", "finance")


def test_unsealing_is_refused_for_a_reference_in_an_exported_run(
    engine, locked: Books, monkeypatch: pytest.MonkeyPatch, var_dir: Path
) -> None:
    from include.sepa.export import export_collection_run
    from include.sepa.mandate_execution import execute_mandates

    with transaction(engine) as session:
        owner = make_user(session)
        make_mandate(session, locked.bib, owner, first=date(2026, 11, 21))
        add_debt(session, locked.bib, owner, "LID", "30.00")
        execute_mandates(session, date(2026, 11, 20), "test")
        run_loi = session.scalars(select(CollectionRun.loi)).one()
        ref_id, ref_loi = session.execute(
            select(PaymentReference.id, PaymentReference.loi)
            .join(Collection, Collection.payment_reference_id == PaymentReference.id)
        ).one()
    export_collection_run(run_loi, "test", engine=engine, outbox=var_dir / "outbox")
    _as(monkeypatch, "greta", "finance-admin")
    assert _run("unseal", ref_loi)["apply"] == "failed"
    assert _statuses(engine, ref_id) == ["sealed"]
    assert "unsealed" not in [a for a, _ in _actions(engine, ref_id)]
    assert _refusal("unseal", [ref_loi], "greta", "finance-admin") == (
        f"refused: nothing unsealed: {ref_loi} is collected in run {run_loi} (exported): delete the run's references "
        "instead (payment_reference_delete)"
    )


def test_sealing_a_draft_of_a_type_with_direct_printing_makes_its_invoice_at_once(
    engine, locked: Books, monkeypatch: pytest.MonkeyPatch, var_dir: Path
) -> None:
    """Seed 2.5.2 ``direct``: the file is made when the reference is sealed ("bij opmaak"), also when a draft made
    earlier is sealed later, not only when it is sealed on creation."""
    with transaction(engine) as session:
        session.add(PaymentReferenceType(code="DIRECT-BIB", name="Direct", direct_print=True,
                                         invoice_counter="inv-direct", invoice_prefix="D-"))
    direct = _create(engine, locked, debt_line_ids=[locked.lines["lid"]], type_code="DIRECT-BIB")
    nightly = _create(engine, locked, debt_line_ids=[locked.lines["boete_laat"]])  # DOM-BIB: no direct printing
    _as(monkeypatch, "fiona", "finance")
    assert _run("seal", direct.loi, nightly.loi) == {"apply": "success", "cancel_pom_requests": "success",
                                                      "direct_invoice": "success"}
    with transaction(engine, readonly=True) as session:
        invoices = session.scalars(select(Invoice).where(Invoice.withdrawn_at.is_(None))).all()
    assert _statuses(engine, direct.id, nightly.id) == ["sealed", "sealed"]
    assert [(i.payment_reference_id, i.amount) for i in invoices] == [(direct.id, Decimal("25.00"))]
    assert (var_dir / "invoices" / invoices[0].file_path).is_file()
    # Sealed again, it is left as it is: no second invoice.
    assert _run("seal", direct.loi)["direct_invoice"] == "skipped"
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(Invoice.id)).all() == [invoices[0].id]


@pytest.mark.parametrize("fault", ["template", "amount"])
def test_a_direct_invoice_sealing_cannot_make_fails_at_once_the_references_staying_sealed(
    engine, locked: Books, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fault: str
) -> None:
    """An invoice template Innen cannot read, or a reference's amount no EPC code carries: a retry a minute later
    meets the same file or data, so the invoice task fails at once (as payment_reference_create's does), naming
    why; the seal stands."""
    with transaction(engine) as session:
        session.add(PaymentReferenceType(code="DIRECT-BIB", name="Direct", direct_print=True,
                                         invoice_counter="inv-direct", invoice_prefix="D-"))
        user = session.scalars(select(EndUser).where(EndUser.eloi == locked.user)).one()
        # One euro cent more than an EPC QR code (and one SEPA transfer) carries.
        huge = add_debt(session, locked.bib, user, "SCHADE", "1000000000.00").id
    if fault == "template":
        import shutil

        folder = tmp_path / "templates"
        shutil.copytree(Path(__file__).resolve().parents[2] / "templates" / "invoices", folder)
        for template in folder.glob("*.typ"):
            template.write_text("$State.Cbedrag\n" + template.read_text(encoding="utf-8"), encoding="utf-8")
        monkeypatch.setenv("INNEN_TEMPLATE_DIR", str(folder))
    line = locked.lines["lid"] if fault == "template" else huge
    draft = _create(engine, locked, debt_line_ids=[line], type_code="DIRECT-BIB")
    _as(monkeypatch, "fiona", "finance")
    run = _dag().test(run_conf={"references": [draft.loi], "action": "seal"})
    states = {ti.task_id: str(ti.state).rsplit(".", 1)[-1] for ti in run.get_task_instances()}
    assert states == {"apply": "success", "cancel_pom_requests": "success", "direct_invoice": "failed"}
    assert [ti.try_number for ti in run.get_task_instances() if ti.task_id == "direct_invoice"] == [1]
    assert _statuses(engine, draft.id) == ["sealed"]
    with transaction(engine, readonly=True) as session:
        assert session.scalars(select(Invoice.id)).all() == []


def test_the_form_wants_references_and_an_action() -> None:
    dag = _dag()
    params: Any = dag.params
    assert params.get_param("references").schema["minItems"] == 1
    assert params.get_param("action").schema["enum"] == ["seal", "unseal"]
    assert params["action"] == "seal"
