"""Finance gets one e-mail when ``camt053_import`` puts new items on a control list (a local SMTP sink)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from include.finance.db import transaction
from include.finance.models import BankHub, BankStatement, CollectionRun, ControlListItem
from include.sepa.identifiers import mask_iban
from tests.integration.test_dags import LOGICAL, _dag, _task_states
from tests.smtp_sink import SmtpSink as _SmtpSink


@pytest.fixture
def smtp_sink() -> Iterator[_SmtpSink]:
    server = _SmtpSink()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _statement_in_inbox(demo, var_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from sandbox.demo_institution import write_demo_statement

    assert str(_dag("mandate_execution").test(logical_date=LOGICAL).state).endswith("success")
    assert str(_dag("pain_export").test().state).endswith("success")
    with transaction(demo, readonly=True) as session:
        day = session.scalar(select(CollectionRun.collection_date).join(BankHub, BankHub.id == CollectionRun.hub_id)
                             .where(BankHub.code == "KBC-BIB"))
        write_demo_statement(session, var_dir / "inbox" / "camt053", day)


def test_finance_is_mailed_about_new_control_list_items(demo, var_dir: Path, smtp_sink: _SmtpSink,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    port = smtp_sink.server_address[1]
    monkeypatch.setenv("AIRFLOW_CONN_INNEN_FINANCE_MAIL", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"to": "finance@example.be, controller@example.be", "from_email": "innen@example.be",
                  "disable_ssl": True, "disable_tls": True, "timeout": 10, "retry_limit": 0},
    }))
    _statement_in_inbox(demo, var_dir)

    run = _dag("camt053_import").test()
    assert str(run.state).endswith("success"), _task_states(run)
    with transaction(demo, readonly=True) as session:
        statement = session.scalars(select(BankStatement)).one()
        items = len(session.scalars(select(ControlListItem).where(ControlListItem.statement_id == statement.id)).all())
    assert items > 0
    assert len(smtp_sink.messages) == 1
    mail = smtp_sink.messages[0]
    masked = mask_iban(statement.account)
    assert mail["Subject"] == (f"Innen: {items} new control-list item{'s' if items > 1 else ''} "
                               f"(statement {statement.statement_id} of {masked})")
    assert mail["From"] == "innen@example.be"
    assert sorted(smtp_sink.recipients[0]) == ["controller@example.be", "finance@example.be"]
    html = next(part for part in mail.walk() if part.get_content_type() == "text/html").get_content()
    assert masked in html and "index.html" in html
    assert statement.account not in html  # never the whole account number

    again = _dag("camt053_import").test()  # nothing new in the inbox: no mail
    assert str(again.state).endswith("success")
    assert len(smtp_sink.messages) == 1


def test_without_the_connection_the_import_succeeds_and_sends_nothing(demo, var_dir: Path, smtp_sink: _SmtpSink,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_INNEN_FINANCE_MAIL", raising=False)
    _statement_in_inbox(demo, var_dir)
    run = _dag("camt053_import").test()
    assert str(run.state).endswith("success"), _task_states(run)
    assert _task_states(run)["notify_finance"].endswith("success")
    assert smtp_sink.messages == []
