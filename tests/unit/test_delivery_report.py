"""Reading POM delivery reports: the shapes finance's downloads come in, and the files we refuse."""

from __future__ import annotations

import codecs
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest

from include.pom.delivery_diagnosis import SEED_MESSAGES
from include.pom.delivery_reader import (
    HEADER_LINE_MAX,
    DeliveryReportRefused,
    open_delivery_report,
    read_delivery_report,
)

ENGLISH = "Batch,DocumentId,RecipientName,EmailAddress,Status,Description,Timestamp"


def write(tmp_path: Path, content: bytes, name: str = "report.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_the_simulator_format(tmp_path: Path) -> None:
    text = (
        f"{ENGLISH}\r\n"
        "B-2026-03-16,D1,Zoë Peeters,zoe@example.be,DELIVERED,,2026-03-16T08:00:00+00:00\r\n"
        f"B-2026-03-16,D2,Jan,jan@example.be,FAILED,\"{SEED_MESSAGES['mailbox_full']}\",2026-03-16T09:30:00Z\r\n"
    )
    report = open_delivery_report(write(tmp_path, text.encode()))
    assert (report.encoding, report.delimiter, report.ignored) == ("utf-8", ",", [])
    lines = list(report.lines())
    assert [(l.line_no, l.batch, l.document_id, l.email, l.status, l.kind) for l in lines] == [
        (2, "B-2026-03-16", "D1", "zoe@example.be", "DELIVERED", "delivered"),
        (3, "B-2026-03-16", "D2", "jan@example.be", "FAILED", "mailbox_full"),
    ]
    assert lines[0].recipient_name == "Zoë Peeters"
    assert lines[1].at == datetime(2026, 3, 16, 9, 30, tzinfo=timezone.utc)


def test_a_dutch_portal_download_with_semicolons_bom_and_extra_columns(tmp_path: Path) -> None:
    text = (
        "Tijdstip;Status;Omschrijving;E-mailadres;Naam ontvanger;Document;Batch;Kanaal\n"
        "16/03/2026 09:15;MISLUKT;EmailAddress of recipient is blacklisted.;Ouder@Example.be;Ann;D7;B1;mail\n"
        "\n"
        "16-03-2026 10:00:05;Bezorgd;;ann@example.be;Ann;D7;B1;mail\n"
    )
    report = open_delivery_report(write(tmp_path, codecs.BOM_UTF8 + text.encode()))
    assert (report.encoding, report.delimiter, report.ignored) == ("utf-8-sig", ";", ["Kanaal"])
    first, second = report.lines()
    # A time without offset is Brussels time (UTC+1 in March).
    assert first.at == datetime(2026, 3, 16, 8, 15, tzinfo=timezone.utc)
    assert (first.status, first.kind, first.email, first.line_no) == ("FAILED", "blacklisted", "Ouder@Example.be", 2)
    assert (second.status, second.kind, second.line_no) == ("DELIVERED", "delivered", 4)
    assert second.at == datetime(2026, 3, 16, 9, 0, 5, tzinfo=timezone.utc)


def test_windows_1252_tabs_and_date_and_time_in_two_columns(tmp_path: Path) -> None:
    text = (
        "batch\tdocument id\tontvanger\te-mail\tstatus\tbeschrijving\tdatum\ttijd\n"
        f"B1\tD1\tRené Declercq\trene@example.be\tFAILED\t{SEED_MESSAGES['temporary']}\t2026-07-01\t14:05\n"
    )
    report = open_delivery_report(write(tmp_path, text.encode("cp1252")))
    assert (report.encoding, report.delimiter) == ("cp1252", "\t")
    (line,) = report.lines()
    assert line.recipient_name == "René Declercq" and line.kind == "temporary"  # ’ read from Windows-1252
    assert line.at == datetime(2026, 7, 1, 12, 5, tzinfo=timezone.utc)  # CEST


def test_bytes_from_the_client_and_the_batch_asked_for(tmp_path: Path) -> None:
    data = b"DocumentId,EmailAddress,Status,Description,Timestamp\nD1,a@example.be,DELIVERED,,2026-03-16 08:00:00+00:00\n"
    (line,) = read_delivery_report(data, name="B9.csv", batch="B9")
    assert line.batch == "B9"
    with pytest.raises(DeliveryReportRefused, match=r"^B9\.csv: column Batch: required column Batch is missing"):
        open_delivery_report(data, name="B9.csv")
    mismatch = f"{ENGLISH}\nB8,D1,,a@example.be,DELIVERED,,2026-03-16T08:00:00Z\n".encode()
    with pytest.raises(DeliveryReportRefused) as refused:
        list(read_delivery_report(mismatch, name="B9.csv", batch="B9"))
    assert str(refused.value) == "B9.csv: line 2: column Batch: batch 'B8' in the report of batch 'B9'"


@pytest.mark.parametrize(("preamble", "delimiter"), [
    ("sep=;\r\n", ";"),
    ("SEP=;\n", ";"),
    ("POM - Rapport batch B1\r\nGedownload op 17/03/2026 08:00\r\n\r\n", ";"),
    ("sep=;\nRapport; batch B1\n", ";"),
], ids=["excel-hint", "hint-upper", "title-lines", "hint-and-title"])
def test_lines_above_the_header_are_passed_over(tmp_path: Path, preamble: str, delimiter: str) -> None:
    table = (
        "Batch;Document;Naam;E-mailadres;Status;Omschrijving;Tijdstip\n"
        "B1;D1;Jan, de vader;jan@example.be;DELIVERED;;2026-03-16T08:00:00Z\n"
    )
    report = open_delivery_report(write(tmp_path, (preamble + table).encode()))
    header_at = preamble.count("\n") + 1
    assert (report.delimiter, report.header_line) == (delimiter, header_at)
    (line,) = report.lines()
    assert (line.line_no, line.document_id, line.recipient_name, line.email) == (
        header_at + 1, "D1", "Jan, de vader", "jan@example.be")


def test_two_downloads_put_one_after_the_other(tmp_path: Path) -> None:
    # The second file's header (with its BOM) is passed over wherever it turns up.
    first = f"{ENGLISH}\r\nB1,D1,,a@example.be,DELIVERED,,2026-03-16T08:00:00Z\r\n".encode()
    second = codecs.BOM_UTF8 + f"{ENGLISH}\r\nB2,D2,,b@example.be,DELIVERED,,2026-03-17T08:00:00Z\r\n".encode()
    lines = list(read_delivery_report(write(tmp_path, first + second)))
    assert [(l.line_no, l.batch, l.document_id) for l in lines] == [(2, "B1", "D1"), (4, "B2", "D2")]


def test_a_separator_hint_alone_is_no_report(tmp_path: Path) -> None:
    assert "no header line" in refusal(tmp_path, b"sep=;\r\n").reason


def test_a_title_above_a_table_without_our_columns_names_what_is_missing(tmp_path: Path) -> None:
    refused = refusal(tmp_path, b"Rapport\nKlant;Bedrag\nJan;12\n")
    assert refused.column == "Batch" and "(columns found: Klant, Bedrag)" in refused.reason


@pytest.mark.parametrize(("stamp", "utc"), [
    ("2026-03-16T08:15:00+00:00", (2026, 3, 16, 8, 15, 0)),
    ("2026-03-16T08:15:00.000Z", (2026, 3, 16, 8, 15, 0)),
    ("2026-03-16 08:15:00 +0100", (2026, 3, 16, 7, 15, 0)),
    ("2026-03-16 08:15", (2026, 3, 16, 7, 15, 0)),  # Brussels, winter time
    ("16/03/2026 8:15", (2026, 3, 16, 7, 15, 0)),
    ("16.03.2026 08:15:30", (2026, 3, 16, 7, 15, 30)),
    ("1-7-2026 14:05", (2026, 7, 1, 12, 5, 0)),  # Brussels, summer time
    ("2026/03/16 08:15:00", (2026, 3, 16, 7, 15, 0)),
    ("2026.07.01", (2026, 6, 30, 22, 0, 0)),
], ids=lambda value: value if isinstance(value, str) else None)
def test_the_time_shapes_we_read(tmp_path: Path, stamp: str, utc: tuple[int, ...]) -> None:
    (line,) = read_delivery_report(write(tmp_path, f"{ENGLISH}\nB1,D1,,a@example.be,DELIVERED,,{stamp}\n".encode()))
    assert line.at == datetime(*utc, tzinfo=timezone.utc)


# -- refusals ---------------------------------------------------------------------------------------------


def refusal(tmp_path: Path, content: bytes) -> DeliveryReportRefused:
    path = write(tmp_path, content)
    with pytest.raises(DeliveryReportRefused) as refused:
        list(read_delivery_report(path))
    assert str(refused.value).startswith("report.csv: ")
    return refused.value


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty file"),
    (b"  \r\n\r\n", "empty file"),
    (codecs.BOM_UTF8, "empty file"),
    (b"PK\x03\x04\x14\x00\x06\x00", "an Excel workbook or ZIP archive, not CSV"),
    (b"%PDF-1.7\n", "a PDF, not CSV"),
    ("Batch;Status".encode("utf-16"), "UTF-16 text"),
    (b"Batch,DocumentId\x00\x01\x02,Status\n", "binary content (NUL bytes)"),
    (b"just some text\nwithout separators\n", "the header has no ';', ',' or tab separator"),
], ids=["empty", "blank", "bom-only", "xlsx", "pdf", "utf-16", "binary", "no-separator"])
def test_files_that_are_no_report(tmp_path: Path, content: bytes, reason: str) -> None:
    assert reason in refusal(tmp_path, content).reason


