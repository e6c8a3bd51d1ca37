"""Finance working in Airflow's UI, in a real browser: log in, check the waiting bank file, approve it, read reports.

The same Airflow as ``test_finance_in_airflow.py`` (api-server, scheduler, dag-processor; FAB auth manager, Innen's
roles, one user per role) and the same state: the demo institution, its mandates executed, ``pain_export``
triggered by ``finance`` over REST, two bank files waiting for approval. Then Debian's chromium, driven by
Playwright's Python package (``executable_path``: Playwright downloads no browser), does what a treasurer does:
``finance2`` (four eyes: ``finance`` triggered the export) logs in through FAB's login form, opens the approval from
Browse → Required Actions, checks the totals against Innen's database, approves, and reads the run's "Reports" tab
and the "Finance" page. Every assertion reads what the browser shows, or Innen's database.

Screenshots of every step are kept in ``var/test-artefacts/browser/`` (a failing step leaves ``…-failed.png``).
The tests run in file order and build on each other, like a person's session.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from sqlalchemy import func, select

from include.config import PROJECT_ROOT
from include.finance.db import get_engine, transaction
from include.finance.models import BankFileApproval, CollectionRun, ControlListItem
from sandbox.airflow_services import AirflowServices
from tests.e2e.bank_files_waiting import bank_files_waiting

pytestmark = pytest.mark.timeout(900)

CHROMIUM = Path("/usr/bin/chromium")  # Debian's (`make browser`)
ARTEFACTS = PROJECT_ROOT / "var" / "test-artefacts" / "browser"
APPROVER = "finance2"  # role finance; "finance" triggered the export, so may not approve it
UI_TIMEOUT = 60_000  # ms: a slow machine, a React UI that loads its data after the page
RELEASE_TIMEOUT = 200  # s: the answer, the task resuming, the release task; a retry after retry_delay (2 min) at worst


@dataclass
class Innen:
    services: AirflowServices
    db_url: str
    var_dir: Path
    export_run: str  # pain_export's run, triggered by "finance"
    waiting: dict[str, int]  # collection run → map index of its bank_file.approve


@dataclass(frozen=True)
class Waiting:
    """What Innen's database says about the bank file the browser approves."""

    loi: str
    map_index: int
    approval_id: int
    file_name: str
    sha256: str
    total: str  # "6027.76"
    transactions: int


@pytest.fixture(scope="module")
def innen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Innen]:
    """A real Airflow, the demo institution, two bank files waiting for approval (tests/e2e/bank_files_waiting.py)."""
    with bank_files_waiting(tmp_path_factory.mktemp("airflow-browser")) as state:
        yield Innen(state.services, state.db_url, state.var_dir, state.export_run,
                    {loi: ti["map_index"] for loi, ti in state.waiting.items()})


def _approval_and_run(innen: Innen, loi: str) -> tuple[BankFileApproval, CollectionRun]:
    with transaction(get_engine(innen.db_url), readonly=True) as session:
        row = session.execute(
            select(BankFileApproval, CollectionRun).join(CollectionRun).where(CollectionRun.loi == loi)
            .order_by(BankFileApproval.attempt.desc())).first()
        assert row is not None, f"no bank file approval for {loi}"
        session.expunge_all()
        return row[0], row[1]


def _open_items(innen: Innen) -> int:
    with transaction(get_engine(innen.db_url), readonly=True) as session:
        return int(session.scalar(select(func.count()).select_from(ControlListItem)
                                  .where(ControlListItem.resolved_at.is_(None))) or 0)


def _waiting(innen: Innen, loi: str) -> Waiting:
    approval, run = _approval_and_run(innen, loi)
    assert approval.status == "waiting" and run.status == "ready", (approval.status, run.status)
    return Waiting(loi, innen.waiting[loi], approval.id, Path(approval.staged_path).name, approval.file_sha256,
                   f"{run.total_amount:.2f}", run.transaction_count)


@pytest.fixture(scope="module")
def chosen(innen: Innen) -> Waiting:
    """The bank file the browser approves (the other one keeps waiting), as Innen's database has it before."""
    return _waiting(innen, sorted(innen.waiting)[0])


