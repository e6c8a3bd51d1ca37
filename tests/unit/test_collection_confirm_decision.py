"""collection_confirm's question and answer: what finance is shown, what an answer means, who it names."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from include.sepa.collection_confirm import (
    ABORT, AMOUNT_PATTERN, CONFIRM, Decision, approval_facts, confirmation_summary, decided_actor, read_decision,
)

AT = datetime(2026, 11, 24, 9, 30, tzinfo=timezone.utc)
FIONA = {"id": "7", "name": "fiona"}


def _answer(options: list[str] | None, amount: object = "50.75", user: object = FIONA, at: object = AT) -> dict:
    params = {} if amount is ... else {"received_amount": amount}
    return {"chosen_options": options, "params_input": params, "responded_by_user": user, "responded_at": at}


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        # Confirm: the amount entered, with two places, by the person who answered
        (_answer([CONFIRM]), Decision("confirm", "fiona", "50.75", "50.75", AT.isoformat())),
        (_answer([CONFIRM], "12.5"), Decision("confirm", "fiona", "12.50", "12.5", AT.isoformat())),
        (_answer([CONFIRM], "0"), Decision("confirm", "fiona", "0.00", "0", AT.isoformat())),
        (_answer([CONFIRM], " 50.75 "), Decision("confirm", "fiona", "50.75", "50.75", AT.isoformat())),
        (_answer([CONFIRM], at="2026-11-24T09:30:00+00:00"),  # as a string once through a JSON XCom
         Decision("confirm", "fiona", "50.75", "50.75", "2026-11-24T09:30:00+00:00")),
        (_answer([CONFIRM], user={"id": "7", "name": ""}), Decision("confirm", "7", "50.75", "50.75", AT.isoformat())),
        # Abort: nothing to book, whatever the amount field holds; it is kept for the audit
        (_answer([ABORT]), Decision("abort", "fiona", None, "50.75", AT.isoformat())),
        (_answer([ABORT], None), Decision("abort", "fiona", None, None, AT.isoformat())),
        (_answer([ABORT], "not money"), Decision("abort", "fiona", None, "not money", AT.isoformat())),
        (_answer([ABORT], ...), Decision("abort", "fiona", None, None, AT.isoformat())),
    ],
    ids=["confirm", "confirm-one-place", "confirm-zero", "confirm-blanks", "confirm-at-as-text", "confirm-user-id",
         "abort", "abort-no-amount", "abort-bad-amount", "abort-no-params"],
)
def test_an_answer_means(answer: dict, expected: Decision) -> None:
    assert read_decision(answer) == expected


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (None, "no answer"),
        ("Confirm", "no answer"),
        (_answer([]), "expected one of Confirm or Abort"),
        (_answer(None), "expected one of Confirm or Abort"),
        (_answer([CONFIRM, ABORT]), "expected one of Confirm or Abort"),
        (_answer(["Approve"]), "expected one of Confirm or Abort"),
        (_answer(["confirm"]), "expected one of Confirm or Abort"),  # options are matched exactly
        (_answer([CONFIRM], user=None), "does not say who"),
        (_answer([CONFIRM], user={"id": "", "name": ""}), "does not say who"),
        (_answer([ABORT], user={}), "does not say who"),  # an abort is audited: it needs a name too
        (_answer([CONFIRM], None), "needs the amount received"),
        (_answer([CONFIRM], ""), "needs the amount received"),
        (_answer([CONFIRM], "  "), "needs the amount received"),
        (_answer([CONFIRM], ...), "needs the amount received"),
        (_answer([CONFIRM], "12.345"), "not an amount"),
        (_answer([CONFIRM], "-1.00"), "not an amount"),
        (_answer([CONFIRM], "1,00"), "not an amount"),
        (_answer([CONFIRM], "1e3"), "not an amount"),
        (_answer([CONFIRM], "٥٠.٧٥"), "not an amount"),  # digits, but not ASCII ones
        (_answer([CONFIRM], 50.75), "not an amount"),  # never a float
        (_answer([CONFIRM], 50), "not an amount"),
    ],
)
def test_an_unclear_answer_books_nothing(answer: object, reason: str) -> None:
    decision = read_decision(answer)  # type: ignore[arg-type]
    assert decision.action == "invalid" and decision.amount is None
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("base", "verb", "user", "expected"),
    [
        ("airflow:collection_confirm/manual__1/book by alice", "confirmed", "fiona",
         "airflow:collection_confirm/manual__1/book by alice confirmed by fiona"),
        ("airflow:collection_confirm/manual__1/book", "aborted", "fiona",
         "airflow:collection_confirm/manual__1/book aborted by fiona"),
        ("a" * 250, "confirmed", "fiona", "a" * 231 + " confirmed by fiona"),  # the run is cut, not who decided
        ("a" * 10, "confirmed", "f" * 300, "a" * 10 + (" confirmed by " + "f" * 300)[:125]),
    ],
    ids=["short", "abort", "long-run", "long-name"],
)
def test_the_actor_names_who_decided_within_250_characters(base: str, verb: str, user: str, expected: str) -> None:
    actor = decided_actor(base, verb, user)
    assert actor == expected and len(actor) <= 250


def _preview(paid_otherwise: int = 0, others: int = 2, given: str | None = "1.00") -> dict:
    collections = [
        {"end_to_end_id": f"E2E_{n}", "reference": f"fp:BIB:{n}", "amount": "25.00", "open_amount": "20.00",
         "status": "exported", "note": "already paid some other way: 5.00 of 25.00", "counted": True}
        for n in range(paid_otherwise)
    ]
    collections += [
        {"end_to_end_id": "E2E_ok", "reference": "fp:BIB:ok", "amount": "8.25", "open_amount": "8.25",
         "status": "exported", "note": "", "counted": True},
        {"end_to_end_id": "E2E_ret", "reference": "fp:BIB:ret", "amount": "9.00", "open_amount": "9.00",
         "status": "returned", "note": "returned (AC04): not counted", "counted": False},
    ][:others]
    return {"run": "fj:BIB:12", "received": given or "0.00", "open_total": "50.75", "difference": "-49.75",
            "dry_run": True, "booked": False, "message": "dry run: open total 50.75; received 1.00; difference -49.75",
            "collections": collections, "report": "/srv/var/reports/collection_confirm/fj-BIB-12/dry-run.html",
            "amount_given": given}


def test_the_summary_shows_the_dry_run() -> None:
    summary = confirmation_summary(_preview(paid_otherwise=1))
    for part in ("**Collection run `fj:BIB:12`**", "Open total: **50.75**", "Amount given: **1.00**",
                 "Difference (given - open total): **-49.75**", "Collections: 3, of which 2 counted",
                 "Outcome of the dry run: dry run: open total 50.75",
                 "**Already (partly) paid some other way** (1):",
                 "- `fp:BIB:0` (`E2E_0`): already paid some other way: 5.00 of 25.00",
                 "Dry-run report: `/srv/var/reports/collection_confirm/fj-BIB-12/dry-run.html`",
                 f"**{CONFIRM}** books", f"**{ABORT}** books nothing"):
        assert part in summary, part
    assert "and 1 more" not in summary and "E2E_ok" not in summary  # only what needs explaining is listed


@pytest.mark.parametrize(("paid", "listed", "more"), [(0, 0, None), (20, 20, None), (21, 20, 1), (500, 20, 480)])
def test_the_summary_lists_at_most_20_collections_paid_otherwise(paid: int, listed: int, more: int | None) -> None:
    summary = confirmation_summary(_preview(paid_otherwise=paid))
    assert summary.count(": already paid some other way") == listed
    if more:
        assert f"- and {more} more (see the report)" in summary
    else:
        assert "more (see the report)" not in summary
    assert ("Already (partly) paid" in summary) == bool(paid)
    assert len(summary.splitlines()) <= 40


def test_the_summary_without_an_amount_asks_for_one() -> None:
    summary = confirmation_summary(_preview(given=None, others=0) | {"report": None})
    assert "Amount given: **none given (0.00 assumed): enter it below**" in summary
    assert "Collections: 0, of which 0 counted" in summary and "Dry-run report" not in summary


def test_markdown_in_values_cannot_break_out_of_code() -> None:
    preview = _preview(paid_otherwise=1)
    preview["collections"][0]["reference"] = "fp:`**x**`"
    assert "- `fp:**x**` (`E2E_0`)" in confirmation_summary(preview)


def test_the_audit_keeps_who_when_and_what_was_shown() -> None:
    decision = read_decision(_answer([CONFIRM]))
    assert approval_facts(decision, _preview()) == {
        "decided_by": "fiona", "decided_at": AT.isoformat(),
        "shown": {"received": "1.00", "open_total": "50.75", "difference": "-49.75",
                  "report": "/srv/var/reports/collection_confirm/fj-BIB-12/dry-run.html"},
    }
    assert approval_facts(decision, {})["shown"] == dict.fromkeys(("received", "open_total", "difference", "report"))


def test_the_pattern_is_the_forms() -> None:
    # dags/collection_confirm.py cannot import it; tests/integration/test_dags.py compares the DAG's forms with it.
    assert AMOUNT_PATTERN == r"^\d+(\.\d{1,2})?$"
