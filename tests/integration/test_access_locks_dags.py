"""The manual DAGs that make, book on and delete payment references, by the demo types' access locks (seed 2.5.2).

The demo institution's types (``sandbox.demo_institution``) lock writing to ``finance`` and breaking to ``finance-admin``
and leave reading open. Each test runs on SQLite and on PostgreSQL. The table tests call each DAG's task
work with a role source of their own (context → person, roles), as Airflow would with the roles of the
person who triggered the run; the ``dag.test()`` tests put a role source in place of the DAG's
(``include.airflow_roles.run_roles``), or leave the DAG's own, under which ``dag.test()`` is no person.
The expected messages are written out here by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from include import airflow_roles
from include.finance.db import transaction
from include.finance.models import (
    AuditLog,
    ControlListItem,
    DebtLine,
    Payment,
    PaymentReference,
    PaymentReferenceType,
)
from include.finance.sealing import create_reference
from tests.dag_bag import parsed_dag
from tests.factories import make_user

DAGS = Path(__file__).resolve().parents[2] / "dags"
RUN = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
TYPE = "DOM-BIB"
NOBODY = " (no person triggered this run — a schedule, an asset or dag.test — so it holds no roles)"
WRITE = "the write lock 'finance' (accwrite) or the admin lock 'finance-admin' (accadmin)"
ADMIN = "the admin lock 'finance-admin' (accadmin)"


@dataclass
class Books:
    user: str  # e-loi
    free_line: int  # an open debt line in no reference: to make one of
    reference: str  # a sealed DOM-BIB reference of 25.00
    reference_id: int
    item: int  # an open control-list item of 5.00 (POM, unmatched): to book on the reference


@pytest.fixture
def books(engine, db_url: str, var_dir: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Books:
    """The demo's financial systems and types (as ``load_demo`` makes them), one user's debt and reference."""
    from sandbox.demo_institution import _Builder

    monkeypatch.setenv("INNEN_DB_URL", db_url)
    with transaction(engine) as session:
        demo = _Builder(session, RUN)
        demo.metadata()
        user = make_user(session)
        lines = [DebtLine(financial_system_id=demo.bib.id, end_user_id=user.id, transaction_code=code,
                          amount=Decimal(amount), open_amount=Decimal(amount), created_on=date(2026, 11, 1))
                 for code, amount in (("LIDGELD", "25.00"), ("BOETE-LAAT", "3.40"))]
        session.add_all(lines)
        session.flush()
        ref = create_reference(session, end_user=user.eloi, type_code=TYPE, debt_line_ids=[lines[0].id], seal=True,
                               actor="finance:test", now=NOW)
        item = ControlListItem(source="pom", kind="unmatched", amount=Decimal("5.00"), created_at=NOW,
                               reason="paid at POM for no reference", action="book it on the payer's reference")
        session.add(item)
        session.flush()
        return Books(user.eloi, lines[1].id, ref.loi, ref.id, item.id)


def test_the_demo_types_are_written_by_finance_broken_by_finance_admin_and_read_by_all(books: Books, engine) -> None:
    with transaction(engine, readonly=True) as session:
        locks = {(t.access_read, t.access_write, t.access_admin) for t in session.scalars(select(PaymentReferenceType))}
    assert locks == {(None, "finance", "finance-admin")}


# -- the table: who may make, book and delete ----------------------------------------------------------------------

# person, roles, may make and book (the write lock), may delete (the admin lock)
WHO = [
    ("fiona", ("finance",), True, False),
    ("greta", ("finance-admin",), True, True),  # admin gives write
    ("greta", ("finance", "finance-admin"), True, True),
    ("otto", ("operator",), False, False),
    ("vera", ("viewer",), False, False),
    ("vera", ("viewer", "operator"), False, False),
    (None, (), False, False),  # a schedule, an asset, dag.test: no person, no roles
]
IDS = [f"{person or 'nobody'}-{'+'.join(roles) or 'no-roles'}" for person, roles, *_ in WHO]


def _yours(person: str | None, roles: tuple[str, ...]) -> str:
    return f"which none of your roles ({', '.join(sorted(roles))}) is" if roles else "and you have no roles"


def _work(dag_id: str, task_id: str, name: str):  # type: ignore[no-untyped-def]
    """The task's work, from the DAG file as Airflow loads it."""
    dag = parsed_dag(dag_id)
    return dag.get_task(task_id).python_callable.__globals__[name]


def _call(dag_id: str, task_id: str, name: str, params: dict[str, Any], person: str | None,
          roles: tuple[str, ...]) -> Any:
    """The task's work for ``person`` holding ``roles``: its result, or the message it fails the run with."""
    from airflow.sdk.exceptions import AirflowFailException

    context = {
        "params": params,
        "ti": SimpleNamespace(dag_id=dag_id, run_id="manual__test", task_id=task_id),
        "dag_run": SimpleNamespace(triggering_user_name=person),
    }
    try:
        return _work(dag_id, task_id, name)(context, lambda _: (person, frozenset(roles)))
    except AirflowFailException as refused:
        return str(refused)