@pytest.mark.parametrize(("column", "title"), [
    ("Batch", "Batch"), ("DocumentId", "DocumentId (or Document)"),
    ("EmailAddress", "EmailAddress (or E-mailadres)"), ("Status", "Status"),
    ("Description", "Description (or Omschrijving)"), ("Timestamp", "Timestamp (or Tijdstip)"),
])
def test_a_missing_column_is_named(tmp_path: Path, column: str, title: str) -> None:
    header = ",".join(c for c in ENGLISH.split(",") if c != column)
    refused = refusal(tmp_path, f"{header}\n".encode())
    assert refused.column == title
    assert str(refused).startswith(f"report.csv: column {title}: required column {title} is missing (columns found: ")


def test_a_file_neither_utf8_nor_windows_1252(tmp_path: Path) -> None:
    content = f"{ENGLISH}\nB1,D1,x,a@example.be,FAILED,bad \x81 byte,2026-03-16T08:00:00Z\n".encode("latin-1")
    refused = refusal(tmp_path, content)
    assert refused.line == 2 and "neither UTF-8 nor Windows-1252 (byte 0x81)" in refused.reason


def test_a_file_mixing_utf8_and_another_encoding(tmp_path: Path) -> None:
    content = (
        f"{ENGLISH}\nB1,D1,Zoë,z@example.be,DELIVERED,,2026-03-16T08:00:00Z\n".encode()
        + "B1,D2,René,r@example.be,DELIVERED,,2026-03-16T08:00:00Z\n".encode("cp1252")
    )
    refused = refusal(tmp_path, content)
    assert refused.line == 3 and "mixed encodings" in refused.reason and "0xE9" in refused.reason


