"""The DAGs run for real with ``dag.test()``: Airflow's own runner, our database, our files."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree
from sqlalchemy import func, select

from include.finance.db import transaction
from include.finance.models import BankHub, Collection, CollectionRun, Invoice, PaymentReference, PaymentReferenceType
from include.runtime import LOCAL_ZONE
from include.sepa.xsd import schema
from tests.dag_bag import parsed_dag

RUN = date(2026, 11, 20)
LOGICAL = datetime.combine(RUN, time(5), tzinfo=LOCAL_ZONE)


def _dag(dag_id: str):  # type: ignore[no-untyped-def]
    return parsed_dag(dag_id)


def _counts(engine) -> list[int]:  # type: ignore[no-untyped-def]
    with transaction(engine, readonly=True) as session:
        return [session.scalar(select(func.count()).select_from(t)) for t in (PaymentReference, Collection, CollectionRun)]


def _task_states(run) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_the_direct_debit_cycle_through_airflow(demo, var_dir: Path) -> None:
    run = _dag("mandate_execution").test(logical_date=LOGICAL)
    assert str(run.state).endswith("success"), _task_states(run)
    assert (var_dir / "reports" / "mandate_check" / RUN.isoformat() / "index.html").is_file()
    counts = _counts(demo)
    assert counts[1] > 100 and counts[2] == 2
    with transaction(demo, readonly=True) as session:
        kinds = set(session.scalars(select(Collection.sequence_type)))
        direct = set(session.scalars(select(PaymentReference.id).join(
            PaymentReferenceType, PaymentReferenceType.id == PaymentReference.type_id)
            .where(PaymentReferenceType.direct_print.is_(True), PaymentReference.mandate_id.is_not(None))))
        invoiced = set(session.scalars(select(Invoice.payment_reference_id)))
        print_days = set(session.scalars(select(Invoice.print_day)))
    assert kinds == {"FRST", "RCUR", "FNAL", "OOFF"}
    assert direct and invoiced == direct  # the academy's type prints at once: its notices are made in the run
    # for the next night's invoice_run to print: the run date's own ran at 02:30, before this 05:00 run
    assert print_days == {date(2026, 11, 21)}

    export = _dag("pain_export").test()
    assert str(export.state).endswith("success"), _task_states(export)
    with transaction(demo, readonly=True) as session:
        runs = session.execute(select(CollectionRun, BankHub).join(BankHub, BankHub.id == CollectionRun.hub_id)).all()
    for collection_run, hub in runs:
        assert collection_run.status == "exported"
        tree = etree.parse(collection_run.file_path)
        assert schema(hub.pain008_version).validate(tree)
        assert Path(collection_run.file_path).parent == var_dir / "outbox"

    again = _dag("mandate_execution").test(logical_date=LOGICAL)
    assert str(again.state).endswith("success")
    assert _counts(demo) == counts, "a rerun of the same date must create nothing"
    assert _task_states(again)["announce_ready_runs"].endswith("skipped")


def test_a_refused_export_fails_the_task_and_marks_the_run(demo, var_dir: Path) -> None:
    assert str(_dag("mandate_execution").test(logical_date=LOGICAL).state).endswith("success")
    with transaction(demo) as session:
        run = session.scalars(select(CollectionRun).order_by(CollectionRun.id)).first()
        # A collection's account edited by hand after execution: it no longer fits the schema.
        collection = session.scalars(select(Collection).where(Collection.run_id == run.id)).first()
        collection.debtor_iban = "XX00"
        loi = run.loi
    export = _dag("pain_export").test(run_conf={"collection_run": loi})
    assert str(export.state).endswith("failed")
    with transaction(demo, readonly=True) as session:
        failed = session.scalars(select(CollectionRun).where(CollectionRun.loi == loi)).one()
    assert failed.status == "failed" and "XSD validation failed" in failed.error and failed.file_path is None
    assert not any(p.suffix == ".xml" for p in (var_dir / "outbox").glob("*")) if (var_dir / "outbox").exists() else True


def test_the_export_reads_its_collection_run_param_as_typed(demo) -> None:
    """Spaces around the run are no part of it; an empty one (spaces only) is every ready run; a run that does not
    exist fails the DAG run at once, naming the param (it was an InnenError each mapped export retried)."""
    from airflow.sdk.exceptions import AirflowFailException

    assert str(_dag("mandate_execution").test(logical_date=LOGICAL).state).endswith("success")
    chosen = _dag("pain_export").get_task("runs_to_export").python_callable.__globals__["chosen_runs"]
    with transaction(demo, readonly=True) as session:
        lois = sorted(session.scalars(select(CollectionRun.loi)))
    assert chosen({"params": {"collection_run": f" {lois[0]} "}}) == [lois[0]]
    assert sorted(chosen({"params": {"collection_run": "  "}})) == lois
    with pytest.raises(AirflowFailException, match=r"^param collection_run: there is no collection run 'fj:BIB:999'$"):
        chosen({"params": {"collection_run": "fj:BIB:999 "}})


def test_the_export_refuses_a_confirmed_or_deleted_run_naming_the_param(demo) -> None:
    """Such a run has no file to make: a confirmed run's file was made again (and, once approved, the run was
    'exported' again, to be collected twice); a deleted run was marked failed."""
    from airflow.sdk.exceptions import AirflowFailException
    from sqlalchemy import update

    assert str(_dag("mandate_execution").test(logical_date=LOGICAL).state).endswith("success")
    chosen = _dag("pain_export").get_task("runs_to_export").python_callable.__globals__["chosen_runs"]
    with transaction(demo) as session:
        confirmed, deleted = sorted(session.scalars(select(CollectionRun.loi)))[:2]
        session.execute(update(CollectionRun).where(CollectionRun.loi == confirmed).values(status="confirmed"))
        session.execute(update(CollectionRun).where(CollectionRun.loi == deleted).values(status="deleted"))
    for loi, why in ((confirmed, "confirmed (the bank paid it)"), (deleted, "deleted (its references were deleted)")):
        with pytest.raises(AirflowFailException,
                           match=rf"^param collection_run: {loi} is {why.replace('(', '[(]').replace(')', '[)]')}: "
                                 "no bank file is made again$"):
            chosen({"params": {"collection_run": loi}})
    assert confirmed not in chosen({"params": {"collection_run": None}})  # nor is it among the ready runs


def test_an_export_format_without_a_run_is_refused_naming_both_params(demo) -> None:
    """The form says the format overrides the hub's "for this run"; without a run it rewrote every ready run of
    every hub in it, a CSV hub's bank getting pain.008."""
    from airflow.sdk.exceptions import AirflowFailException

    assert str(_dag("mandate_execution").test(logical_date=LOGICAL).state).endswith("success")
    chosen = _dag("pain_export").get_task("runs_to_export").python_callable.__globals__["chosen_runs"]
    with transaction(demo, readonly=True) as session:
        loi = sorted(session.scalars(select(CollectionRun.loi)))[0]
    with pytest.raises(AirflowFailException, match=r"^param export_format: SAFESEPA is for one run: name it in "
                                                   r"collection_run \(every ready run keeps its hub's format\)$"):
        chosen({"params": {"collection_run": " ", "export_format": "SAFESEPA"}})
    assert chosen({"params": {"collection_run": loi, "export_format": "SAFESEPA"}}) == [loi]


