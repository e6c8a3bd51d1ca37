"""The invoices' QR codes: segno's symbols with segno's mask choice made quickly, and their SVG.

Choosing the mask (speed machinery for the EPC codes):

segno picks the mask (ISO/IEC 18004 7.8.3: the lowest penalty of eight) by
scoring each masked matrix module by module in Python, which is four of the
five milliseconds an invoice's EPC code costs. Here the same scores come from
whole-row operations: rows as integers (masking is one XOR per row, 2×2
blocks are ANDs of shifted rows and a bit count), runs found by a regular
expression, the finder-like pattern by ``bytes.find`` exactly as segno
searches it. :func:`best_mask` returns the mask segno would choose, and the
code is then made by segno with that mask (``segno.make(..., mask=m)``), so
the modules are segno's own; ``tests/unit/test_qr_codes.py`` compares the
choice with segno's on many payloads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import segno
from segno import encoder

_RUN = re.compile(rb"\x00{5,}|\x01{5,}")
_N3 = bytes((1, 0, 1, 1, 1, 0, 1))


def _mask_functions() -> tuple:
    return tuple(encoder.get_data_mask_functions(is_micro=False))


@lru_cache(maxsize=64)
def _layout(width: int) -> tuple[tuple[int, ...], tuple[bytes, ...], tuple[tuple[int, ...], ...]]:
    """For a symbol of ``width``: per row the encoding region as a bit mask, the function-pattern modules as
    segno has them while it evaluates masks (format and version areas still light), and per mask its rows."""
    function = encoder.make_matrix(width, width)
    encoder.add_finder_patterns(function, width, width)
    encoder.add_alignment_patterns(function, width, width)
    function[-8][8] = 0x1  # the dark module: not part of the encoding region
    region = tuple(sum(1 << (width - 1 - j) for j in range(width) if function[i][j] > 0x1) for i in range(width))
    fixed = tuple(bytes(0 if value > 0x1 else value for value in row) for row in function)
    fixed = fixed[: width - 8] + (fixed[width - 8][:8] + b"\x00" + fixed[width - 8][9:],) + fixed[width - 7 :]
    masks = tuple(
        tuple(sum(1 << (width - 1 - j) for j in range(width) if fn(i, j)) & region[i] for i in range(width))
        for fn in _mask_functions()
    )
    return region, fixed, masks


def _pack(row: bytes) -> int:
    return int(row.translate(_DIGITS), 2)


_DIGITS = bytes.maketrans(b"\x00\x01", b"01")


def _unpack(value: int, width: int) -> bytes:
    return format(value, f"0{width}b").encode("ascii").translate(_UNDIGITS)


_UNDIGITS = bytes.maketrans(b"01", b"\x00\x01")


def _n3(lines: bytes, size: int) -> int:
    """segno's count of the 1:1:3:1:1 pattern with four light modules on one side (40 each), searched as segno
    searches each line, over ``lines``: lines of ``size`` modules, each followed by one separator byte."""
    count = 0
    stride = size + 1
    idx = lines.find(_N3)
    while idx != -1:
        start = idx - idx % stride  # the line's first module
        at = idx - start
        after = at + 7
        line = lines[start : start + size]
        if at in (0, size - 7) or not any(line[max(at - 4, 0) : at]) or not any(line[after : after + 4]):
            count += 40
            idx = lines.find(_N3, idx + 7)
        else:
            idx = lines.find(_N3, idx + 4)
    return count


def _score(symbol: int, width: int, masks: _Masks) -> int:
    """segno's penalty (N1 + N2 + N3 + N4) of a symbol given as one integer, row after row, first bit first."""
    modules = format(symbol, f"0{width * width}b").encode("ascii").translate(_UNDIGITS)
    rows = [modules[i * width : (i + 1) * width] for i in range(width)]
    columns = [modules[j::width] for j in range(width)]
    lines = b"\x02".join(rows + columns) + b"\x02"
    n1 = sum(len(run) - 2 for run in _RUN.findall(lines))
    # N2: 2x2 blocks of one colour, named by their lower-right module: shifted by ``width`` a module meets the one
    # above it, shifted by 1 the one to its left (the first module is the highest bit).
    same_below = ~(symbol ^ (symbol >> width))
    same_right = ~(symbol ^ (symbol >> 1))
    blocks = same_below & (same_below >> 1) & same_right & (same_right >> width) & masks.block_corners
    n2 = 3 * blocks.bit_count()
    n3 = _n3(lines, width)
    n4 = 10 * int(abs(float(symbol.bit_count()) / (width * width) * 100 - 50) / 5)
    return n1 + n2 + n3 + n4


class _Masks:
    """The layout of a symbol of one width, as whole-symbol integers (row after row, first module first)."""

    def __init__(self, width: int) -> None:
        region, fixed, masks = _layout(width)
        self.width = width
        self.region = _join(region, width)
        self.fixed = _join([_pack(row) for row in fixed], width) & ~self.region
        self.patterns = [_join(mask, width) for mask in masks]
        # Lower-right corners of the 2x2 blocks: every module but those of the first row and the first column.
        self.block_corners = _join([0] + [(1 << (width - 1)) - 1] * (width - 1), width)


def _join(rows: Sequence[int], width: int) -> int:
    value = 0
    for row in rows:
        value = (value << width) | row
    return value


