"""Reading a POM delivery report: one line per attempt to e-mail one recipient (seed 003).

The report comes two ways: finance downloads it from the POM portal (Artikelen
– POM accounts – the school's POM user – Rapporten – Batch – Ophalen) and drops
it in the inbox, or the POM client fetches it (``GET …/delivery-reports/{batch}``,
see ``include/pom/API.md``). Both are CSV, but a download may have passed
through a spreadsheet, so we accept:

* Dutch or English column titles (:data:`HEADER_SYNONYMS`; case, spaces,
  ``-``, ``_`` and ``.`` in titles do not matter), in any order; unknown
  columns are ignored; a date and a time in two columns are joined;
* ``;``, ``,`` or tab as separator, found from the header line (or given by
  Excel's ``sep=;`` first line);
* a title or date line above the table: the header is the first line naming
  two of our columns, among the first :data:`PREAMBLE_LINES` non-blank ones;
  the header repeated further down (two downloads put one after the other)
  is passed over;
* UTF-8 with or without BOM, else Windows-1252 (what Excel writes on a
  Belgian Windows);
* times as ISO 8601 (with ``T`` or a space, with or without offset or ``Z``)
  or as ``dd/mm/yyyy hh:mm[:ss]`` (or ``yyyy/mm/dd``); a time without offset is Brussels time,
  or UTC when the column's title says so ("Timestamp (UTC)"). Every time is returned in UTC;
* an e-mail address written as ``Name <address>`` or ``mailto:address`` is read as the address.

A file we cannot read completely is refused with a
:class:`DeliveryReportRefused` naming the file, and the line and column where
there is one, before anything is stored (the store reads inside its
transaction, so a bad line 900 000 still stores nothing): empty, binary (NUL
bytes, an Excel workbook, a PDF), UTF-16, neither UTF-8 nor Windows-1252, a
mix of UTF-8 and another encoding, no separator, a required column missing, a
line with too few fields or broken quoting, an empty document id or e-mail
address, a time we cannot read, or a batch other than the one asked for.

The file is read twice, both times streamed: once to check its bytes
(encoding, NULs) and take its SHA-256, once to parse it.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from functools import partial
from operator import itemgetter
from typing import BinaryIO, NamedTuple
from zoneinfo import ZoneInfo

from include.errors import ECHOED, InnenError, echoed
from include.pom.delivery_diagnosis import line_kind, normalise_status
from include.storage import Location, location

MAX_BYTES = 1024 * 1024 * 1024
PREAMBLE_LINES = 10  # non-blank lines searched for the header (a title above the table is passed over)
# Characters read of a line while looking for the header: a header of our columns is a few hundred, and a file
# without line breaks must not be read whole into one string.
HEADER_LINE_MAX = 64 * 1024
_SEP_HINT = re.compile(r"^\s*sep=([;,\t|])\s*$", re.IGNORECASE)
CHUNK = 1 << 20
LOCAL_ZONE = ZoneInfo("Europe/Brussels")

# field -> (title in messages, accepted titles after normalisation)
HEADER_SYNONYMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "batch": ("Batch", ("batch", "batchid", "batchnr", "batchnummer", "batchnaam", "batchname", "zending")),
    "document_id": ("DocumentId", (
        "documentid", "document", "documentnr", "documentnummer", "docid", "documentreference", "documentreferentie",
    )),
    "recipient_name": ("RecipientName", (
        "recipientname", "recipient", "name", "naam", "ontvanger", "naamontvanger", "ontvangernaam", "ontvangers",
    )),
    "email": ("EmailAddress", (
        "emailaddress", "email", "emailadres", "mailadres", "mailaddress", "mail", "emailontvanger", "recipientemail",
        "emailadresontvanger", "ontvangeremail", "ontvangeremailadres", "recipientemailaddress", "emailaddressrecipient",
        "emailrecipient", "toaddress",
    )),
    "status": ("Status", (
        "status", "state", "toestand", "deliverystatus", "bezorgstatus", "leveringsstatus", "verzendstatus",
    )),
    "description": ("Description", (
        "description", "omschrijving", "beschrijving", "message", "bericht", "melding", "foutmelding", "reason",
        "reden", "details", "detail", "foutomschrijving", "omschrijvingfout", "statusomschrijving", "statusdescription",
        "statusmessage", "errormessage", "error", "fout", "foutboodschap",
    )),
    "timestamp": ("Timestamp", (
        "timestamp", "tijdstip", "datetime", "datumtijd", "datumuur", "sentat", "verzondenop", "attemptedat",
        "tijdstippoging", "datumentijd", "datumenuur", "dateandtime", "datumtijdstip", "verzonden", "datumverzonden",
        "datumverzending", "tijdstipverzending", "sent", "senton", "datesent", "sentdate", "attempt", "poging",
    )),
    # A date and a time in two columns (joined when there is no timestamp column).
    "date": ("Date", ("date", "datum", "verzenddatum")),
    "time": ("Time", ("time", "tijd", "uur", "hour")),
}
DUTCH_TITLES = {
    "batch": "Batch", "document_id": "Document", "recipient_name": "Ontvanger", "email": "E-mailadres",
    "status": "Status", "description": "Omschrijving", "timestamp": "Tijdstip",
}
REQUIRED = ("batch", "document_id", "email", "status", "description", "timestamp")
_LOOKUP = {alias: name for name, (_, aliases) in HEADER_SYNONYMS.items() for alias in aliases}
_TITLE_JUNK = re.compile(r"[\s_\-./()\[\]:#'\"]+")
# A time column whose title names its zone ("Timestamp (UTC)", "Tijdstip (Brussel)"): the zone of its times
# without an offset.
_TITLE_ZONE = re.compile(r"(utc|gmt|cet|cest|brussel|brussels|lokaletijd|localtime)$")
_TIME_FIELDS = ("timestamp", "date", "time")
_DMY = re.compile(
    r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?$"
)
_YMD = re.compile(  # 2026/03/16 08:15 (a spreadsheet's own date format); with dashes it is ISO
    r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?$"
)
_MAGIC = (
    (b"PK\x03\x04", "an Excel workbook or ZIP archive, not CSV: save the report as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) workbook, not CSV: save the report as CSV"),
    (b"%PDF", "a PDF, not CSV: download the report as CSV"),
    (b"\xff\xfe", "UTF-16 text: save the report as CSV in UTF-8 or Windows-1252"),
    (b"\xfe\xff", "UTF-16 text: save the report as CSV in UTF-8 or Windows-1252"),
)


class DeliveryReportRefused(InnenError):
    """A delivery report we will not use; the message names the file, and the line and column where known."""

    def __init__(self, file: str, reason: str, *, line: int | None = None, column: str | None = None) -> None:
        self.file, self.reason, self.line, self.column = file, reason, line, column
        where = "".join([f": line {line}" if line else "", f": column {column}" if column else ""])
        super().__init__(f"{file}{where}: {reason}")


class _Message(NamedTuple):
    """A description as the lines that repeat it share it: its kind and its text, stripped."""

    kind: str
    text: str


class ReportLine(NamedTuple):
    """One attempt, as read (strings stripped; ``at`` in UTC; ``kind`` from the status and description)."""

    line_no: int
    batch: str
    document_id: str
    recipient_name: str | None
    email: str
    status: str
    description: str
    at: datetime
    kind: str


def normalise_title(title: str) -> str:
    """A column title as looked up: lower case, no BOM, spaces, ``-``, ``_`` or ``.``; "e-mail" is "email"."""
    return _TITLE_JUNK.sub("", title.replace("\ufeff", "").strip().lower())


def column_title(name: str) -> str:
    """How a field is named in messages: English and Dutch titles."""
    english = HEADER_SYNONYMS[name][0]
    dutch = DUTCH_TITLES.get(name)
    return f"{english} (or {dutch})" if dutch and dutch != english else english


class _TimeParser:
    """ISO 8601 or day/month/year times to aware UTC datetimes, each distinct text parsed once; a time without
    offset is in ``zone`` (Brussels unless the column's title names another)."""

    def __init__(self, zone: tzinfo = LOCAL_ZONE) -> None:
        self.cache: dict[str, datetime] = {}
        self.zone = zone

    def __call__(self, text: str) -> datetime:
        moment = self.cache.get(text)
        if moment is None:
            moment = self._parse(text, self.zone)
            if len(self.cache) >= 200_000:
                self.cache.clear()
            self.cache[text] = moment
        return moment

    @staticmethod
    def _parse(text: str, zone: tzinfo = LOCAL_ZONE) -> datetime:
        value = text.strip()
        try:
            moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
        except ValueError:
            match = _DMY.match(value)
            if match:
                day, month, year, hour, minute, second, fraction = match.groups()
            elif match := _YMD.match(value):
                year, month, day, hour, minute, second, fraction = match.groups()
            else:
                raise ValueError(f"not a time: {echoed(text)} (expected e.g. 2026-03-16T08:15:00+01:00 or "
                                 "16/03/2026 08:15)") from None
            try:
                moment = datetime(
                    int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                    int((fraction or "0").ljust(6, "0")),
                )
            except ValueError as exc:
                raise ValueError(f"not a time: {echoed(text)} ({exc})") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(timezone.utc)


@dataclass
class DeliveryReportFile:
    """A report whose bytes have been checked: its encoding, separator and columns; :meth:`lines` parses it."""

    name: str
    size: int
    sha256: str
    encoding: str  # "utf-8-sig", "utf-8" or "cp1252"
    delimiter: str
    columns: dict[str, int]  # field -> column index
    ignored: list[str] = field(default_factory=list)  # titles of columns we do not use
    batch: str | None = None  # the batch asked for (the client's fetch), or None
    header_line: int = 1  # the header's line number (lines before it are a title or Excel's "sep=")
    header_cells: list[str] = field(default_factory=list)  # the header as written
    naive_zone: tzinfo = LOCAL_ZONE  # the zone of a time without offset (UTC when the column title says so)
    _source: Location | bytes | None = field(default=None, repr=False)

    @property
    def encoding_label(self) -> str:
        return {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "cp1252": "Windows-1252"}[self.encoding]

    def _text(self) -> io.TextIOWrapper:
        source = self._source
        binary: BinaryIO = io.BytesIO(source or b"") if isinstance(source, (bytes, type(None))) else source.open("rb")
        return io.TextIOWrapper(binary, encoding=self.encoding, newline="")

    def _repeats_header(self, row: list[str]) -> bool:
        return list(map(normalise_title, row)) == list(map(normalise_title, self.header_cells))

    def lines(self) -> Iterator[ReportLine]:
        """Every attempt line in file order; raises :class:`DeliveryReportRefused` at the first bad line."""
        name = self.name
        cols = self.columns
        needed = max(cols.values()) + 1
        # A field without a column reads index -1, a "" appended to each row when there is such a field. The
        # time is one column, or a date and a time column.
        has_name = "recipient_name" in cols
        split_time = "timestamp" not in cols
        fields = _FIELDS[:6] + (("date", "time") if split_time else ("timestamp", "timestamp"))
        indexes = [cols.get(f, -1) for f in fields]
        pick = itemgetter(*indexes)
        status_column = cols["status"]
        status_title = self.header_cells[status_column] if status_column < len(self.header_cells) else None
        pad = -1 in indexes
        wanted_batch = self.batch
        parse_time = _TimeParser(self.naive_zone)
        times = parse_time.cache
        batches: dict[str, str] = {}  # raw text -> checked value, one object per repeated text
        statuses: dict[str, str] = {}
        messages: dict[str, dict[str, _Message]] = {}  # status -> description as written -> its kind and text
        titles = {field: column_title(field) for field in HEADER_SYNONYMS}
        time_title = titles["date" if split_time else "timestamp"]
        new_line = partial(tuple.__new__, ReportLine)  # ReportLine._make without a Python call per line
        with self._text() as text:
            reader = csv.reader(text, delimiter=self.delimiter, strict=True)
            try:
                header_line = self.header_line
                for row in reader:  # up to the header, checked when the file was opened
                    if reader.line_num >= header_line:
                        break
                for row in reader:
                    if len(row) < needed:
                        if not any(cell.strip() for cell in row):
                            continue  # empty line
                        raise DeliveryReportRefused(
                            name, f"{len(row)} fields, but the columns we read go up to column {needed}",
                            line=reader.line_num)
                    if row[status_column] == status_title and self._repeats_header(row):
                        continue  # the header again: two downloads put one after the other
                    if pad:
                        row.append("")
                    batch, document_id, recipient, email, status, description, stamp, clock = pick(row)
                    batch = batches.get(batch) or _checked_batch(
                        name, reader.line_num, batch, wanted_batch, titles, batches)
                    document_id = document_id.strip()
                    if not document_id or len(document_id) > 100:
                        raise DeliveryReportRefused(
                            name, "no document id" if not document_id else "document id longer than 100 characters",
                            line=reader.line_num, column=titles["document_id"])
                    email = email.strip()
                    if email.endswith(">") and "<" in email:  # "Name <address>", as a mail program writes it
                        email = email[email.rindex("<") + 1 : -1].strip()
                    if email[:7].lower() == "mailto:":
                        email = email[7:].strip()
                    if not email or len(email) > 254:
                        raise DeliveryReportRefused(
                            name, "no e-mail address" if not email else "e-mail address longer than 254 characters",
                            line=reader.line_num, column=titles["email"])
                    if split_time:
                        stamp = f"{stamp.strip()} {clock.strip()}".strip()
                    at = times.get(stamp)
                    if at is None:
                        try:
                            at = parse_time(stamp)
                        except ValueError as exc:
                            raise DeliveryReportRefused(
                                name, str(exc), line=reader.line_num, column=time_title) from None
                    normal = statuses.get(status)
                    if normal is None:
                        normal = statuses[status] = normalise_status(status)[:20]
                        messages.setdefault(normal, {})
                    by_text = messages[normal]
                    message = by_text.get(description)
                    if message is None:
                        clean = description.strip()
                        message = _Message(line_kind(normal, clean), clean)
                        if len(by_text) < 10_000:  # a report repeats a handful of messages
                            by_text[description] = message
                    yield new_line((
                        reader.line_num, batch, document_id, (recipient.strip()[:200] or None) if has_name else None,
                        email, normal, message.text, at, message.kind,
                    ))
            except csv.Error as exc:
                raise DeliveryReportRefused(name, f"not readable as CSV: {exc}", line=reader.line_num) from None
            except UnicodeDecodeError as exc:  # checked before; only if the file changed in between
                raise DeliveryReportRefused(name, f"cannot be decoded as {self.encoding_label}: {exc.reason}") from None


def _checked_batch(name: str, line: int, batch: str, wanted: str | None, titles: dict[str, str],
                   shared: dict[str, str]) -> str:
    value = batch.strip()
    if not value:
        if wanted is None:
            raise DeliveryReportRefused(name, "no batch", line=line, column=titles["batch"])
        value = wanted
    elif wanted is not None and value != wanted:
        raise DeliveryReportRefused(name, f"batch {echoed(value)} in the report of batch {echoed(wanted)}", line=line,
                                    column=titles["batch"])
    if len(value) > 100:
        raise DeliveryReportRefused(name, "batch longer than 100 characters", line=line, column=titles["batch"])
    if len(shared) < 2_000_000:
        shared[batch] = value
    return value


_FIELDS = ("batch", "document_id", "recipient_name", "email", "status", "description", "timestamp", "date", "time")


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


class _ByteCheck:
    """The first pass: size, SHA-256, NUL bytes, and whether the bytes are UTF-8 (and up to where)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.size = 0
        self.digest = hashlib.sha256()
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.utf8 = True
        self.utf8_error: tuple[int, int] | None = None  # (line, byte)
        self.non_ascii_before_error = False
        self.cp1252_error: tuple[int, int] | None = None
        self.lines_before = 0
        self.head = b""

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if self.size == 0 and chunk:
            for magic, what in _MAGIC:
                if chunk.startswith(magic):
                    raise DeliveryReportRefused(self.name, what)
        if len(self.head) < 4096:
            self.head += chunk[: 4096 - len(self.head)]
        self.digest.update(chunk)
        nul = chunk.find(b"\x00")
        if nul >= 0:
            raise DeliveryReportRefused(
                self.name, "binary content (NUL bytes): not a CSV text report",
                line=self.lines_before + _line_of(chunk, nul))
        rest = b""
        if self.utf8:
            try:
                self.decoder.decode(chunk, final)
                if not self.non_ascii_before_error and not chunk.isascii():
                    self.non_ascii_before_error = True
            except UnicodeDecodeError as exc:
                start = max(exc.start, 0)
                self.utf8 = False
                byte = chunk[start] if start < len(chunk) else 0
                self.utf8_error = (self.lines_before + _line_of(chunk, start), byte)
                if not chunk[:start].isascii():
                    self.non_ascii_before_error = True
                rest = chunk[start:]
        else:
            rest = chunk
        # Windows-1252 only matters once the bytes are not UTF-8 (everything before was then ASCII).
        if rest and self.cp1252_error is None:
            try:
                rest.decode("cp1252")
            except UnicodeDecodeError as exc:
                offset = len(chunk) - len(rest) + exc.start
                self.cp1252_error = (self.lines_before + _line_of(chunk, offset), chunk[offset])
        self.size += len(chunk)
        self.lines_before += chunk.count(b"\n")

    def encoding(self) -> str:
        if self.size == 0 or not self.head.replace(codecs.BOM_UTF8, b"").strip():
            raise DeliveryReportRefused(self.name, "empty file: no header and no lines")
        if self.utf8:
            return "utf-8-sig" if self.head.startswith(codecs.BOM_UTF8) else "utf-8"
        line, byte = self.utf8_error or (0, 0)
        if self.non_ascii_before_error or self.head.startswith(codecs.BOM_UTF8):
            raise DeliveryReportRefused(
                self.name, f"mixed encodings: UTF-8 before this line, but byte 0x{byte:02X} here is not UTF-8; "
                "save the report again as UTF-8", line=line)
        if self.cp1252_error is not None:
            bad_line, bad_byte = self.cp1252_error
            raise DeliveryReportRefused(
                self.name, f"neither UTF-8 nor Windows-1252 (byte 0x{bad_byte:02X}); save the report as UTF-8 CSV",
                line=bad_line)
        return "cp1252"


def _sniff_delimiter(header: str) -> str | None:
    counts = {sep: header.count(sep) for sep in (";", ",", "\t")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else None


def _known_titles(line: str, delimiter: str) -> int:
    try:
        cells = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return 0
    return len({_LOOKUP[title] for title in map(normalise_title, cells) if title in _LOOKUP})


def _find_header(report: DeliveryReportFile) -> tuple[str, int, str]:
    """The header line, its line number and the separator.

    The header is the first line naming at least two of our columns, among
    the first :data:`PREAMBLE_LINES` lines that are not blank: a title or a
    date a portal puts above the table is passed over, and Excel's
    ``sep=;`` line gives the separator. Without such a line the first line
    with a separator is taken for the header (and the missing columns are
    named).
    """
    hint: str | None = None
    first: int | None = None
    table: tuple[str, int, str] | None = None  # the first line with a separator
    seen = 0
    with report._text() as text:
        for number, raw in enumerate(iter(partial(text.readline, HEADER_LINE_MAX), ""), start=1):
            if len(raw) == HEADER_LINE_MAX and not raw.endswith(("\n", "\r")):
                raise DeliveryReportRefused(
                    report.name, f"a line of more than {HEADER_LINE_MAX} characters where the header should be: "
                    "not a delivery report CSV", line=number)
            if not raw.strip():
                continue
            seen += 1
            if seen > PREAMBLE_LINES:
                break
            if hint is None and first is None and (match := _SEP_HINT.match(raw)):
                hint = match.group(1)
                continue
            first = first or number
            delimiter = hint or _sniff_delimiter(raw)
            if delimiter is None:
                continue
            if _known_titles(raw, delimiter) >= 2:
                return raw, number, delimiter
            table = table or (raw, number, delimiter)
    if first is None:
        raise DeliveryReportRefused(report.name, "no header line, only a separator hint")
    if table is None:
        raise DeliveryReportRefused(
            report.name, "the header has no ';', ',' or tab separator: not a delivery report CSV", line=first)
    return table


def _listed(titles: list[str], shown: int = 20) -> str:
    """The titles a refusal names: the first ``shown``, each cut like any echoed value (a header may be 64 KiB).

    >>> _listed(["Klant", "Bedrag"]), _listed([])
    ('Klant, Bedrag', 'none')
    >>> _listed(["T" * 50, "U", "V"], shown=2)
    'TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT…, U, … (3 columns)'
    """
    if not titles:
        return "none"
    listed = [title if len(title) <= ECHOED else title[:ECHOED] + "…" for title in titles[:shown]]
    return ", ".join(listed + ([f"… ({len(titles)} columns)"] if len(titles) > shown else []))


def open_delivery_report(
    source: str | Location | bytes, *, name: str | None = None, batch: str | None = None, max_bytes: int = MAX_BYTES
) -> DeliveryReportFile:
    """Check a report's bytes and header; ``batch``: the batch the report must be of (fills an empty Batch column).

    ``source`` is a path, or the bytes the POM client fetched (then give a
    ``name`` for messages). Raises :class:`DeliveryReportRefused`.
    """
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        label = name or "delivery report"
        check = _ByteCheck(label)
        if len(data) > max_bytes:
            raise DeliveryReportRefused(label, f"{len(data)} bytes, more than the limit of {max_bytes}")
        for start in range(0, len(data), CHUNK):
            check.feed(data[start : start + CHUNK], final=start + CHUNK >= len(data))
        if not data:
            check.feed(b"", final=True)
        stored: Location | bytes = data
    else:
        path = location(source)
        label = name or path.name
        check = _ByteCheck(label)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise DeliveryReportRefused(label, f"{size} bytes, more than the limit of {max_bytes}")
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    check.feed(chunk)
                check.feed(b"", final=True)
        except OSError as exc:
            raise DeliveryReportRefused(label, f"cannot be read: {exc.strerror or exc}") from None
        stored = path
    encoding = check.encoding()
    report = DeliveryReportFile(label, check.size, check.digest.hexdigest(), encoding, ",", {}, batch=batch,
                                _source=stored)
    header_line, report.header_line, report.delimiter = _find_header(report)
    try:
        header = next(csv.reader([header_line], delimiter=report.delimiter))
    except (csv.Error, StopIteration) as exc:
        raise DeliveryReportRefused(label, f"header not readable as CSV: {exc}", line=report.header_line) from None
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        normal = normalise_title(title)
        found = _LOOKUP.get(normal)
        if found is None and (zone := _TITLE_ZONE.search(normal)) and _LOOKUP.get(normal[:zone.start()]) in _TIME_FIELDS:
            found = _LOOKUP[normal[:zone.start()]]
            if found not in columns and zone.group(1) in ("utc", "gmt"):
                report.naive_zone = timezone.utc
        if found is None or found in columns:
            if title.strip():
                report.ignored.append(title.strip())
            continue
        columns[found] = index
    if "timestamp" not in columns and "date" in columns:
        pass  # date (and time) columns stand in for the timestamp
    else:
        for extra in ("date", "time"):
            if extra in columns:
                report.ignored.append(header[columns.pop(extra)].strip())
    found_titles = _listed([t.strip() for t in header if t.strip()])
    for required in REQUIRED:
        if required in columns or (required == "timestamp" and "date" in columns):
            continue
        if required == "batch" and batch is not None:
            continue
        raise DeliveryReportRefused(
            label, f"required column {column_title(required)} is missing (columns found: {found_titles})",
            column=column_title(required))
    report.columns = columns
    report.header_cells = header
    return report


def read_delivery_report(
    source: str | Location | bytes, *, name: str | None = None, batch: str | None = None
) -> Iterator[ReportLine]:
    """Every line of a report (checks first, then streams); see :func:`open_delivery_report`."""
    return open_delivery_report(source, name=name, batch=batch).lines()
