"""Reading the QR codes of a PDF the way a phone camera does: rasterised, then scanned.

Tests check what a payer's banking app would read, not what we meant to draw,
so a PDF goes through poppler's ``pdftoppm`` (every page to a PNG at a given
resolution) and zbar's ``zbarimg`` (every QR code on every page). Both come
from Debian: ``make qr-tools``. :func:`phone_payloads` reads a coarse, blurred
view of the pages (a phone's), and :func:`square_placements` with
:func:`light_everywhere` tell where a code landed on the page and whether its
quiet zone stayed white.

Two things about zbar 0.23 shape :func:`qr_payloads`:

* zbar guesses the character set of a QR code's bytes and takes short UTF-8
  text for Shift JIS (``é`` comes out as ``ﾃｩ``). ``-Sqrcode.binary`` switches
  the guessing off and hands over the bytes as they are; we decode them as
  UTF-8, the character set our EPC codes declare (a code in another set fails
  loudly rather than coming back garbled).
* ``--raw`` writes each code's bytes followed by a newline, but an EPC payload
  is made of lines, so that stream alone cannot be cut into codes. ``--xml``
  gives each code's length in bytes, but its base64 of bytes from 0x80 up is
  corrupt in binary mode (sign extension). So the lengths come from ``--xml``
  and the bytes from ``--raw``, two scans of the same pages, and the
  separators are checked where the lengths put them.

>>> fields = parse_epc("BCD\\n002\\n1\\nSCT\\n\\nBibliotheek Leuven\\nBE68539007547034\\nEUR12.50\\n\\n123456789002")
>>> fields["amount"], fields["reference"], fields["text"], fields["bic"]
(Decimal('12.50'), '123456789002', '', '')
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pypdf

TIMEOUT_SECONDS = 120
# Only QR codes (no 1D barcodes: fewer false finds), bytes as encoded, no D-Bus chatter on stderr.
ZBARIMG_OPTIONS = ("--nodbus", "-q", "-Sdisable", "-Sqrcode.enable", "-Sqrcode.binary")
# zbar's <data>: text in CDATA as it is, or (binary data) base64 with the length in bytes.
_XML_DATA = re.compile(rb"<data(?: format='base64' length='(\d+)')?><!\[CDATA\[(.*?)\]\]></data>", re.DOTALL)
_PAGE_NUMBER = re.compile(r"-(\d+)\.(?:png|pgm)$")
ZBAR_NOTHING_FOUND = 4  # zbarimg's exit status when no image held a code

EPC_FIELDS = (
    "service_tag", "version", "charset", "identification", "bic", "name", "iban",
    "amount", "purpose", "reference", "text", "information",
)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: `make qr-tools` installs poppler-utils and zbar-tools")
    return path


def _run(command: list[str], *, ok: tuple[int, ...] = (0,)) -> bytes:
    done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
    if done.returncode not in ok:
        raise RuntimeError(f"{command[0]} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return done.stdout


def rasterise(pdf: bytes, directory: Path, *, dpi: int) -> list[Path]:
    """Every page of ``pdf`` as a PNG in ``directory``, in page order."""
    source = directory / "document.pdf"
    source.write_bytes(pdf)
    _run([_tool("pdftoppm"), "-r", str(dpi), "-png", str(source), str(directory / "page")])
    pages = sorted(directory.glob("page-*.png"), key=lambda path: int(_PAGE_NUMBER.search(path.name).group(1)))
    if not pages:
        raise RuntimeError("pdftoppm wrote no pages")
    return pages


def _lengths(pages: list[Path]) -> list[int]:
    """Each code's length in bytes, in zbar's order, from its XML output.

    Read as bytes, not with an XML parser: a text code's CDATA holds its bytes
    as they are, and a parser would turn ``\\r\\n`` into ``\\n`` (EPC lines may end
    either way) and refuse bytes that are not UTF-8. zbar writes text as CDATA
    only when it holds no ``]]>``, so the first ``]]></data>`` ends it.
    """
    xml = _run([_tool("zbarimg"), *ZBARIMG_OPTIONS, "--xml", *map(str, pages)], ok=(0, ZBAR_NOTHING_FOUND))
    return [int(length) if length else len(text) for length, text in _XML_DATA.findall(xml)]


def scan(pages: list[Path]) -> list[bytes]:
    """The bytes of every QR code on ``pages``: page by page, on a page in the order zbar finds them."""
    lengths = _lengths(pages)
    raw = _run([_tool("zbarimg"), *ZBARIMG_OPTIONS, "--raw", *map(str, pages)], ok=(0, ZBAR_NOTHING_FOUND))
    codes, at = [], 0
    for length in lengths:
        codes.append(raw[at:at + length])
        if raw[at + length:at + length + 1] != b"\n":
            raise RuntimeError(f"zbarimg --raw and --xml disagree about code {len(codes)}: {raw!r}")
        at += length + 1
    if at != len(raw):
        raise RuntimeError(f"zbarimg --raw found more than --xml: {raw[at:]!r}")
    return codes


def qr_payloads(pdf: bytes, *, dpi: int = 150) -> list[str]:
    """The text of every QR code in ``pdf`` rasterised at ``dpi`` (UTF-8), page by page.

    150 dpi is a fair print scan; about 100 dpi is what a phone held over an
    A4 page resolves. Raises :class:`UnicodeDecodeError` for a code whose
    bytes are not UTF-8.
    """
    with tempfile.TemporaryDirectory(prefix="innen-qr-") as directory:
        return [code.decode("utf-8") for code in scan(rasterise(pdf, Path(directory), dpi=dpi))]


def blurred(width: int, height: int, pixels: bytes, passes: int) -> bytes:
    """A greyscale image (``width`` × ``height``, one byte a pixel, row after row) out of focus as a camera sees it.

    Each pass smooths rows, then columns, with the binomial kernel 1-2-1 (edges repeated): ``passes`` passes are
    close to a Gaussian blur of sigma √(passes/2) pixels. Plain Python, as the tests have no imaging library.

    >>> blurred(3, 1, bytes([0, 255, 0]), 1)
    b'@\\x80@'
    """
    rows = [pixels[y * width:(y + 1) * width] for y in range(height)]
    for _ in range(passes):
        rows = [bytes((a + 2 * b + c + 2) >> 2 for a, b, c in zip(row[:1] + row[:-1], row, row[1:] + row[-1:]))
                for row in rows]
        padded = [rows[0], *rows, rows[-1]]
        rows = [bytes((a + 2 * b + c + 2) >> 2 for a, b, c in zip(*padded[y:y + 3])) for y in range(height)]
    return b"".join(rows)


def _pgm(path: Path) -> tuple[int, int, bytes]:
    """Width, height and pixels of a binary 8-bit PGM as pdftoppm writes it (``P5``, no comments)."""
    data = path.read_bytes()
    magic, width, height, depth = data.split(maxsplit=4)[:4]
    if magic != b"P5" or depth != b"255":
        raise RuntimeError(f"{path.name}: not an 8-bit binary PGM")
    w, h = int(width), int(height)
    return w, h, data[len(data) - w * h:]


def phone_payloads(pdf: bytes, *, dpi: int, blur: int) -> list[str]:
    """:func:`qr_payloads` of ``pdf`` seen the way a phone sees a page: rasterised in grey at ``dpi``, then
    :func:`blurred` by ``blur`` passes (2 at 72 dpi: sigma 1 pixel, 0.35 mm on the paper)."""
    with tempfile.TemporaryDirectory(prefix="innen-qr-") as directory:
        folder = Path(directory)
        source = folder / "document.pdf"
        source.write_bytes(pdf)
        _run([_tool("pdftoppm"), "-r", str(dpi), "-gray", str(source), str(folder / "page")])
        pages = sorted(folder.glob("page-*.pgm"), key=lambda path: int(_PAGE_NUMBER.search(path.name).group(1)))
        for page in pages:
            width, height, pixels = _pgm(page)
            page.write_bytes(b"P5\n%d %d\n255\n" % (width, height) + blurred(width, height, pixels, blur))
        return [code.decode("utf-8") for code in scan(pages)]


@dataclass(frozen=True)
class Placement:
    """Where a square SVG of ``units`` user units landed on a page: its top left corner in points from the page's
    top left, and the points one unit takes (one module, for :func:`include.invoices.qr_codes.qr_svg`)."""

    page: int
    left: float
    top: float
    unit: float
    units: int

    def box(self, dpi: int, inset_units: float = 0) -> tuple[int, int, int, int]:
        """The pixels (left, top, right, bottom; right and bottom excluded) of the square less ``inset_units``
        on every side, at ``dpi``: only pixels wholly inside."""
        scale = dpi / 72
        first = (self.left + inset_units * self.unit) * scale, (self.top + inset_units * self.unit) * scale
        side = (self.units - 2 * inset_units) * self.unit * scale
        return (math.ceil(first[0]), math.ceil(first[1]), math.floor(first[0] + side), math.floor(first[1] + side))


def square_placements(pdf: bytes, units: int) -> list[Placement]:
    """Every white square of ``units`` × ``units`` user units the PDF paints, scaled alike on both axes: the
    background of each code :func:`include.invoices.qr_codes.qr_svg` drew of that size, as Typst writes it
    (``s 0 0 -s x y cm``, white, ``0 0 m units 0 l units units l 0 units l h f``)."""
    square = [(b"m", [0, 0]), (b"l", [units, 0]), (b"l", [units, units]), (b"l", [0, units]), (b"h", []), (b"f", [])]
    found = []
    for number, page in enumerate(pypdf.PdfReader(io.BytesIO(pdf)).pages, start=1):
        contents = page.get_contents()
        if contents is None:
            continue
        height = float(page.mediabox.top)
        operations = [(operator, list(operands)) for operands, operator in contents.operations]
        for at, (operator, operands) in enumerate(operations):
            if operator != b"cm":
                continue
            a, b, c, d, e, f = (float(value) for value in operands)
            follows = operations[at + 1:at + 9]
            if (a > 0 and a == -d and b == c == 0 and [op for op, _ in follows[:2]] == [b"cs", b"scn"]
                    and follows[1][1] == [1] and follows[2:] == square):
                found.append(Placement(number, e, height - f, a, units))
    return found


def light_everywhere(pdf: bytes, page: int, boxes: list[tuple[int, int, int, int]], *, dpi: int) -> bool:
    """Whether every pixel of ``page`` rasterised in grey at ``dpi`` inside one of ``boxes`` (left, top, right,
    bottom; right and bottom excluded) but in none of the boxes after it is white."""
    outer, *holes = boxes
    with tempfile.TemporaryDirectory(prefix="innen-qr-") as directory:
        folder = Path(directory)
        (folder / "document.pdf").write_bytes(pdf)
        _run([_tool("pdftoppm"), "-r", str(dpi), "-gray", "-f", str(page), "-l", str(page), "-singlefile",
              str(folder / "document.pdf"), str(folder / "page")])
        width, _height, pixels = _pgm(folder / "page.pgm")
    left, top, right, bottom = outer
    for y in range(top, bottom):
        row = pixels[y * width:(y + 1) * width]
        for x in range(left, right):
            if row[x] < 250 and not any(hl <= x < hr and ht <= y < hb for hl, ht, hr, hb in holes):
                return False
    return True


def parse_epc(payload: str) -> dict[str, str | Decimal | None]:
    """The fields of an EPC069-12 payload by name; fields left out at the end are "".

    ``amount`` is a Decimal (None when the code has none), everything else a
    str as written. ``information`` is the standard's twelfth field
    (beneficiary to originator information), which Innen does not write.
    Raises ValueError for a text that is no EPC payload.

    >>> fields = parse_epc("BCD\\r\\n002\\r\\n1\\r\\nSCT\\r\\nGKCCBEBB\\r\\nZoë\\r\\nBE68539007547034\\r\\nEUR1")
    >>> fields["name"], fields["amount"], fields["reference"]
    ('Zoë', Decimal('1'), '')
    >>> parse_epc("https://example.org")
    Traceback (most recent call last):
    ...
    ValueError: not an EPC QR payload: 'https://example.org'
    """
    lines = payload.replace("\r\n", "\n").split("\n")
    if lines[0] != "BCD" or len(lines) > len(EPC_FIELDS):
        raise ValueError(f"not an EPC QR payload: {payload!r}")
    fields: dict[str, str | Decimal | None] = dict(zip(EPC_FIELDS, lines + [""] * (len(EPC_FIELDS) - len(lines))))
    amount = fields["amount"]
    if not amount:
        fields["amount"] = None
    else:
        try:
            if not amount.startswith("EUR"):
                raise InvalidOperation
            fields["amount"] = Decimal(amount[3:])
        except InvalidOperation:
            raise ValueError(f"EPC QR amount is not EUR followed by a number: {amount!r}") from None
    return fields