def _confirm_context(run_loi: str, amount: str | None, task_id: str, xcoms: dict | None = None) -> dict:
    """What collection_confirm's task ``task_id`` gets from Airflow: its params and a task instance whose
    ``xcom_pull`` gives ``xcoms`` (by task id)."""
    pushed: dict = {}
    ti = SimpleNamespace(dag_id="collection_confirm", run_id="manual__test", task_id=task_id, pushed=pushed,
                         xcom_pull=lambda task_ids: (xcoms or {}).get(task_ids),
                         xcom_push=lambda key, value: pushed.__setitem__(key, value))
    return {"params": {"collection_run": run_loi, "received_amount": amount}, "ti": ti,
            "dag_run": SimpleNamespace(triggering_user_name="alice")}


def test_statement_import_confirmation_and_deletion_through_airflow(demo, var_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from include import airflow_roles
    from include.finance.models import BankStatement, ControlListItem, Payment
    from sandbox.demo_institution import write_demo_statement

    assert str(_dag("mandate_execution").test(logical_date=LOGICAL).state).endswith("success")
    assert str(_dag("pain_export").test().state).endswith("success")
    with transaction(demo, readonly=True) as session:
        runs = {hub: (loi, day) for loi, day, hub in session.execute(
            select(CollectionRun.loi, CollectionRun.collection_date, BankHub.code).join(BankHub, BankHub.id == CollectionRun.hub_id))}
        statement = write_demo_statement(session, var_dir / "inbox" / "camt053", runs["KBC-BIB"][1])
    (var_dir / "inbox" / "camt053" / "broken.xml").write_text("<Document>")  # refused, the run fails

    imported = _dag("camt053_import").test()
    assert str(imported.state).endswith("failed")  # one mapped import failed; the other went through
    states = sorted(str(ti.state) for ti in imported.get_task_instances() if ti.task_id == "import_file")
    assert states[0].endswith("failed") and states[1].endswith("success")
    assert (var_dir / "archive" / statement.name).exists() and (var_dir / "quarantine" / "broken.xml.reason.txt").exists()
    with transaction(demo, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(BankStatement)) == 1
        assert session.scalar(select(func.count()).select_from(ControlListItem)) > 0
        payments = session.scalar(select(func.count()).select_from(Payment))

    # collection_confirm waits for a person's answer (HITL), so no dag.test() here: its tasks' work is run one by
    # one, with what the decide task returns once answered.
    ska_run = runs["BELFIUS-SKA"][0]
    confirm = _dag("collection_confirm")
    preview = confirm.get_task("preview").python_callable.__globals__["preview_run"]
    book = confirm.get_task("book").python_callable.__globals__["book_decision"]
    shown = preview(_confirm_context(ska_run, "1.00", "preview"))
    assert shown["dry_run"] and not shown["booked"] and f"**Collection run `{ska_run}`**" in shown["summary"]
    reports = var_dir / "reports" / "collection_confirm" / ska_run.replace(":", "-")
    assert shown["report"] == str(reports / "dry-run.html")
    assert Path(shown["report"]).exists()
    with transaction(demo, readonly=True) as session:
        assert session.scalar(select(func.count()).select_from(Payment)) == payments
        open_total = sum(session.scalars(
            select(PaymentReference.open_amount).join(Collection, Collection.payment_reference_id == PaymentReference.id)
            .join(CollectionRun, CollectionRun.id == Collection.run_id).where(CollectionRun.loi == ska_run)
        ))
    answer = confirm.get_task("decide").execute_complete({}, {
        "chosen_options": ["Confirm"], "params_input": {"received_amount": str(open_total)},
        "responded_by_user": {"id": "3", "name": "fiona"}, "responded_at": datetime.now(LOCAL_ZONE)})
    booked = book(_confirm_context(ska_run, "1.00", "book", {"preview": shown, "decide": answer}))
    assert booked["booked"] and booked["confirmed_by"] == "fiona" and booked["received"] == str(open_total)
    with transaction(demo, readonly=True) as session:
        assert session.scalars(select(CollectionRun.status).where(CollectionRun.loi == ska_run)).one() == "confirmed"

    bib_run = runs["KBC-BIB"][0]
    # Deleting needs the demo types' admin lock, finance-admin (dag.test() runs hold no roles of their own).
    monkeypatch.setattr(airflow_roles, "run_roles", lambda context: ("greta", frozenset({"finance-admin"})))
    deletion = _dag("payment_reference_delete").test(run_conf={"collection_run": bib_run, "dry_run": True})
    assert str(deletion.state).endswith("success")
    dry_run = var_dir / "reports" / "payment_reference_delete" / bib_run.replace(":", "-") / "dry-run.csv"
    assert "accadmin" not in dry_run.read_text(encoding="utf-8")  # the statement paid them: refused as paid, not locked


def test_direct_invoices_whose_template_cannot_be_read_fail_at_once_naming_it(
        demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The collections stand; the invoices of the direct-print type (the academy's) wait for the template to be
    fixed: the task was retried twice, five minutes apart, against the same file."""
    import shutil
    from dataclasses import asdict

    from airflow.sdk.exceptions import AirflowFailException

    from include.sepa.mandate_execution import execute_mandates

    folder = tmp_path / "templates"
    shutil.copytree(Path(__file__).resolve().parents[2] / "templates" / "invoices", folder)
    for template in folder.glob("*.typ"):
        template.write_text("$State.Cbedrag\n" + template.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("INNEN_TEMPLATE_DIR", str(folder))
    day = LOGICAL.astimezone(LOCAL_ZONE).date()
    with transaction(demo) as session:
        executed = asdict(execute_mandates(session, day, "test"))
    work = _dag("mandate_execution").get_task("direct_invoices").python_callable
    ti = SimpleNamespace(dag_id="mandate_execution", run_id="manual__test", task_id="direct_invoices")
    monkeypatch.setitem(work.__globals__, "get_current_context", lambda: {
        "params": {"run_date": day.isoformat()}, "ti": ti})
    with pytest.raises(AirflowFailException, match=r"^no invoice for the direct-print references of (fj:\w+:\d+, )*fj:SKA:\d+: "
                                                   r"template default\.(nl|fr)\.typ, line 1: unknown placeholder"):
        work(executed)
    with transaction(demo, readonly=True) as session:  # the collections stand
        assert session.scalar(select(func.count()).select_from(Collection)) == executed["collections"] > 0
