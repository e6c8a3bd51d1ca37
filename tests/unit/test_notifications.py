"""The mail to finance about new control-list items: subject and body from the import's results."""

from __future__ import annotations

from decimal import Decimal

from include.notifications import control_list_mail, new_control_list_items, recipients

IBAN = "BE76 7350 0011 1295"


def _result(*statements, lists=None):  # type: ignore[no-untyped-def]
    return {"statements": list(statements), "control_lists": lists or []}


def _statement(statement: str, items: int, db_id: int | None, account: str = "BE76735000111295") -> dict:
    return {"statement": statement, "account": account, "control_items": items, "statement_db_id": db_id}


def test_one_statement_with_new_items() -> None:
    results = [_result(_statement("2026-327", 3, 7), lists=["var/reports/camt053/BE76_2026-327/index.html"])]
    found = new_control_list_items(results, {7: (Decimal("123.4"), "EUR")})
    subject, body = control_list_mail(found)  # type: ignore[misc]
    assert subject == "Innen: 3 new control-list items (statement 2026-327 of BE76 **** **** 1295)"
    assert "BE76 **** **** 1295" in body and "123.40 EUR" in body
    assert "var/reports/camt053/BE76_2026-327/index.html" in body
    assert "735000111" not in body and "7350 0011" not in body  # the account only masked


def test_several_statements_and_nothing_new() -> None:
    results = [
        _result(_statement("1", 1, 1), _statement("2", 0, 2), lists=["a/index.html", "b/index.html"]),
        None,  # a failed import
        _result(_statement("3", 2, None)),  # already imported: no list of its own
        _result(_statement("4", 2, 4, account=IBAN), lists=["https://innen.example/reports/d"]),
    ]
    found = new_control_list_items(results, {1: (Decimal("5"), "EUR")})
    assert [(f.statement, f.items, f.control_list) for f in found] == [
        ("1", 1, "a/index.html"), ("3", 2, ""), ("4", 2, "https://innen.example/reports/d")]
    subject, body = control_list_mail(found)  # type: ignore[misc]
    assert subject == "Innen: 5 new control-list items (3 statements)"
    assert '<a href="https://innen.example/reports/d">' in body and "5.00 EUR" in body and "0.00" in body
    assert control_list_mail(new_control_list_items([_result(_statement("2", 0, 2))])) is None


def test_one_item_and_escaping() -> None:
    subject, body = control_list_mail(new_control_list_items([_result(_statement("<x>", 1, 1), lists=["a&b"])]))  # type: ignore[misc]
    assert subject.startswith("Innen: 1 new control-list item (")
    assert "&lt;x&gt;" in body and "a&amp;b" in body


def test_recipients() -> None:
    assert recipients({"to": "finance@example.be, boss@example.be;x@example.be"}) == [
        "finance@example.be", "boss@example.be", "x@example.be"]
    assert recipients({"to": ["a@example.be"]}) == ["a@example.be"]
    assert recipients({}) == []


def test_the_control_list_location_is_shown_as_the_import_gives_it_and_the_run_page_is_linked() -> None:
    from include.notifications import run_reports_url

    # As import_file returns it: the account masked, the control list in a folder named after the hub.
    results = [_result(_statement("2026-327", 2, 7, account="BE76 **** **** 1295"),
                       lists=["/srv/var/reports/camt053/KBC-BIB_2026-327_7/index.html"])]
    url = run_reports_url("http://airflow.example/", "camt053_import", "manual__2026-11-24T06:00:00+00:00")
    assert url == ("http://airflow.example/innen-finance/runs/camt053_import/"
                   "manual__2026-11-24T06%3A00%3A00%2B00%3A00/reports")
    subject, body = control_list_mail(new_control_list_items(results), url)  # type: ignore[misc]
    assert "BE76 **** **** 1295" in subject and "/srv/var/reports/camt053/KBC-BIB_2026-327_7/index.html" in body
    assert f'<a href="{url}">' in body