@pytest.mark.parametrize(("row", "line_no", "column", "reason"), [
    ("B1,D1,x,a@example.be,FAILED,x,yesterday", 3, "Timestamp (or Tijdstip)", "not a time: 'yesterday'"),
    ("B1,D1,x,a@example.be,FAILED,x,31/02/2026 10:00", 3, "Timestamp (or Tijdstip)", "not a time: '31/02/2026 10:00'"),
    ("B1, ,x,a@example.be,FAILED,x,2026-03-16T08:00:00Z", 3, "DocumentId (or Document)", "no document id"),
    ("B1,D1,x,,FAILED,x,2026-03-16T08:00:00Z", 3, "EmailAddress (or E-mailadres)", "no e-mail address"),
    (",D1,x,a@example.be,FAILED,x,2026-03-16T08:00:00Z", 3, "Batch", "no batch"),
    ("B1,D1,x,a@example.be", 3, None, "4 fields, but the columns we read go up to column 7"),
    ('B1,D1,"x,a@example.be,FAILED,x,2026-03-16T08:00:00Z', None, None, "not readable as CSV"),
], ids=["time", "impossible-date", "document", "email", "batch", "short", "quote"])
def test_a_bad_line_is_named(tmp_path: Path, row: str, line_no: int | None, column: str | None, reason: str) -> None:
    good = "B1,D0,y,b@example.be,DELIVERED,,2026-03-16T08:00:00Z"
    refused = refusal(tmp_path, f"{ENGLISH}\n{good}\n{row}\n".encode())
    if line_no is not None:
        assert refused.line == line_no
    assert refused.column == column
    assert reason in refused.reason