def _create_params(books: Books) -> dict[str, Any]:
    return {"end_user": books.user, "reference_type": TYPE, "financial_system": None,
            "debt_lines": [books.free_line], "pattern": None, "due_date": None, "description": None, "seal": True}


def _references(engine) -> int:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return session.scalar(select(func.count()).select_from(PaymentReference))


def _status(engine, ref_id: int) -> str:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return session.get(PaymentReference, ref_id).status


@pytest.mark.parametrize(("person", "roles", "may_write", "may_delete"), WHO, ids=IDS)
def test_making_a_reference_needs_the_types_write_lock(engine, books: Books, person: str | None,
                                                       roles: tuple[str, ...], may_write: bool,
                                                       may_delete: bool) -> None:
    result = _call("payment_reference_create", "create", "make_reference", _create_params(books), person, roles)
    if may_write:
        assert isinstance(result, dict) and result["status"] == "sealed" and result["amount"] == "3.40", result
        assert _references(engine) == 2
        return
    assert result == (f"refused: nothing created{'' if person else NOBODY}: a new payment reference (type {TYPE}): "
                      f"creating needs {WRITE}, {_yours(person, roles)}")
    assert _references(engine) == 1
    with transaction(engine, readonly=True) as session:
        assert session.get(DebtLine, books.free_line).payment_reference_id is None


def test_making_a_reference_reads_the_form_as_typed(engine, books: Books) -> None:
    """Spaces around what a person typed are no part of it; a malformed due date refuses, naming the param
    (it was a ValueError the task retried)."""
    spaced = {**_create_params(books), "end_user": f" {books.user} ", "reference_type": f"{TYPE} ",
              "due_date": " 2026-12-31 "}
    bad = {**_create_params(books), "due_date": "31/12/2026"}
    assert _call("payment_reference_create", "create", "make_reference", bad, "fiona", ("finance",)) == (
        "refused: param due_date: '31/12/2026' is not a date YYYY-MM-DD")
    assert _references(engine) == 1
    result = _call("payment_reference_create", "create", "make_reference", spaced, "fiona", ("finance",))
    assert isinstance(result, dict) and result["status"] == "sealed", result
    assert _references(engine) == 2


@pytest.mark.parametrize(("person", "roles", "may_write", "may_delete"), WHO, ids=IDS)
def test_booking_a_control_list_item_needs_the_write_lock_of_the_references_type(
    engine, books: Books, person: str | None, roles: tuple[str, ...], may_write: bool, may_delete: bool
) -> None:
    params = {"item": books.item, "action": "book", "reference": books.reference, "note": None}
    result = _call("control_list_resolve", "resolve", "resolve_by_hand", params, person, roles)
    with transaction(engine, readonly=True) as session:
        item = session.get(ControlListItem, books.item)
        payments = session.scalar(select(func.count()).select_from(Payment))
        ref = session.get(PaymentReference, books.reference_id)
    if may_write:
        assert isinstance(result, dict) and result["outcome"] == "partial" and result["booked"] == "5.00", result
        assert item.resolution == "booked" and payments == 1 and ref.open_amount == Decimal("20.00")
        assert item.resolved_by.endswith(f"/resolve by {person}")
        return
    assert result == (f"refused: nothing booked{'' if person else NOBODY}: {books.reference} (type {TYPE}): "
                      f"booking needs {WRITE}, {_yours(person, roles)}")
    assert item.resolved_at is None and payments == 0 and ref.open_amount == Decimal("25.00")


@pytest.mark.parametrize(("person", "roles", "may_write", "may_delete"), WHO, ids=IDS)
def test_handling_a_control_list_item_needs_no_lock(engine, books: Books, person: str | None, roles: tuple[str, ...],
                                                    may_write: bool, may_delete: bool) -> None:
    params = {"item": books.item, "action": "handle", "reference": None, "note": "refunded by transfer"}
    result = _call("control_list_resolve", "resolve", "resolve_by_hand", params, person, roles)
    assert isinstance(result, dict) and result["resolution"] == "handled", result