@pytest.fixture(scope="module")
def other(innen: Innen) -> Waiting:
    return _waiting(innen, sorted(innen.waiting)[1])


# -- the browser ----------------------------------------------------------------------------------------------------


def _chromium_problem() -> str | None:
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        return (f"Debian's chromium is missing ({CHROMIUM}): the browser tests need it; install it with `make browser` "
                "(apt-get install chromium). Playwright downloads no browser here.")
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    problem = _chromium_problem()
    if problem:
        pytest.fail(problem)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTEFACTS.glob("*.png"):  # this run's screenshots only
        old.unlink()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser: Browser, innen: Innen) -> Iterator[Page]:
    """One person's browser tab for the whole module, not logged in yet."""
    context = browser.new_context(viewport={"width": 1440, "height": 1100}, locale="en-GB")
    context.set_default_timeout(UI_TIMEOUT)
    context.set_default_navigation_timeout(UI_TIMEOUT)
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def shot(page: Page, name: str) -> Path:
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@contextmanager
def step(page: Page, name: str) -> Iterator[None]:
    """A failing step leaves a screenshot of what the browser showed then."""
    try:
        yield
    except BaseException:
        try:
            shot(page, f"{name}-failed")
        except Exception:  # the page may be gone; the original failure matters
            pass
        raise


def _ui(innen: Innen, path: str) -> str:
    return innen.services.base + path


def _run_path(innen: Innen) -> str:
    return f"/dags/pain_export/runs/{quote(innen.export_run, safe='')}"


def _wait_for_path(page: Page, innen: Innen, path: str) -> None:
    """Wait until the browser is at ``path`` (or below it), however the UI encoded the run id in the address."""
    wanted = unquote(_ui(innen, path))
    page.wait_for_url(lambda url: unquote(url).startswith(wanted))


