"""The Reports tab of a DAG run and the Finance page.

First :mod:`include.run_reports` and :mod:`include.finance_page` on their own
(no Airflow), then the real thing: DAGs run with ``dag.test()`` on this
session's Airflow metadata database, and a real ``airflow api-server`` (simple
auth manager, a user ``finance`` with a password file) started on that
database, asked over HTTP with and without Airflow's login.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time as clock
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from include.finance.db import create_schema, get_engine, transaction
from include.runtime import LOCAL_ZONE
from tests.dag_bag import parsed_dag

ROOT = Path(__file__).resolve().parents[2]


# -- include.run_reports -----------------------------------------------------------------------------------------


def _report(folder: Path, title: str = "A <report>", csvs: tuple[str, ...] = ("list.csv",),
            name: str = "index.html") -> Path:
    from include.reports import Table, write_csv, write_html

    tables = []
    for csv in csvs:
        write_csv(folder / csv, ("a", "b"), [["1", "2"]])
        tables.append(Table(csv, ("a", "b"), csv_name=csv))
    write_html(folder / name, title, tables)
    return folder / name


def test_report_files_are_only_html_and_csv_under_the_reports_folder(var_dir: Path) -> None:
    from include.run_reports import ReportNotFound, read_report_file, report_file

    reports = var_dir / "reports"
    _report(reports / "mandate_check" / "2026-11-20")
    (reports / "mandate_check" / "2026-11-20" / "due-mandate-ids.txt").write_text("1\n")
    (reports / "mandate_check" / "2026-11-20" / ".list.csv.x.part").write_text("half")
    (var_dir / "outbox").mkdir(parents=True)
    (var_dir / "outbox" / "bank.csv").write_text("secret")
    (reports / "escape.csv").symlink_to(var_dir / "outbox" / "bank.csv")
    (reports / "dir.csv").mkdir()

    data, media = read_report_file("mandate_check/2026-11-20/list.csv")
    assert data.startswith("\ufeffa;b".encode()) and media.startswith("text/csv")
    assert report_file("mandate_check/2026-11-20/index.html").name == "index.html"
    for refused in (
        "../../etc/passwd", "/etc/passwd", "../outbox/bank.csv", "mandate_check/../../outbox/bank.csv",
        "mandate_check/2026-11-20/../../../outbox/bank.csv", "escape.csv", "dir.csv",
        "mandate_check/2026-11-20/due-mandate-ids.txt", "mandate_check/2026-11-20/.list.csv.x.part",
        "mandate_check/2026-11-20/missing.csv", "", "mandate_check\\2026-11-20\\list.csv", "list.csv\0.html",
        "mandate_check/2026-11-20/./list.csv", "./mandate_check/2026-11-20/list.csv",
    ):
        with pytest.raises(ReportNotFound):
            report_file(refused)


def test_a_runs_reports_come_from_its_task_results(var_dir: Path) -> None:
    from include.run_reports import ReportNotFound, files_of, reports_of, run_file

    reports = var_dir / "reports"
    mandates = reports / "mandate_check" / "2026-11-20"
    _report(mandates, "Mandate check 2026-11-20", ("active-ok.csv", "active-err.csv"))
    control = _report(reports / "camt053" / "HUB-BIB_STMT-1_1", "Control list — statement STMT-1", ("control-list.csv",))
    _report(reports / "camt053" / "HUB-BIB_STMT-2_2", "Control list — statement STMT-2", ("control-list.csv",))
    recon = reports / "pom_reconciliation" / "2026-11-21"
    _report(recon, "POM reconciliation", ("pom_reconciliation.csv",), name="pom_reconciliation.html")
    outbox = var_dir / "outbox" / "KBC-BIB_fj-BIB-1.xml"

    found = reports_of("mandate_execution", {
        "check_mandates": {"folder": str(mandates), "counts": {"active-ok": 3}, "due": 1},
        "execute_mandates": {"runs": [{"loi": "fj:BIB:1", "total": "10.00"}]},
        "announce_ready_runs": ["fj:BIB:1"],
    }, date(2026, 11, 20))
    assert [(r.title, r.html_path, r.csv_paths, r.task_id) for r in found] == [(
        "Mandate check 2026-11-20", "mandate_check/2026-11-20/index.html",
        ("mandate_check/2026-11-20/active-ok.csv", "mandate_check/2026-11-20/active-err.csv"), "check_mandates",
    )]

    # A mapped task's values come as a list; a page named twice is one report; a path outside is not offered.
    imported = reports_of("camt053_import", {
        "files_to_import": ["/elsewhere/statement.xml"],
        "import_file": [{"control_lists": [str(control)], "archived": str(var_dir / "archive" / "s.xml")},
                        {"control_lists": [str(control)]}],
        "update_pom_requests": {"updated": 0},
    })
    assert [r.html_path for r in imported] == ["camt053/HUB-BIB_STMT-1_1/index.html"]
    assert files_of(imported) == {"camt053/HUB-BIB_STMT-1_1/index.html", "camt053/HUB-BIB_STMT-1_1/control-list.csv"}
    assert run_file(imported, "camt053/HUB-BIB_STMT-1_1/control-list.csv").is_file()
    with pytest.raises(ReportNotFound):  # another statement's list is no report of this run
        run_file(imported, "camt053/HUB-BIB_STMT-2_2/control-list.csv")

    # CSVs a result names go with the page beside them.
    (recon_report,) = reports_of("pom_reconciliation", {"reconcile_requests": {
        "csv": str(recon / "pom_reconciliation.csv"), "html": str(recon / "pom_reconciliation.html")}})
    assert recon_report.csv_paths == ("pom_reconciliation/2026-11-21/pom_reconciliation.csv",)

    # A bank file is no report: its summary is shown, the file in the outbox is not offered.
    (bank_file,) = reports_of("pain_export", {"runs_to_export": ["fj:BIB:1"], "export_run": [{
        "run": "fj:BIB:1", "status": "exported", "export_format": "SEPA", "file_path": str(outbox),
        "sha256": "ab" * 32, "transactions": 108, "total": "6027.76", "message": ""}]})
    assert bank_file.html_path is None and bank_file.csv_paths == ()
    assert dict(bank_file.facts) == {
        "collection run": "fj:BIB:1", "status": "exported", "format": "SEPA", "file": "KBC-BIB_fj-BIB-1.xml",
        "SHA-256": "ab" * 32, "transactions": "108", "total (EUR)": "6027.76", "message": "-"}

    # Nothing returned (the task failed after writing): the DAGs that file by day are found by the run's date.
    (by_date,) = reports_of("mandate_execution", {}, date(2026, 11, 20))
    assert by_date.html_path == "mandate_check/2026-11-20/index.html" and by_date.found_by == "the run's date"
    assert reports_of("mandate_execution", {}, date(2026, 11, 21)) == []
    assert reports_of("collection_confirm", {}, date(2026, 11, 20)) == []


def test_a_moved_reports_folder_is_found_again(var_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from include.run_reports import reports_of

    moved = tmp_path / "mounted" / "var"
    _report(moved / "reports" / "mandate_check" / "2026-11-20", "Mandate check 2026-11-20")
    monkeypatch.setenv("INNEN_VAR_DIR", str(moved))
    (found,) = reports_of("mandate_execution", {
        "check_mandates": {"folder": str(var_dir / "reports" / "mandate_check" / "2026-11-20")}})
    assert found.html_path == "mandate_check/2026-11-20/index.html"
    assert reports_of("mandate_execution", {"check_mandates": {"folder": "/srv/other/mandate_check/2026-11-20"}}) == []


def test_the_pages_escape_what_they_show(var_dir: Path) -> None:
    from include.finance_page import Approval, Section, render_finance_page
    from include.run_reports import Report, render_reports_page

    page = render_reports_page("mandate_execution", "manual__<script>", [
        Report("<b>x</b>", "mandate_check/2026 11/index.html", ("mandate_check/2026 11/a&b.csv",))])
    assert "<script>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert 'href="files/mandate_check/2026%2011/a%26b.csv"' in page
    approval = Approval("pain_export", "manual__1+2", "approve", 3, "<i>Release?</i>")
    assert approval.ui_path == "/dags/pain_export/runs/manual__1%2B2/tasks/approve/mapped/3/required_actions"
    section = Section("approvals", "Approvals waiting", ("what", "link"), [["<i>x</i>", approval.ui_path]],
                      [approval.ui_path])
    html = render_finance_page([section], date(2026, 11, 20), ui_base="/airflow")
    assert "<i>x</i>" not in html and 'href="/airflow/dags/pain_export/runs/manual__1%2B2/' in html


# -- the real API server ------------------------------------------------------------------------------------------

RUN_DAY = date(2026, 11, 20)
LOGICAL = datetime.combine(RUN_DAY, time(5), tzinfo=LOCAL_ZONE)
PASSWORD = "finance-" + secrets.token_hex(8)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dag(dag_id: str):  # type: ignore[no-untyped-def]
    return parsed_dag(dag_id)


@dataclass
class Served:
    base: str
    token: str
    var_dir: Path
    runs: dict[str, str]  # dag id → run id
    lois: list[str]
    log: Path


def _start_server(home: Path, port: int, env_extra: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"finance": PASSWORD}))
    env = {
        **os.environ, **env_extra,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "finance:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__PORT": str(port),
    }
    log = home / "api-server.log"
    airflow = Path(sys.executable).with_name("airflow")
    command = [str(airflow), "api-server", "--apps", "core", "-H", "127.0.0.1", "-p", str(port), "-w", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=home,
                                   start_new_session=True)
    return process, log


def _wait_healthy(process: subprocess.Popen[bytes], base: str, log: Path, timeout: float = 60) -> None:
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"api-server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        clock.sleep(0.3)
    raise AssertionError(f"api-server not healthy after {timeout} s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)  # the server we started, with its worker
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, airflow_db: None) -> Iterator[Served]:
    from include.finance.models import BankHub, CollectionRun, ControlListItem
    from sandbox.demo_institution import load_demo, write_demo_statement

    home = tmp_path_factory.mktemp("reports-app")
    var_dir = home / "var"
    db_url = f"sqlite:///{home / 'innen.sqlite'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INNEN_VAR_DIR", str(var_dir))
        env.setenv("INNEN_DB_URL", db_url)
        engine = get_engine(db_url)
        create_schema(engine)
        with transaction(engine) as session:
            load_demo(session, RUN_DAY, bank_file_approval=False)  # this module answers no approval

        runs = {"mandate_execution": _dag("mandate_execution").test(logical_date=LOGICAL)}
        runs["pain_export"] = _dag("pain_export").test()
        with transaction(engine, readonly=True) as session:
            collection_runs = {hub: (loi, day) for loi, day, hub in session.execute(
                select(CollectionRun.loi, CollectionRun.collection_date, BankHub.code)
                .join(BankHub, BankHub.id == CollectionRun.hub_id))}
            write_demo_statement(session, var_dir / "inbox" / "camt053", collection_runs["KBC-BIB"][1])
        runs["camt053_import"] = _dag("camt053_import").test()
        for dag_id, run in runs.items():
            assert str(run.state).endswith("success"), (dag_id, run.state)

        now = datetime.now(timezone.utc)
        with transaction(engine) as session:  # two POM items: one still to refund, one already handled
            session.add_all([
                ControlListItem(kind="overpaid", reason="5.00 paid through POM P-1 on fp:BIB:1: 1.00 too much",
                                action="refund 1.00 to the payer", amount=Decimal("1.00"), source="pom",
                                details={"reference": "fp:BIB:9999", "pom_id": "P-1", "channel": "bancontact"},
                                created_at=now + timedelta(minutes=1)),
                ControlListItem(kind="closed_reference", reason="handled-already", action="refund",
                                amount=Decimal("7.00"), source="pom", details={"reference": "fp:BIB:9998"},
                                created_at=now, resolved_at=now, resolved_by="test", resolution="handled",
                                resolution_note="refunded"),
            ])

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        process, log = _start_server(home, port, {"INNEN_VAR_DIR": str(var_dir), "INNEN_DB_URL": db_url})
        try:
            _wait_healthy(process, base, log)
            answer = httpx.post(f"{base}/auth/token", json={"username": "finance", "password": PASSWORD}, timeout=30)
            assert answer.status_code in (200, 201), answer.text
            yield Served(base, answer.json()["access_token"], var_dir, {d: r.run_id for d, r in runs.items()},
                         sorted(loi for loi, _day in collection_runs.values()), log)
        finally:
            _stop(process)
        engine.dispose()


def _reports_url(served: Served, dag_id: str) -> str:
    from urllib.parse import quote

    return f"{served.base}/innen-finance/runs/{dag_id}/{quote(served.runs[dag_id], safe='')}"


def test_without_airflows_login_nothing_is_shown(served: Served) -> None:
    url = _reports_url(served, "mandate_execution")
    for target in (f"{url}/reports", f"{url}/file?path=mandate_check/{RUN_DAY}/active-ok.csv",
                   f"{url}/files/mandate_check/{RUN_DAY}/active-ok.csv",
                   f"{served.base}/innen-finance/finance", f"{served.base}/innen-finance/finance/open.csv"):
        answer = httpx.get(target, timeout=30, follow_redirects=False)
        assert answer.status_code in (401, 403, 302, 307), (target, answer.status_code)
        assert "mandate" not in answer.text.lower() or answer.status_code != 200
        forged = httpx.get(target, headers={"Authorization": "Bearer not-a-token"}, timeout=30)
        assert forged.status_code in (401, 403), (target, forged.status_code)


def test_the_reports_tab_lists_the_runs_reports_and_serves_them(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.token}"}
    url = _reports_url(served, "mandate_execution")
    page = httpx.get(f"{url}/reports", headers=auth, timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert f"Mandate check {RUN_DAY}" in page.text
    assert f'href="files/mandate_check/{RUN_DAY}/index.html"' in page.text
    assert f'href="files/mandate_check/{RUN_DAY}/active-ok.csv"' in page.text

    # The report's page, and the CSV its own relative link leads to (a download).
    report = httpx.get(f"{url}/files/mandate_check/{RUN_DAY}/index.html", headers=auth, timeout=30)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert 'href="active-ok.csv"' in report.text
    csv = httpx.get(f"{url}/files/mandate_check/{RUN_DAY}/active-ok.csv", headers=auth, timeout=30)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    disposition = csv.headers["content-disposition"]
    assert disposition.startswith("attachment") and "active-ok.csv" in disposition
    assert csv.content.startswith("\ufeffmandate;".encode())
    assert csv.content == (served.var_dir / "reports" / "mandate_check" / str(RUN_DAY) / "active-ok.csv").read_bytes()
    by_query = httpx.get(f"{url}/file", params={"path": f"mandate_check/{RUN_DAY}/active-ok.csv"}, headers=auth,
                         timeout=30)
    assert by_query.status_code == 200 and by_query.content == csv.content

    # The UI's own way in: the _token cookie of the same origin.
    cookie = httpx.get(f"{url}/reports", cookies={"_token": served.token}, timeout=30)
    assert cookie.status_code == 200 and f"Mandate check {RUN_DAY}" in cookie.text

    for refused in ("../../etc/passwd", "/etc/passwd", f"mandate_check/{RUN_DAY}/due-mandate-ids.txt",
                    f"mandate_check/{RUN_DAY}/../../innen.sqlite", "../innen.sqlite"):
        answer = httpx.get(f"{url}/file", params={"path": refused}, headers=auth, timeout=30)
        assert answer.status_code == 404, (refused, answer.status_code)
    assert httpx.get(f"{url}/files/..%2F..%2F..%2Fetc%2Fpasswd", headers=auth, timeout=30).status_code == 404
    # Another run's report is not served through this run.
    (control_list,) = (served.var_dir / "reports" / "camt053").glob("*/control-list.csv")
    other = control_list.relative_to(served.var_dir / "reports").as_posix()
    assert httpx.get(f"{url}/file", params={"path": other}, headers=auth, timeout=30).status_code == 404
    camt = _reports_url(served, "camt053_import")
    assert httpx.get(f"{camt}/file", params={"path": other}, headers=auth, timeout=30).status_code == 200
    assert "Control list — statement" in httpx.get(f"{camt}/reports", headers=auth, timeout=30).text

    assert httpx.get(f"{served.base}/innen-finance/runs/mandate_execution/no-such-run/reports", headers=auth,
                     timeout=30).status_code == 404


def test_a_bank_file_run_shows_each_files_summary(served: Served) -> None:
    from include.finance.models import CollectionRun

    page = httpx.get(f"{_reports_url(served, 'pain_export')}/reports",
                     headers={"Authorization": f"Bearer {served.token}"}, timeout=30)
    assert page.status_code == 200
    with transaction(get_engine(f"sqlite:///{served.var_dir.parent / 'innen.sqlite'}"), readonly=True) as session:
        for run in session.scalars(select(CollectionRun)):
            assert f"Bank file of {run.loi}" in page.text
            assert run.file_sha256 in page.text and f"{run.total_amount:.2f}" in page.text
            assert Path(run.file_path).name in page.text


def test_the_finance_page(served: Served) -> None:
    auth = {"Authorization": f"Bearer {served.token}"}
    page = httpx.get(f"{served.base}/innen-finance/finance", headers=auth, timeout=30)
    assert page.status_code == 200, page.text
    text = page.text
    for title in ("Approvals waiting", "Open control-list items", "Bank files released today",
                  "References to refund"):
        assert title in text
    for loi in served.lois:  # exported by pain_export just now
        assert loi in text
    assert "fp:BIB:9999" in text and "handled-already" not in text

    csv = httpx.get(f"{served.base}/innen-finance/finance/refunds.csv", headers=auth, timeout=30)
    assert csv.status_code == 200 and csv.headers["content-disposition"].startswith("attachment")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("item;since;source;kind;reference;amount to refund")
    assert any(";pom;overpaid;fp:BIB:9999;1.00;" in line for line in lines)
    assert any(";bank_statement;overpaid;" in line for line in lines)  # the demo statement's over-payment
    assert httpx.get(f"{served.base}/innen-finance/finance/nothing.csv", headers=auth, timeout=30).status_code == 404


def test_the_finance_sections(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from include.finance_page import Approval, finance_sections

    engine = get_engine(f"sqlite:///{served.var_dir.parent / 'innen.sqlite'}")
    today = datetime.now(LOCAL_ZONE).date()
    waiting = Approval("pain_export", "manual__x", "approve_release", -1, "Release fj:BIB:1?",
                       datetime.now(timezone.utc))
    with transaction(engine, readonly=True) as session:
        approvals, open_items, released, refunds = finance_sections(session, today, [waiting])
        tomorrow = finance_sections(session, today + timedelta(days=1))[2]
    assert approvals.rows[0][:4] == ["Release fj:BIB:1?", "pain_export", "manual__x", "approve_release"]
    assert approvals.links == ["/dags/pain_export/runs/manual__x/tasks/approve_release/required_actions"]

    assert open_items.rows and open_items.rows[0][2:4] == ["pom", "overpaid"]  # the newest first
    since = [row[1] for row in open_items.rows]
    assert since == sorted(since, reverse=True)
    assert all(row[9] != "handled-already" for row in open_items.rows)
    assert {row[2] for row in open_items.rows} == {"pom", "bank_statement"}
    assert all(row[4] for row in open_items.rows if row[2] == "bank_statement")  # statement named
    assert open_items.amount_total == sum((Decimal(row[6]) for row in open_items.rows if row[6]), Decimal("0.00"))

    assert sorted(row[0] for row in released.rows) == served.lois and not tomorrow.rows
    assert released.amount_total == sum((Decimal(row[6]) for row in released.rows), Decimal("0.00"))
    assert {row[3] for row in refunds.rows} <= {"overpaid", "closed_reference"}
    assert any(row[4] == "fp:BIB:9999" and row[5] == "1.00" for row in refunds.rows)


def test_a_bank_file_is_shown_once_per_run_while_it_waits_and_once_answered() -> None:
    """With finance's approval (the default) the export returns the staged file (no path in the outbox yet), and a
    rejection returns no file at all: the Reports tab said "This run wrote no report" while a file waited and after
    it was rejected. Without approval, the export's and the release's results (the same) showed the file twice."""
    from include.run_reports import reports_of

    staged = {"run": "fj:BIB:1", "approval_id": 4, "attempt": 1, "approval_required": True, "status": "waiting",
              "four_eyes": True, "requested_by": "fiona", "file_name": "KBC-BIB_fj-BIB-1.xml", "sha256": "ab" * 32,
              "transactions": 108, "total": "6027.76"}
    other = {**staged, "run": "fj:SKA:2", "approval_id": 5, "file_name": "KBC-SKA_fj-SKA-2.xml", "sha256": "cd" * 32,
             "transactions": 3, "total": "30.00"}
    released = {"run": "fj:BIB:1", "status": "exported", "export_format": "SEPA",
                "file_path": "/srv/innen/outbox/KBC-BIB_fj-BIB-1.xml", "sha256": "ab" * 32, "transactions": 108,
                "total": "6027.76", "message": "", "approved_by": "finance2", "already": False}
    rejected = {"run": "fj:SKA:2", "status": "ready", "rejected_by": "finance2", "reason": "wrong date",
                "already": False}

    waiting = reports_of("pain_export", {"runs_to_export": ["fj:BIB:1", "fj:SKA:2"],
                                         "bank_file.export_run": [staged, other]})
    assert [dict(r.facts) for r in waiting] == [
        {"collection run": "fj:BIB:1", "status": "waiting", "format": "-", "file": "KBC-BIB_fj-BIB-1.xml",
         "SHA-256": "ab" * 32, "transactions": "108", "total (EUR)": "6027.76", "message": "-"},
        {"collection run": "fj:SKA:2", "status": "waiting", "format": "-", "file": "KBC-SKA_fj-SKA-2.xml",
         "SHA-256": "cd" * 32, "transactions": "3", "total (EUR)": "30.00", "message": "-"},
    ]
    answered = reports_of("pain_export", {
        "runs_to_export": ["fj:BIB:1", "fj:SKA:2"], "bank_file.export_run": [staged, other],
        "bank_file.approve": [{"verdict": "release", "by": "finance2", "reason": None},
                              {"verdict": "reject", "by": "finance2", "reason": "wrong date"}],
        "bank_file.release": [released, rejected]})
    assert [r.title for r in answered] == ["Bank file of fj:BIB:1", "Bank file of fj:SKA:2"]
    assert dict(answered[0].facts) == {
        "collection run": "fj:BIB:1", "status": "exported", "format": "SEPA", "file": "KBC-BIB_fj-BIB-1.xml",
        "SHA-256": "ab" * 32, "transactions": "108", "total (EUR)": "6027.76", "message": "-",
        "approved by": "finance2"}
    assert dict(answered[1].facts) == {
        "collection run": "fj:SKA:2", "status": "ready", "format": "-", "file": "KBC-SKA_fj-SKA-2.xml",
        "SHA-256": "cd" * 32, "transactions": "3", "total (EUR)": "30.00", "message": "-",
        "rejected by": "finance2", "reason": "wrong date"}

    direct = {**released, "approval_required": False}
    del direct["approved_by"], direct["already"]
    (once,) = reports_of("pain_export", {"bank_file.export_run": [direct], "bank_file.release": [direct]})
    assert dict(once.facts)["status"] == "exported"
