"""A POM-style QR image: the code with the amount above it and the communication and due date below.

POM requires its QR codes to be shown in its own layout (seed 000, 4.3), so
the simulator draws the same texts around the code in both formats. SVG uses
real text elements. PNG is written without Pillow (not a dependency): texts are
drawn with a small built-in 3x5 pixel font and the file is encoded with zlib,
which keeps the images readable by people and the code scannable.

>>> layout = QrLayout("https://pom.example/pay/qr_000001", "12.50", "+++090/9337/55493+++", "2026-04-15")
>>> layout.lines()
['EUR 12.50', '+++090/9337/55493+++', 'VERVALDAG 2026-04-15']
>>> png(layout)[:8]
b'\\x89PNG\\r\\n\\x1a\\n'
>>> "+++090/9337/55493+++" in svg(layout)
True
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from html import escape

import segno

MODULE_PX = 4
QUIET_ZONE = 4
FONT_PX = 3
_GLYPH_W = 3
_GLYPH_H = 5
_MARGIN = 12

_FONT_ROWS: dict[str, str] = {
    "0": "###|#.#|#.#|#.#|###", "1": ".#.|##.|.#.|.#.|###", "2": "###|..#|###|#..|###",
    "3": "###|..#|.##|..#|###", "4": "#.#|#.#|###|..#|..#", "5": "###|#..|###|..#|###",
    "6": "###|#..|###|#.#|###", "7": "###|..#|..#|.#.|.#.", "8": "###|#.#|###|#.#|###",
    "9": "###|#.#|###|..#|###", "+": "...|.#.|###|.#.|...", "/": "..#|..#|.#.|#..|#..",
    "-": "...|...|###|...|...", ".": "...|...|...|...|.#.", ":": "...|.#.|...|.#.|...",
    ",": "...|...|...|.#.|#..", "*": "#.#|.#.|###|.#.|#.#", " ": "...|...|...|...|...",
    "A": ".#.|#.#|###|#.#|#.#", "B": "##.|#.#|##.|#.#|##.", "C": ".##|#..|#..|#..|.##",
    "D": "##.|#.#|#.#|#.#|##.", "E": "###|#..|##.|#..|###", "F": "###|#..|##.|#..|#..",
    "G": ".##|#..|#.#|#.#|.##", "H": "#.#|#.#|###|#.#|#.#", "I": "###|.#.|.#.|.#.|###",
    "J": "..#|..#|..#|#.#|.#.", "K": "#.#|#.#|##.|#.#|#.#", "L": "#..|#..|#..|#..|###",
    "M": "#.#|###|###|#.#|#.#", "N": "##.|#.#|#.#|#.#|#.#", "O": ".#.|#.#|#.#|#.#|.#.",
    "P": "##.|#.#|##.|#..|#..", "Q": ".#.|#.#|#.#|##.|.##", "R": "##.|#.#|##.|#.#|#.#",
    "S": ".##|#..|.#.|..#|##.", "T": "###|.#.|.#.|.#.|.#.", "U": "#.#|#.#|#.#|#.#|###",
    "V": "#.#|#.#|#.#|#.#|.#.", "W": "#.#|#.#|###|###|#.#", "X": "#.#|#.#|.#.|#.#|#.#",
    "Y": "#.#|#.#|.#.|.#.|.#.", "Z": "###|..#|.#.|#..|###",
}
_FONT: dict[str, tuple[tuple[bool, ...], ...]] = {
    char: tuple(tuple(cell == "#" for cell in row) for row in rows.split("|")) for char, rows in _FONT_ROWS.items()
}


@dataclass(frozen=True)
class QrLayout:
    """What goes on the image: the QR payload and the three texts around it."""

    payload: str
    amount: str
    communication: str
    due_date: str | None
    test_mode: bool = False

    def lines(self) -> list[str]:
        """The texts in reading order: amount (above the code), then communication and due date (below)."""
        texts = [f"EUR {self.amount}", self.communication]
        if self.due_date:
            texts.append(f"VERVALDAG {self.due_date}")
        if self.test_mode:
            texts.append("TESTMODUS")
        return texts


def _text_width(text: str) -> int:
    return max(0, len(text) * (_GLYPH_W + 1) - 1) * FONT_PX


def _line_height() -> int:
    return (_GLYPH_H + 2) * FONT_PX


def _blit_text(canvas: list[bytearray], text: str, top: int, width: int) -> None:
    left = (width - _text_width(text)) // 2
    for index, char in enumerate(text.upper()):
        glyph = _FONT.get(char, _FONT["*"])
        x0 = left + index * (_GLYPH_W + 1) * FONT_PX
        for gy, row in enumerate(glyph):
            for gx, on in enumerate(row):
                if on:
                    for dy in range(FONT_PX):
                        y = top + gy * FONT_PX + dy
                        canvas[y][x0 + gx * FONT_PX : x0 + (gx + 1) * FONT_PX] = b"\x00" * FONT_PX


def png(layout: QrLayout) -> bytes:
    """The layout as an 8-bit greyscale PNG."""
    matrix = segno.make(layout.payload, error="m", micro=False).matrix
    code_px = (len(matrix) + 2 * QUIET_ZONE) * MODULE_PX
    lines = layout.lines()
    width = max([code_px, *(_text_width(line) for line in lines)]) + 2 * _MARGIN
    height = _MARGIN + _line_height() + code_px + _line_height() * (len(lines) - 1) + _MARGIN
    canvas = [bytearray(b"\xff" * width) for _ in range(height)]
    _blit_text(canvas, lines[0], _MARGIN, width)
    code_top = _MARGIN + _line_height()
    code_left = (width - code_px) // 2 + QUIET_ZONE * MODULE_PX
    for my, modules in enumerate(matrix):
        row = bytearray(b"\xff" * (len(modules) * MODULE_PX))
        for mx, dark in enumerate(modules):
            if dark & 1:
                row[mx * MODULE_PX : (mx + 1) * MODULE_PX] = b"\x00" * MODULE_PX
        for dy in range(MODULE_PX):
            y = code_top + (QUIET_ZONE + my) * MODULE_PX + dy
            canvas[y][code_left : code_left + len(row)] = row
    for index, line in enumerate(lines[1:]):
        _blit_text(canvas, line, code_top + code_px + index * _line_height(), width)
    raw = b"".join(b"\x00" + bytes(row) for row in canvas)
    return _png_file(width, height, raw)


def _png_file(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def svg(layout: QrLayout) -> str:
    """The layout as an SVG document with the texts as text elements (searchable, scalable)."""
    qr = segno.make(layout.payload, error="m", micro=False)
    code_px = qr.symbol_size(scale=MODULE_PX, border=QUIET_ZONE)[0]
    lines = layout.lines()
    font_size = 16
    line_h = 22
    width = max(code_px, max(len(line) for line in lines) * 10) + 2 * _MARGIN
    height = _MARGIN + line_h + code_px + line_h * (len(lines) - 1) + _MARGIN
    center = width / 2
    code_left = (width - code_px) // 2
    code_top = _MARGIN + line_h
    texts = [f'<text x="{center}" y="{_MARGIN + font_size}" class="amount">{escape(lines[0])}</text>']
    for index, line in enumerate(lines[1:]):
        baseline = code_top + code_px + index * line_h + font_size
        texts.append(f'<text x="{center}" y="{baseline}">{escape(line)}</text>')
    inline = qr.svg_inline(scale=MODULE_PX, border=QUIET_ZONE)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">'
        f'<rect width="100%" height="100%" fill="#fff"/>'
        f'<g font-family="DejaVu Sans Mono, monospace" font-size="{font_size}" text-anchor="middle">'
        + "".join(texts)
        + f'</g><g transform="translate({code_left},{code_top})">{inline}</g></svg>'
    )