@pytest.mark.parametrize(("person", "roles", "may_write", "may_delete"), WHO, ids=IDS)
def test_deleting_a_reference_needs_the_types_admin_lock_and_a_dry_run_reports_it(
    engine, books: Books, person: str | None, roles: tuple[str, ...], may_write: bool, may_delete: bool
) -> None:
    lock = f"{books.reference} (type {TYPE}): deleting needs {ADMIN}, {_yours(person, roles)}"
    params = {"collection_run": None, "references": books.reference, "dry_run": True}
    dry = _call("payment_reference_delete", "delete", "delete_or_report", params, person, roles)
    assert isinstance(dry, dict) and _status(engine, books.reference_id) == "sealed", dry
    report = Path(dry["report"]).with_suffix(".csv").read_text(encoding="utf-8")
    if may_delete:
        assert (dry["deleted"], dry["refused"], dry["locked"]) == ([books.reference], [], [])
        assert "would be deleted" in report
    else:
        assert (dry["deleted"], dry["locked"]) == ([], [lock])
        assert dry["refused"] == [{"reference": books.reference, "reason": lock}]
        assert dry["message"] == ("dry run: 0 to delete, 1 refused; 1 of them for an access lock, so the real run "
                                  "would delete nothing (one reference refused by its lock refuses the whole deletion)")
        assert "accadmin" in report and "would be deleted" not in report

    result = _call("payment_reference_delete", "delete", "delete_or_report", {**params, "dry_run": False}, person,
                   roles)
    if may_delete:
        assert isinstance(result, dict) and result["deleted"] == [books.reference], result
        assert _status(engine, books.reference_id) == "deleted"
        with transaction(engine, readonly=True) as session:  # the audit names the person who asked
            actors = set(session.scalars(select(AuditLog.actor).where(
                AuditLog.entity == "payment_reference", AuditLog.entity_id == books.reference_id,
                AuditLog.action == "deleted")))
        assert actors == {"airflow:payment_reference_delete/manual__test/delete" + (f" by {person}" if person else "")}
        return
    assert result == f"refused: nothing deleted{'' if person else NOBODY}: {lock}"
    assert _status(engine, books.reference_id) == "sealed"
    with transaction(engine, readonly=True) as session:
        assert "deleted" not in set(session.scalars(select(AuditLog.action)))


# -- through Airflow: the DAGs ask the run's roles when they run ---------------------------------------------------


def _dag(dag_id: str):  # type: ignore[no-untyped-def]
    return parsed_dag(dag_id)


def _as(monkeypatch: pytest.MonkeyPatch, person: str | None, *roles: str) -> None:
    """The runs that follow are triggered by ``person`` holding ``roles``."""
    monkeypatch.setattr(airflow_roles, "run_roles", lambda context: (person, frozenset(roles)))


def _run(dag_id: str, task_id: str, conf: dict[str, Any]) -> str:
    """The state of ``task_id`` in a ``dag.test()`` run; a refused task is not retried."""
    run = _dag(dag_id).test(run_conf=conf)
    tis = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    state = str(tis[0].state).rsplit(".", 1)[-1]
    assert str(run.state).endswith("failed" if state == "failed" else "success")
    if state == "failed":
        assert [ti.try_number for ti in tis] == [1], "a refusal is not retried"
    return state


def test_the_dags_refuse_and_allow_by_the_roles_of_who_triggered_them(engine, books: Books,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    create = {"end_user": books.user, "reference_type": TYPE, "debt_lines": [books.free_line]}
    # The DAGs' own role source: dag.test() names the user dag_test, which is nobody, holding no roles.
    assert _run("payment_reference_create", "create", create) == "failed"
    assert _references(engine) == 1
    _as(monkeypatch, "vera", "viewer")
    assert _run("payment_reference_create", "create", create) == "failed"
    book = {"item": books.item, "action": "book", "reference": books.reference}
    assert _run("control_list_resolve", "resolve", book) == "failed"
    delete = {"references": books.reference, "dry_run": False}
    assert _run("payment_reference_delete", "delete", delete) == "failed"
    assert _references(engine) == 1 and _status(engine, books.reference_id) == "sealed"
    with transaction(engine, readonly=True) as session:
        assert session.get(ControlListItem, books.item).resolved_at is None

    _as(monkeypatch, "fiona", "finance")
    assert _run("payment_reference_create", "create", create) == "success"
    assert _references(engine) == 2
    assert _run("control_list_resolve", "resolve", book) == "success"
    assert _run("payment_reference_delete", "delete", delete) == "failed"  # the admin lock
    assert _status(engine, books.reference_id) == "sealed"

    _as(monkeypatch, "greta", "finance-admin")
    assert _run("payment_reference_delete", "delete", delete) == "success"
    assert _status(engine, books.reference_id) == "deleted"


def test_handling_an_item_looks_up_no_roles(engine, books: Books, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(context: Any) -> Any:
        raise AssertionError("handling touches no reference: no roles to look up")

    monkeypatch.setattr(airflow_roles, "run_roles", no_lookup)
    assert _run("control_list_resolve", "resolve", {"item": books.item, "action": "handle", "note": "not ours"}) == (
        "success")
    with transaction(engine, readonly=True) as session:
        assert session.get(ControlListItem, books.item).resolution == "handled"
