"""Reports for finance: CSV that opens in a spreadsheet and HTML that reads in a browser.

CSV uses ``;`` (what a Belgian spreadsheet expects), UTF-8 with a BOM so
accents survive a double-click into Excel, amounts with a decimal point.
HTML is one self-contained page. Both are written atomically.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from include.files import atomic_write, atomic_writer

HTML_ROW_LIMIT = 5_000


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class CsvReport:
    """A ``;``-separated file written row by row (for lists too long to hold in memory)."""

    def __init__(self, path: Path, header: Sequence[str], *, bom: bool = True) -> None:
        self.path = path
        self._context = atomic_writer(path)
        self._binary = self._context.__enter__()
        if bom:  # what "utf-8-sig" writes first; its encoder would then be a Python call for every row
            self._binary.write(codecs.BOM_UTF8)
        self._text = io.TextIOWrapper(self._binary, encoding="utf-8", newline="")
        self._writer = csv.writer(self._text, delimiter=";", lineterminator="\r\n")
        self._writer.writerow(header)
        self.rows = 0

    def write(self, row: Iterable[Any]) -> None:
        """One row; None is written empty, everything else as ``str()`` (booleans: convert first)."""
        self._writer.writerow(row)
        self.rows += 1

    def write_many(self, rows: Sequence[Iterable[Any]]) -> None:
        """:meth:`write` for each of ``rows``, in one call."""
        self._writer.writerows(rows)
        self.rows += len(rows)

    def close(self, error: BaseException | None = None) -> None:
        self._text.flush()
        self._text.detach()
        if error is None:
            self._context.__exit__(None, None, None)
        else:
            self._context.__exit__(type(error), error, error.__traceback__)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Iterable[Any]], *, bom: bool = True) -> int:
    """Write a whole CSV; ``bom=False`` for files read by programs rather than spreadsheets."""
    report = CsvReport(path, header, bom=bom)
    try:
        for row in rows:
            report.write([_cell(value) for value in row])
    except BaseException as exc:
        report.close(exc)
        raise
    report.close()
    return report.rows


@dataclass
class Table:
    """One section of an HTML report."""

    title: str
    header: Sequence[str]
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int = 0
    csv_name: str | None = None

    def add(self, row: Iterable[Any], limit: int = HTML_ROW_LIMIT) -> None:
        self.total_rows += 1
        if len(self.rows) < limit:
            self.rows.append([_cell(value) for value in row])


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:0 0 2rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}dt{font-weight:600}
.note{color:#666}
</style></head><body>
<h1>{{ title }}</h1>
{% if summary %}<dl>{% for key, value in summary %}<dt>{{ key }}</dt><dd>{{ value }}</dd>{% endfor %}</dl>{% endif %}
{% for table in tables %}
<h2>{{ table.title }} ({{ table.total_rows }})</h2>
{% if table.csv_name %}<p class="note">All rows: <a href="{{ table.csv_name }}">{{ table.csv_name }}</a></p>{% endif %}
{% if table.rows %}<table><thead><tr>{% for h in table.header %}<th>{{ h }}</th>{% endfor %}</tr></thead><tbody>
{% for row in table.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>{% else %}<p class="note">None.</p>{% endif %}
{% if table.total_rows > table.rows|length %}<p class="note">Showing the first {{ table.rows|length }} rows; the CSV has all {{ table.total_rows }}.</p>{% endif %}
{% endfor %}
</body></html>
"""

_TEMPLATE = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string(_PAGE)


def write_html(path: Path, title: str, tables: Sequence[Table], summary: Sequence[tuple[str, Any]] = ()) -> None:
    page = _TEMPLATE.render(title=title, tables=tables, summary=[(k, _cell(v)) for k, v in summary])
    atomic_write(path, page.encode("utf-8"))
