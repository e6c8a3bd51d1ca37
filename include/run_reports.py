"""Which reports a DAG run made, and reading one of them safely (the "Reports" tab of a DAG run).

Reports are filed by what they are about — a run date (``mandate_check/<day>``),
a statement (``camt053/<hub>_<statement>_<id>``), a collection run, a POM
batch — not by DAG run. A DAG run finds its own through what its tasks
returned: every task that writes a report returns its path (an ``index.html``,
a ``.csv``, or the report's folder), and Airflow keeps those return values
as the run's XComs. The Airflow side (``plugins/innen_plugin.py``) reads them
and passes them in as plain values; nothing here imports Airflow, and no
table is needed.

* Only files under :func:`include.config.reports_dir` are ever listed or read,
  and only ``.html`` and ``.csv``: a path in a return value that points
  elsewhere (a bank file in the outbox, an invoice PDF) is not offered, and a
  requested path that leaves the folder (``..``, an absolute path, a symbolic
  link out of it, a hidden half-written ``.part`` file) is refused as not found.
* A report is its HTML page plus the CSVs that page links to (the full lists
  behind its tables) and the CSVs the return values name beside it.
* Return values hold absolute paths as they were when written. If the reports
  folder has moved since (``INNEN_VAR_DIR`` changed, storage mounted
  elsewhere), a path is looked up again under the current folder by its part
  after ``reports/`` — the report kinds below are the folder's first level.
* A bank file (``pain_export``) is no report: its summary from the return
  values (run, format, file name, SHA-256, transactions, total; who approved
  or rejected it) is shown, once per run: waiting for approval, released or
  rejected, as its latest task left it.
* A task that failed after writing its report returns nothing
  (``housekeeping`` with paths it could not remove); for the DAGs whose
  reports are filed by day, the run's date then finds the day's folder.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, select_autoescape

from include.config import reports_dir
from include.storage import Location, is_local

SUFFIXES = (".html", ".csv")
MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".csv": "text/csv; charset=utf-8"}

# The first level of the reports folder: one kind of report each (see the README's outputs table).
REPORT_KINDS = (
    "mandate_check", "camt053", "control_list", "collection_confirm", "payment_reference_delete",
    "pom_reconciliation", "pom_delivery", "invoice_run", "housekeeping",
)
# DAGs whose reports are filed under the day they ran for: where to look when the return values say nothing.
DATED_KINDS = {
    "mandate_execution": "mandate_check",
    "pom_reconciliation": "pom_reconciliation",
    "invoice_run": "invoice_run",
    "housekeeping": "housekeeping",
}
# What pain_export's tasks return about one run's bank file, in the order they run: the file written (to the
# outbox, or staged for approval), then released or rejected. Later results complete the earlier ones, per run.
BANK_FILE_KEYS = frozenset({"run", "status", "file_path", "sha256"})
STAGED_FILE_KEYS = frozenset({"run", "status", "approval_id", "file_name", "sha256"})
REJECTED_FILE_KEYS = frozenset({"run", "status", "rejected_by"})

_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HREF = re.compile(r"""<a\s[^>]*?href\s*=\s*["']([^"'#?]+)["']""", re.IGNORECASE)


class ReportNotFound(LookupError):
    """No such report file, or one that may not be read (outside the reports folder, not HTML or CSV)."""


@dataclass(frozen=True)
class Report:
    """One report of a run: its page and its CSVs (paths relative to the reports folder, ``/``-separated).

    A bank file's summary has no page: ``facts`` holds it.
    """

    title: str
    html_path: str | None
    csv_paths: tuple[str, ...] = ()
    task_id: str | None = None
    facts: tuple[tuple[str, str], ...] = ()
    found_by: str = "task result"

    @property
    def files(self) -> tuple[str, ...]:
        return ((self.html_path,) if self.html_path else ()) + self.csv_paths


@dataclass
class _Found:
    html: str | None
    task_id: str
    csvs: list[str] = field(default_factory=list)


# -- paths ------------------------------------------------------------------------------------------------------


def _root() -> Location:
    root = reports_dir()
    return root.resolve() if is_local(root) else root


def _relative(value: str) -> str | None:
    """``value`` (an absolute path or URL from a task's return value) relative to the reports folder, if it is in it."""
    if "\0" in value:
        return None
    if not is_local(reports_dir()):
        prefix = str(reports_dir()).rstrip("/") + "/"
        return value[len(prefix):] if value.startswith(prefix) else None
    if not value.startswith("/"):
        return None
    path = PurePosixPath(value)
    root = PurePosixPath(_root().as_posix())
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        pass
    for configured in {PurePosixPath(reports_dir().as_posix()), PurePosixPath(reports_dir().absolute().as_posix())}:
        try:
            return path.relative_to(configured).as_posix()
        except ValueError:
            pass
    # Written under a reports folder that has moved since: the part after ".../reports/<kind>/".
    parts = path.parts
    for index in range(len(parts) - 2, 0, -1):
        if parts[index] == reports_dir().name and parts[index + 1] in REPORT_KINDS:
            return PurePosixPath(*parts[index + 1:]).as_posix()
    return None


def report_file(relative: str) -> Location:
    """The file ``relative`` names under the reports folder, if it may be read; else :class:`ReportNotFound`.

    Refused: empty, absolute, ``..`` or hidden parts (``.x.csv.part`` is a file being written), anything but
    ``.html`` and ``.csv``, and whatever resolves (through symbolic links) outside the reports folder.
    """
    if not relative or "\0" in relative or "\\" in relative:
        raise ReportNotFound(relative)
    segments = relative.split("/")  # as given: PurePosixPath would quietly drop "." and empty parts
    if any(part in ("", ".", "..") or part.startswith(".") for part in segments):
        raise ReportNotFound(relative)
    pure = PurePosixPath(relative)
    if pure.suffix.lower() not in SUFFIXES:
        raise ReportNotFound(relative)
    root = _root()
    if not is_local(root):  # an object store: no links to follow, and the parts were checked above
        target = root.joinpath(*pure.parts)
        if not target.is_file():
            raise ReportNotFound(relative)
        return target
    try:
        target = (root / Path(*pure.parts)).resolve(strict=True)
    except (OSError, RuntimeError):
        raise ReportNotFound(relative) from None
    if not target.is_relative_to(root) or not target.is_file() or target.suffix.lower() not in SUFFIXES:
        raise ReportNotFound(relative)
    return target


def media_type(path: Path | str) -> str:
    return MEDIA_TYPES[PurePosixPath(str(path)).suffix.lower()]


def read_report_file(relative: str) -> tuple[bytes, str]:
    """The bytes and media type of a report file (see :func:`report_file` for what is refused)."""
    path = report_file(relative)
    return path.read_bytes(), media_type(path)


def _exists(relative: str) -> bool:
    try:
        report_file(relative)
    except ReportNotFound:
        return False
    return True


def _page_facts(relative_html: str) -> tuple[str | None, list[str]]:
    """The page's title and the CSVs it links to (relative to the reports folder, existing ones only)."""
    text = report_file(relative_html).read_text(encoding="utf-8", errors="replace")
    match = _TITLE.search(text)
    title = html.unescape(match.group(1)).strip() if match else None
    folder = PurePosixPath(relative_html).parent
    linked: list[str] = []
    for href in _HREF.findall(text):
        href = html.unescape(href)
        if "://" in href or href.startswith("/") or not href.lower().endswith(".csv"):
            continue
        candidate = (folder / href).as_posix()
        if candidate not in linked and _exists(candidate):
            linked.append(candidate)
    return title, linked


# -- a run's reports ----------------------------------------------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _dicts(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
        for item in value.values():
            yield from _dicts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _dicts(item)


def _is_bank_file(value: Mapping[str, Any]) -> bool:
    keys = value.keys()
    return BANK_FILE_KEYS <= keys or STAGED_FILE_KEYS <= keys or REJECTED_FILE_KEYS <= keys


def _bank_file(task_id: str, value: Mapping[str, Any]) -> Report:
    """The summary of one exported (or refused), staged, released or rejected bank file, as ``pain_export``'s
    tasks return it."""
    path = str(value.get("file_path") or value.get("file_name") or "")
    facts = [
        ("collection run", value.get("run")), ("status", value.get("status")),
        ("format", value.get("export_format")), ("file", PurePosixPath(path).name if path else "-"),
        ("SHA-256", value.get("sha256")), ("transactions", value.get("transactions")),
        ("total (EUR)", value.get("total")), ("message", value.get("message")),
    ]
    facts += [(label, value[key]) for label, key in (("approved by", "approved_by"), ("rejected by", "rejected_by"),
                                                     ("reason", "reason")) if value.get(key)]
    return Report(
        f"Bank file of {value.get('run')}", None, task_id=task_id,
        facts=tuple((label, "-" if item in (None, "") else str(item)) for label, item in facts),
    )


def _from_results(xcoms: Mapping[str, Any]) -> tuple[list[_Found], list[Report]]:
    found: dict[str, _Found] = {}  # by HTML path, or "csv:<path>" for a CSV no page claims
    loose: list[tuple[str, str]] = []
    bank_files: dict[str, tuple[str, dict[str, Any]]] = {}  # by collection run: the task, what was returned
    for task_id, value in xcoms.items():
        for candidate in _strings(value):
            relative = _relative(candidate)
            if relative is None:
                continue
            suffix = PurePosixPath(relative).suffix.lower()
            if suffix == "" and _exists(f"{relative}/index.html"):  # a report's folder
                relative, suffix = f"{relative}/index.html", ".html"
            if suffix == ".html" and _exists(relative):
                found.setdefault(relative, _Found(relative, task_id))
            elif suffix == ".csv" and _exists(relative):
                loose.append((task_id, relative))
        for mapping in _dicts(value):
            if _is_bank_file(mapping):
                run = str(mapping["run"])
                earlier = bank_files.get(run, ("", {}))[1]
                bank_files[run] = (task_id, {**earlier, **mapping})
    for task_id, csv in loose:
        folder = PurePosixPath(csv).parent
        owner = next((f for f in found.values() if f.html and PurePosixPath(f.html).parent == folder), None)
        if owner is None:
            owner = found.setdefault(f"csv:{csv}", _Found(None, task_id))
        if csv not in owner.csvs:
            owner.csvs.append(csv)
    return list(found.values()), [_bank_file(task_id, value) for task_id, value in bank_files.values()]


def _by_date(dag_id: str, run_date: date | None) -> list[_Found]:
    kind = DATED_KINDS.get(dag_id)
    if kind is None or run_date is None:
        return []
    folder = _root() / kind / run_date.isoformat()
    if not folder.is_dir():
        return []
    pages = sorted(p for p in folder.iterdir() if p.suffix == ".html" and not p.name.startswith("."))
    return [_Found(f"{kind}/{run_date.isoformat()}/{page.name}", "") for page in pages]


def _report(item: _Found, found_by: str) -> Report:
    if item.html is None:
        return Report(PurePosixPath(item.csvs[0]).name, None, tuple(item.csvs), item.task_id or None, found_by=found_by)
    title, linked = _page_facts(item.html)
    csvs = tuple(dict.fromkeys([*linked, *item.csvs]))
    return Report(title or str(PurePosixPath(item.html).parent), item.html, csvs, item.task_id or None,
                  found_by=found_by)


def reports_of(dag_id: str, xcoms: Mapping[str, Any], run_date: date | None = None) -> list[Report]:
    """The reports of one DAG run, in the order its tasks returned them.

    ``xcoms``: task id → that task's return value (a mapped task's values as a list, by map index), in the
    order the tasks ran. ``run_date``: the run's business date (its ``run_date`` param, else its logical date
    in Brussels), used only when the return values name no report and the DAG files its reports by day.
    """
    found, bank_files = _from_results(xcoms)
    reports = [_report(item, "task result") for item in found]
    if not reports:
        reports = [_report(item, "the run's date") for item in _by_date(dag_id, run_date)]
    return [*bank_files, *reports]


def files_of(reports: Iterable[Report]) -> set[str]:
    """Every file the reports offer: the only ones a run's file route serves."""
    return {path for report in reports for path in report.files}


def run_file(reports: Sequence[Report], relative: str) -> Path:
    """A file of this run's reports (refused as not found when it is not one of them, or not readable)."""
    if relative not in files_of(reports):
        raise ReportNotFound(relative)
    return report_file(relative)


# -- the page ------------------------------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Reports of {{ dag_id }} — {{ run_id }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0;font-weight:600}
section{margin:0 0 1.5rem 0}.note{color:#666}ul{margin:.25rem 0}
</style></head><body>
<h1>Reports</h1>
<p class="note">{{ dag_id }} — {{ run_id }}{% if run_date %} — run date {{ run_date }}{% endif %}</p>
{% for report in reports %}
<section>
<h2>{{ report.title }}</h2>
{% if report.facts %}<table>{% for label, value in report.facts %}<tr><th>{{ label }}</th><td>{{ value }}</td></tr>{% endfor %}</table>{% endif %}
{% if report.html_path %}<p><a href="{{ link(report.html_path) }}">Open the report</a></p>{% endif %}
{% if report.csv_paths %}<ul>{% for csv in report.csv_paths %}<li><a href="{{ link(csv) }}" download>{{ csv_name(csv) }}</a> (CSV)</li>{% endfor %}</ul>{% endif %}
<p class="note">{% if report.task_id %}from task {{ report.task_id }}{% endif %}{% if report.found_by != "task result" %} (found by {{ report.found_by }}){% endif %}</p>
</section>
{% else %}
<p>This run wrote no report{% if state %} (state: {{ state }}){% endif %}.</p>
{% endfor %}
</body></html>
"""

_TEMPLATE = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string(_PAGE)


def file_link(relative: str) -> str:
    """The link from the reports page to one of its files (``files/<path>``: the report's own links to its CSVs,
    relative ones, then resolve to the route too)."""
    return "files/" + "/".join(quote(part, safe="") for part in PurePosixPath(relative).parts)


def render_reports_page(dag_id: str, run_id: str, reports: Sequence[Report], *, run_date: date | None = None,
                        state: str | None = None) -> str:
    return _TEMPLATE.render(dag_id=dag_id, run_id=run_id, reports=reports, run_date=run_date, state=state,
                            link=file_link, csv_name=lambda path: PurePosixPath(path).name)
