"""print.pdf is printed on both sides: no invoice may start on the back of another patron's last page."""

from __future__ import annotations

import io
from pathlib import Path

import pypdf

from include.invoices.print_overview import combined_pdf


def _pdf(folder: Path, name: str, pages: int, width: int) -> Path:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=width, height=842)
    path = folder / name
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def _widths(data: bytes) -> list[int]:
    return [int(page.mediabox.width) for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def test_an_invoice_of_odd_pages_gets_a_blank_back_unless_it_is_the_last(tmp_path: Path) -> None:
    files = [_pdf(tmp_path, "a.pdf", 1, 595), _pdf(tmp_path, "b.pdf", 2, 596), _pdf(tmp_path, "c.pdf", 3, 597),
             _pdf(tmp_path, "d.pdf", 1, 598)]
    # a, its blank back; b's two pages; c's three, its blank back; d alone at the end
    assert _widths(combined_pdf(files)) == [595, 595, 596, 596, 597, 597, 597, 597, 598]


def test_every_invoice_starts_on_the_front_of_a_sheet(tmp_path: Path) -> None:
    counts = [1, 1, 2, 5, 1]
    files = [_pdf(tmp_path, f"{n}.pdf", pages, 600 + n) for n, pages in enumerate(counts)]
    widths = _widths(combined_pdf(files))
    starts = [widths.index(600 + n) for n in range(len(counts))]
    assert all(start % 2 == 0 for start in starts), starts
    assert combined_pdf(files) == combined_pdf(files)