LONG = 100_000  # characters of a value no refusal may repeat whole


@pytest.mark.parametrize(("stamp", "says"), [
    ("x" * LONG, "not a time: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'… (100000 characters) (expected e.g."),
    (" " * (LONG - 16) + "31/02/2026 10:00", f"not a time: '{' ' * 40}'… (100000 characters) (day is out of range"),
], ids=["unreadable", "impossible-date"])
def test_a_long_bad_time_is_quoted_short(tmp_path: Path, stamp: str, says: str) -> None:
    refused = refusal(tmp_path, f"{ENGLISH}\nB1,D1,x,a@example.be,FAILED,x,{stamp}\n".encode())
    assert refused.line == 2 and refused.reason.startswith(says)
    assert len(str(refused)) < 200


def test_a_long_other_batch_is_quoted_short(tmp_path: Path) -> None:
    report = f"{ENGLISH}\n{'B' * LONG},D1,,a@example.be,DELIVERED,,2026-03-16T08:00:00Z\n".encode()
    with pytest.raises(DeliveryReportRefused) as refused:
        list(read_delivery_report(report, name="B9.csv", batch="B9"))
    assert str(refused.value) == (f"B9.csv: line 2: column Batch: batch '{'B' * 40}'… (100000 characters) in the "
                                  "report of batch 'B9'")


def test_a_wide_header_without_our_columns_is_named_short(tmp_path: Path) -> None:
    header = ";".join(f"Kolom {n} " + "x" * 90 for n in range(600))
    refused = refusal(tmp_path, f"{header}\n".encode())
    assert refused.reason.startswith(
        f"required column Batch is missing (columns found: Kolom 0 {'x' * 32}…, Kolom 1 ")
    assert refused.reason.endswith(", … (600 columns))") and len(str(refused)) < 1200