def _wait_for(innen: Innen, done: Callable[[], Any], what: str, timeout: float = RELEASE_TIMEOUT) -> Any:
    """Poll ``done()`` until it is truthy; fails at once when an Airflow component stopped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in innen.services.processes.items():
            if process.poll() is not None:
                pytest.fail(f"Airflow's {name} stopped (exit {process.returncode}) while waiting for {what}:\n"
                            f"{innen.services.log(name)[-2000:]}")
        result = done()
        if result:
            return result
        time.sleep(0.5)
    pytest.fail(f"not {what} after {timeout} s\n{innen.services.task_logs('pain_export', innen.export_run)[-4000:]}")


def _shows(locator: Locator, timeout: float = 30_000) -> bool:
    """Whether the page shows ``locator`` within ``timeout`` ms (for a failure message of our own)."""
    try:
        expect(locator).to_be_visible(timeout=timeout)
    except AssertionError:
        return False
    return True


def _plugins_answer(innen: Innen, user: str) -> str:
    """Why a plugin's view may be missing from the UI: what ``GET /api/v2/plugins`` (the UI's source) answers."""
    with innen.services.client(user) as client:
        answer = client.get("/api/v2/plugins")
    return f"GET /api/v2/plugins as {user}: {answer.status_code} {answer.text[:200]}"


# -- the tests, in a person's order ---------------------------------------------------------------------------------


def test_debians_chromium_is_installed() -> None:
    problem = _chromium_problem()
    assert problem is None, problem


def test_finance2_logs_in_through_the_fab_login_form(page: Page, innen: Innen) -> None:
    with step(page, "01-login"):
        page.goto(_ui(innen, "/"))
        page.wait_for_url(re.compile(r"/auth/login/"))  # the UI sends a stranger to the auth manager's login page
        form = page.locator("form[name=login]")
        expect(form).to_be_visible(timeout=UI_TIMEOUT)
        form.locator("#username").fill(APPROVER)
        form.locator("#password").fill(innen.services.passwords[APPROVER])
        shot(page, "01-login")
        form.locator("input[type=submit]").click()
        page.wait_for_url(lambda url: "/auth/login" not in url)
        assert "_token" in {cookie["name"] for cookie in page.context.cookies()}  # the UI's JWT
        expect(page.get_by_role("button", name="Browse")).to_be_visible(timeout=UI_TIMEOUT)


def test_the_waiting_approval_shows_the_totals_of_innens_database(page: Page, innen: Innen, chosen: Waiting) -> None:
    subject = (f"Approve bank file {chosen.file_name}: {chosen.transactions} collections, "
               f"EUR {chosen.total}?")
    with step(page, "02-required-action"):
        # Browse → Required Actions lists what waits for a person; the subject opens the task's Required Actions tab.
        page.get_by_role("button", name="Browse").click()
        page.get_by_role("menuitem", name="Required Actions").click()
        page.wait_for_url(re.compile(r"/required_actions"))
        page.get_by_role("link", name=subject, exact=True).click()
        route = f"{_run_path(innen)}/tasks/bank_file.approve/mapped/{chosen.map_index}/required_actions"
        _wait_for_path(page, innen, route)

        expect(page.get_by_text(subject, exact=True)).to_be_visible(timeout=UI_TIMEOUT)
        expect(page.get_by_text(chosen.file_name, exact=True).first).to_be_visible()

        def row(label: str) -> Any:  # a row of the body's Markdown table, found by its label cell
            return page.locator("tr").filter(has=page.get_by_role("cell", name=label, exact=True))

        expect(row("Control sum")).to_have_text(re.compile(rf"Control sum\s*EUR {re.escape(chosen.total)}$"))
        expect(row("Transactions")).to_have_text(re.compile(rf"Transactions\s*{chosen.transactions}$"))
        expect(row("SHA-256")).to_have_text(re.compile(rf"SHA-256\s*{chosen.sha256}$"))
        expect(page.get_by_role("link", name="View the file")).to_have_attribute(
            "href", f"/innen-finance/bank-files/{chosen.approval_id}")
        expect(page.get_by_text("Four eyes: finance triggered this export")).to_be_visible()
        expect(page.get_by_test_id("hitl-option-Approve")).to_be_enabled()
        expect(page.get_by_test_id("hitl-option-Reject")).to_be_enabled()
        shot(page, "02-required-action")


def test_finance2_approves_and_the_file_is_released(page: Page, innen: Innen, chosen: Waiting, other: Waiting) -> None:
    with step(page, "03-approved"):
        expect(page.get_by_text(chosen.file_name, exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
        page.get_by_test_id("hitl-option-Approve").click()
        expect(page.get_by_text(re.compile(rf"Response received at .* from {APPROVER}"))).to_be_visible(
            timeout=UI_TIMEOUT)

        def released() -> bool:
            approval, run = _approval_and_run(innen, chosen.loi)
            if approval.status in ("rejected", "refused") or run.status == "failed":
                pytest.fail(f"{chosen.loi}: approval {approval.status} by {approval.decided_by}, run {run.status}: "
                            f"{run.error}")
            return run.status == "exported" and approval.status == "approved"

        _wait_for(innen, released, f"{chosen.loi} exported after {APPROVER}'s approval")
        approval, run = _approval_and_run(innen, chosen.loi)
        assert approval.decided_by == APPROVER
        assert run.file_sha256 == chosen.sha256 and Path(run.file_path).parent == innen.var_dir / "outbox"
        other_approval, other_run = _approval_and_run(innen, other.loi)
        assert other_approval.status == "waiting" and other_run.status == "ready"  # one answer, one file

        page.reload()  # the task instance, now done
        expect(page.get_by_text(re.compile(rf"Response received at .* from {APPROVER}"))).to_be_visible(
            timeout=UI_TIMEOUT)
        expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=UI_TIMEOUT)
        shot(page, "03-approved")


def test_the_runs_reports_tab_shows_the_released_bank_file(page: Page, innen: Innen, chosen: Waiting) -> None:
    _approval, run = _approval_and_run(innen, chosen.loi)
    assert run.status == "exported", "the approval test releases the file first; run the module in order"
    with step(page, "04-reports-tab"):
        page.goto(_ui(innen, _run_path(innen)))
        expect(page.get_by_role("link", name="Task Instances")).to_be_visible(timeout=UI_TIMEOUT)
        tab = page.get_by_role("link", name="Reports", exact=True)
        if not _shows(tab):
            pytest.fail(f"the run page shows {APPROVER} no 'Reports' tab (the plugin's dag_run external view); "
                        f"{_plugins_answer(innen, APPROVER)}. Airflow's UI lists plugins' views only to users "
                        "allowed to read Plugins ('can read on Plugins').")
        tab.click()
        _wait_for_path(page, innen, f"{_run_path(innen)}/plugin/innen-reports")
        frame = page.frame_locator('iframe[src*="/innen-finance/runs/pain_export/"]')
        section = frame.locator("section").filter(
            has=frame.get_by_role("heading", name=f"Bank file of {chosen.loi}", exact=True))
        expect(section).to_be_visible(timeout=UI_TIMEOUT)
        expect(frame.locator("p.note").first).to_contain_text(innen.export_run)

        def fact(label: str) -> Any:
            return section.locator("tr").filter(has=frame.locator("th", has_text=re.compile(rf"^{re.escape(label)}$")))

        expect(fact("file")).to_have_text(re.compile(rf"file\s*{re.escape(Path(run.file_path).name)}$"))
        expect(fact("status")).to_have_text(re.compile(r"status\s*exported$"))
        expect(fact("SHA-256")).to_have_text(re.compile(rf"SHA-256\s*{chosen.sha256}$"))
        # what finance checks of a released file: its count and total, from the run's task results
        summary = "the Reports tab's bank-file summary (bank_file.release's return value)"
        expect(fact("transactions"), f"{summary}: transactions").to_have_text(
            re.compile(rf"transactions\s*{chosen.transactions}$"))
        expect(fact("total (EUR)"), f"{summary}: total").to_have_text(
            re.compile(rf"total \(EUR\)\s*{re.escape(chosen.total)}$"))
        shot(page, "04-reports-tab")


def test_the_finance_page_lists_the_control_list_and_the_released_file(
        page: Page, innen: Innen, chosen: Waiting, other: Waiting) -> None:
    _approval, run = _approval_and_run(innen, chosen.loi)
    assert run.status == "exported", "the approval test releases the file first; run the module in order"
    with step(page, "05-finance-page"):
        page.goto(_ui(innen, "/"))
        page.get_by_role("button", name="Browse").click()
        entry = page.get_by_role("menuitem", name="Finance")
        if not _shows(entry):
            pytest.fail(f"Browse shows {APPROVER} no 'Finance' (the plugin's nav view); "
                        f"{_plugins_answer(innen, APPROVER)}")
        entry.click()
        _wait_for_path(page, innen, "/plugin/innen-finance")
        frame = page.frame_locator('iframe[src$="/innen-finance/finance"]')
        expect(frame.get_by_role("heading", name="Finance", exact=True)).to_be_visible(timeout=UI_TIMEOUT)
        expect(frame.get_by_role("heading", name="Open control-list items", exact=True)).to_be_visible()
        expect(frame.locator("h2#open + p.note")).to_have_text(re.compile(rf"^{_open_items(innen)} open;"))

        released = frame.locator("h2#released + p.note + table")
        expect(frame.get_by_role("heading", name="Bank files released today", exact=True)).to_be_visible()
        expect(frame.locator("h2#released + p.note")).to_contain_text("1 bank file(s)")
        row = released.locator("tbody tr").filter(has_text=chosen.loi)
        expect(row).to_have_count(1)
        for shown in (chosen.loi, Path(run.file_path).name, str(chosen.transactions), chosen.total, "exported",
                      chosen.sha256):
            expect(row).to_contain_text(shown)

        waiting = frame.locator("h2#approvals + p.note + table tbody tr")  # the other file still waits
        expect(waiting).to_have_count(1)
        expect(waiting).to_contain_text(f"Approve bank file {other.file_name}")
        shot(page, "05-finance-page")
