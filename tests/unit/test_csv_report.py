"""include/reports.py's CSV: the bytes of a spreadsheet CSV, UTF-8 with a BOM, however it is written."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

from include.reports import CsvReport


def test_a_report_holds_the_bytes_of_utf8_sig_csv(tmp_path: Path) -> None:
    header = ("name", "amount", "note")
    rows = [["Zoë D'Hondt", Decimal("12.50"), None], ['quote " ; semicolon', 1, "line\nbreak"], ["€ «»", "", " "]]
    expected = io.StringIO(newline="")
    writer = csv.writer(expected, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows * 3)
    for bom, encoding in ((True, "utf-8-sig"), (False, "utf-8")):
        report = CsvReport(tmp_path / f"{bom}.csv", header, bom=bom)
        report.write(rows[0])
        report.write_many(rows[1:] + rows)
        report.write_many([])
        report.write_many(rows)
        report.close()
        assert report.rows == 9
        assert (tmp_path / f"{bom}.csv").read_bytes() == expected.getvalue().encode(encoding)