@pytest.mark.parametrize("tail", [b"", b"\n" + ENGLISH.encode() + b"\n"], ids=["no-line-break", "header-after-it"])
def test_a_line_without_end_where_the_header_should_be_is_refused_unread(tmp_path: Path, tail: bytes) -> None:
    # The header search reads at most HEADER_LINE_MAX characters of a line: a file without line breaks (up to
    # the 1 GiB limit) must not become one string.
    content = b"Batch;" * ((8 << 20) // 6) + tail
    path = write(tmp_path, content)
    tracemalloc.start()
    try:
        with pytest.raises(DeliveryReportRefused) as refused:
            open_delivery_report(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.line == 1
    assert refused.value.reason == (f"a line of more than {HEADER_LINE_MAX} characters where the header should be: "
                                    "not a delivery report CSV")
    assert peak < 4 << 20  # the byte check's 1 MiB chunks and one capped line, not the file
    assert len(str(refused.value)) < 200


def test_a_header_line_of_almost_the_limit_is_read(tmp_path: Path) -> None:
    padding = ",x" * ((HEADER_LINE_MAX - len(ENGLISH) - 2) // 2)
    header = ENGLISH + padding
    assert len(header) < HEADER_LINE_MAX - 1 < len(header) + 3
    (line,) = read_delivery_report(write(tmp_path, f"{header}\r\nB1,D1,,a@example.be,DELIVERED,,2026-03-16T08:00:00Z"
                                                   .encode()))
    assert (line.line_no, line.document_id) == (2, "D1")


def test_an_unknown_status_is_kept_as_unknown(tmp_path: Path) -> None:
    (line,) = read_delivery_report(write(tmp_path, f"{ENGLISH}\nB1,D1,,a@example.be,queued,,2026-03-16T08:00:00Z\n".encode()))
    assert (line.status, line.kind) == ("QUEUED", "unknown")


# -- the action list's files, and when the DAG fetches ------------------------------------------------------------


def test_the_action_list_quotes_only_what_needs_it(tmp_path: Path) -> None:
    import csv

    from include.finance.models import DeliveryReport
    from include.pom.delivery_action_list import ActionListRow, ActionListWriter

    at = datetime(2026, 3, 16, 8, 0, tzinfo=timezone.utc)
    writer = ActionListWriter(tmp_path / "B1")
    writer.add(ActionListRow("contact_support", "unknown", 'Jan "Jantje" Peeters', "F-1", "D1", "Jan", "jan@example.be",
                             None, 1, at, "FAILED", "Rejected; policy\r\nline two", None, "'Rejected; policy line two'",
                             None))
    writer.add(ActionListRow("correct_address", "blacklisted", "Ann Aerts", "F-2", "D2", "Ann", "ann@example.be", None,
                             1, at, "FAILED", "EmailAddress of recipient is blacklisted.", None, None, None))
    writer.add(ActionListRow("none", "delivered", "Zoë; Peeters", "F-3", "D3", None, "zoe@example.be",
                             "address 2: Dorp 2, 3001 Heverlee", 1, at, "DELIVERED", "", None, None, None))
    # SQLite gives the time back as text in UTC
    writer.add(ActionListRow("none", "delivered", "Bart", "F-4", "D4", "Bart", "bart@example.be", None, 1,
                             "2026-03-16 08:00:00.000000", "DELIVERED", "", None, None, None))
    report = DeliveryReport(batch="B1", source="file", file_name="r.csv", file_sha256="0" * 64, encoding="UTF-8",
                            lines=4, recipients=4, as_of=at, analysed_at=at, analysed_by="test",
                            summary={"unknown": 1, "blacklisted": 1, "delivered": 2})
    result = writer.finish(report)
    assert result.rows == 4 and not list(tmp_path.glob(".B1.*"))  # the parts are gone
    actions = list(csv.reader(open(result.csv, encoding="utf-8-sig", newline=""), delimiter=";"))
    assert [row[2] for row in actions[1:]] == ["Ann Aerts", 'Jan "Jantje" Peeters']  # groups in action order
    assert actions[2][11] == "Rejected; policy\r\nline two" and actions[2][9] == "2026-03-16 09:00"
    raw = open(result.csv, "rb").read().decode("utf-8-sig")
    assert ';Ann Aerts;F-2;D2;Ann;ann@example.be;;1;2026-03-16 09:00;FAILED;EmailAddress' in raw  # unquoted
    delivered = list(csv.reader(open(result.delivered_csv, encoding="utf-8-sig", newline=""), delimiter=";"))
    assert delivered == [
        ["customer", "invoice", "document_id", "recipient", "email_address", "postal_address", "attempts",
         "delivered_at", "note"],
        ["Zoë; Peeters", "F-3", "D3", "", "zoe@example.be", "address 2: Dorp 2, 3001 Heverlee", "1",
         "2026-03-16 09:00", ""],
        ["Bart", "F-4", "D4", "Bart", "bart@example.be", "", "1", "2026-03-16 09:00", ""],
    ]
    summary = (tmp_path / "B1" / "summary.csv").read_text(encoding="utf-8-sig")
    assert "unknown;message not known;contact_support;1" in summary and "retrying;" in summary
    html = (tmp_path / "B1" / "index.html").read_text(encoding="utf-8")
    assert "Jan &#34;Jantje&#34; Peeters" in html and "Contact POM support (1)" in html and "Gmail" in html


def test_an_aborted_action_list_leaves_nothing(tmp_path: Path) -> None:
    from include.pom.delivery_action_list import ActionListRow, ActionListWriter

    writer = ActionListWriter(tmp_path / "B1")
    writer.add(ActionListRow("none", "delivered", "Bart", "F-4", "D4", "Bart", "bart@example.be", None, 1,
                             datetime(2026, 3, 16, tzinfo=timezone.utc), "DELIVERED", "", None, None, None))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("days", "run_type", "local", "since"), [
    (None, "scheduled", "2026-03-18 03:00", "2026-03-14"),  # the nightly run: four days back
    (None, "scheduled", "2026-03-18 03:14", "2026-03-14"),
    (None, "scheduled", "2026-03-18 03:15", None),  # the other runs of the day only look at the inbox
    (None, "manual", "2026-03-18 03:00", None),
    (2, "manual", "2026-03-18 15:40", "2026-03-16"),
    (7, "scheduled", "2026-03-18 10:00", "2026-03-11"),
])
def test_when_the_dag_fetches_from_pom(days: int | None, run_type: str, local: str, since: str | None) -> None:
    from datetime import date
    from zoneinfo import ZoneInfo

    from include.pom.delivery_files import fetch_window

    moment = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("Europe/Brussels")).astimezone(timezone.utc)
    assert fetch_window(days, run_type, moment) == (date.fromisoformat(since) if since else None)


@pytest.mark.parametrize(("header", "stamp", "expected"), [
    # the title names UTC: a time without offset is UTC, not Brussels time
    ("Batch,DocumentId,RecipientName,EmailAddress,Status,Description,Timestamp (UTC)", "2026-03-29 01:30:00",
     datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)),
    ("Batch;Document;Naam;E-mailadres ontvanger;Status;Omschrijving;Tijdstip (Brussel)", "29/03/2026 03:30",
     datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc)),
    ("Batch;Document ID;Ontvanger;Ontvanger e-mail;Bezorgstatus;Foutomschrijving;Datum en tijd", "16/03/2026 10:00",
     datetime(2026, 3, 16, 9, 0, tzinfo=timezone.utc)),
    ("Batch,DocumentId,Recipient,Recipient Email Address,Delivery Status,Error Message,Date Sent", "2026-03-16T10:00:00Z",
     datetime(2026, 3, 16, 10, 0, tzinfo=timezone.utc)),
    ("Batch;DocumentId;Naam;Email;Status;Omschrijving;Verzonden", "16/03/2026 10:00",
     datetime(2026, 3, 16, 9, 0, tzinfo=timezone.utc)),
])
def test_other_column_titles_a_portal_may_use(header: str, stamp: str, expected: datetime) -> None:
    sep = ";" if ";" in header else ","
    row = sep.join(["B1", "D1", "An", "an@example.be", "FAILED", "DocumentId already used.", stamp])
    (line,) = read_delivery_report(f"{header}\r\n{row}\r\n".encode(), name="r.csv")
    assert (line.email, line.status, line.kind, line.at) == ("an@example.be", "FAILED", "document_id_used", expected)


@pytest.mark.parametrize("written", ["An Peeters <an@example.be>", "<an@example.be>", "mailto:an@example.be",
                                     " an@example.be "])
def test_an_address_as_a_mail_program_writes_it_is_the_address(written: str) -> None:
    data = f'{ENGLISH}\nB1,D1,An,"{written}",DELIVERED,,2026-03-16T10:00:00Z\n'.encode()
    (line,) = read_delivery_report(data, name="r.csv")
    assert line.email == "an@example.be"