@lru_cache(maxsize=64)
def _masks(width: int) -> _Masks:
    return _Masks(width)


def _choose(code: encoder.Code) -> tuple[int, list[int]]:
    """The mask segno would choose for ``code`` (made with mask 0), and the data rows without any mask."""
    width = len(code.matrix)
    region, _fixed, masks = _layout(width)
    data = [(_pack(bytes(row)) & region[i]) ^ masks[0][i] for i, row in enumerate(code.matrix)]
    layout = _masks(width)
    placed = _join(data, width)
    scores = [_score(layout.fixed | ((placed ^ pattern) & layout.region), width, layout) for pattern in layout.patterns]
    return min(range(len(scores)), key=scores.__getitem__), data


def _encode(content: bytes, error: str) -> encoder.Code:
    return encoder.encode(content, error=error, mode="byte", mask=0, micro=False, boost_error=False)


def best_mask(content: bytes, *, error: str = "m") -> int:
    """The data mask segno chooses for ``content`` (byte mode, level ``error``, no micro, no boost)."""
    return _choose(_encode(content, error))[0]


def make_qr(content: bytes, *, error: str = "m") -> segno.QRCode:
    """What ``segno.make`` gives for ``content`` in byte mode at level ``error`` (no micro, no boost), faster.

    The symbol is encoded once, with mask 0; the chosen mask then replaces it
    on the encoding region, and segno writes the format information for it.
    """
    code = _encode(content, error)
    best, data = _choose(code)
    if best == 0:
        return segno.QRCode(code)
    width = len(code.matrix)
    region, _fixed, masks = _layout(width)
    matrix = tuple(
        bytearray(_unpack((_pack(bytes(row)) & ~region[i]) | ((data[i] ^ masks[best][i]) & region[i]), width))
        for i, row in enumerate(code.matrix)
    )
    encoder.add_format_info(matrix, code.version, code.error, best)
    return segno.QRCode(code._replace(matrix=matrix, mask=best))


QUIET_ZONE = 4  # modules of white around the code, as ISO/IEC 18004 asks
# Printed widths on the A4 invoice, quiet zone included (include/invoices/render.py hands them to the prelude).
# Measured with phone-like reading (72-100 dpi, blur, JPEG, a few degrees of rotation, perspective, uneven
# light; zbar, OpenCV, WeChat, ZXing): 5 cm lost codes at 72 dpi with a blur of 0.35 mm that 7-8 cm keep.
# Side by side, both codes fill the 17 cm between the page margins (6 mm between the images): read from a view of
# the whole page, what counts is a module's size against the page's width, not the view's dpi (OpenCV shrinks any
# page to 512 pixels across before looking for codes; WeChat tries the page at half size, then full size, and returns
# the codes of the first attempt that finds any, so a code the half-size view misses is lost when the other one is
# found there), so both codes are as big as the width allows. Against 7 and 8 cm, on a grid of 125
# views of five invoices (70-150 dpi, blur, JPEG, 3 degrees): both codes found by zbar 121 -> 124, OpenCV 70 -> 76,
# WeChat 92 -> 111, ZXing 125 -> 125 (on 100 more views at 75-135 dpi: 96 -> 100, 45 -> 62, 86 -> 90, 100 -> 100).
# OpenCV and WeChat still miss a code in some views: more would take bigger codes than two fit side by side on A4.
EPC_WIDTH_MM = 82  # modules of 1.5-1.8 mm for a usual payload (version 5-7), 1.07 mm at version 13, EPC's largest
POM_WIDTH_MM = 82  # POM's image: its code with the amount above and the communication below (1.26 mm modules)
MIN_MODULE_MM = 0.5  # what banking apps' guidance asks at the least


def module_mm(qr: segno.QRCode, width_mm: float) -> float:
    """The side of one module in mm when ``qr``, with its quiet zone, is printed ``width_mm`` wide (:func:`qr_svg`).

    >>> round(module_mm(segno.make_qr("A", error="m"), 29), 3)
    1.0
    """
    return width_mm / qr.symbol_size(scale=1, border=QUIET_ZONE)[0]


_DARK_RUN = re.compile(rb"[\x01-\xff]+")  # a row of the matrix holds one byte per module, dark when not 0


def qr_svg(qr: segno.QRCode) -> bytes:
    """A standalone SVG of ``qr``: one user unit per module, a 4-module quiet zone, black on white.

    Written here rather than by segno's writer so that the bytes depend on the
    modules alone (no library version in them) and so that the SVG has a
    viewBox: whoever places it (the invoice prints it EPC_WIDTH_MM wide) can scale it
    freely. The dark modules are one path of filled rectangles, one per run in
    a row: a renderer fills them as one shape, without hairlines between rows.

    >>> qr_svg(segno.make_qr("A", error="m")).partition(b"><")[0]
    b'<svg xmlns="http://www.w3.org/2000/svg" width="29" height="29" viewBox="0 0 29 29" shape-rendering="crispEdges"'
    """
    size = qr.symbol_size(scale=1, border=QUIET_ZONE)[0]
    runs = [f"M{QUIET_ZONE + run.start()} {QUIET_ZONE + y}h{len(run.group())}v1h-{len(run.group())}z"
            for y, row in enumerate(qr.matrix) for run in _DARK_RUN.finditer(bytes(row))]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
        f'shape-rendering="crispEdges"><rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>\n'
    ).encode("ascii")
