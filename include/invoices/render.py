"""Turning an invoice's data into PDF bytes with Typst.

Why Typst: measured here on the same one-page invoice (three debt lines, two
QR codes), WeasyPrint took 220 ms a page and Typst 2.9 ms with the data
changing from one invoice to the next; both make deterministic PDFs
(``date: none`` leaves the creation time out, and Typst derives the PDF's id
from its content). Typst's Python package carries its compiler and fonts in
its wheel (Libertinus Serif, New Computer Modern, DejaVu Sans Mono), so the
same pinned version gives the same bytes on every machine; fonts an
institution adds go in ``fonts/`` beside its templates.

One :class:`Renderer` keeps one Typst compiler per template (prelude +
template, compiled from memory): only the invoice's data changes between
invoices, passed as JSON through ``sys.inputs``. A template is checked when
first used: its placeholders (:mod:`include.invoices.templates`), then one
render with sample data, so a template Typst cannot read is refused before
any invoice is written.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import typst

from include.invoices.qr_codes import EPC_WIDTH_MM, POM_WIDTH_MM
from include.invoices.templates import Template, TemplateError, load_template

PRELUDE = Path(__file__).with_name("prelude.typ")


def prelude() -> str:
    """Innen's Typst part of every invoice: the printed widths of the QR codes, then ``prelude.typ``."""
    return (f"#let innen-epc-qr-width = {EPC_WIDTH_MM}mm\n#let innen-pom-qr-width = {POM_WIDTH_MM}mm\n"
            + PRELUDE.read_text(encoding="utf-8"))


SAMPLE_DATA: dict[str, Any] = {
    "language": "nl", "State.Camount": "12,50", "State.Ccur": "EUR", "State.Cinvoicenr": "SAMPLE-1",
    "State.Cref": "+++090/9337/55493+++", "State.Cpaydate": "31/12/2026", "State.Cfploi": "fp:SAMPLE:1",
    "State.Ctitle": "Voorbeeld", "State.Ctitle{}": ["Voorbeeld"], "Euser.name": "Voorbeeld", "Euser.address{}": [],
    "Euser.address": "", "Creditor.name": "Voorbeeld", "lines": [], "instructions": "", "epc_svg": None,
    "pom_svg": None, "pay_url": None,
}


class Renderer:
    """Renders invoices; keeps a compiler per template file for the life of the object (one process)."""

    def __init__(self, template_folder: Path) -> None:
        self.folder = template_folder
        fonts = template_folder / "fonts"
        self._font_paths = [str(fonts)] if fonts.is_dir() else []
        self._compilers: dict[Path, tuple[Template, typst.Compiler]] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def template(self, path: Path) -> Template:
        return self._compiler(path)[0]

    def render(self, path: Path, data: dict[str, Any]) -> bytes:
        """The PDF of one invoice from the template at ``path``."""
        template, compiler = self._compiler(path)
        try:
            return compiler.compile(sys_inputs={"invoice": _as_json(data)})
        except typst.TypstError as exc:
            raise TemplateError(f"template {template.name} could not be rendered: {_first_line(exc)}") from None

    def _workdir(self) -> Path:
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="innen-invoices-")
        return Path(self._tmp.name)

    def _compiler(self, path: Path) -> tuple[Template, typst.Compiler]:
        found = self._compilers.get(path)
        if found is None:
            template = load_template(path)
            source = prelude() + "\n" + template.typst_source()
            # The compiler reads its main file again on every compile: a file of its own, not bytes (which the
            # binding serves once).
            main = self._workdir() / f"{len(self._compilers)}.typ"
            main.write_text(source, encoding="utf-8")
            compiler = typst.Compiler(str(main), root=str(main.parent), font_paths=self._font_paths,
                                      ignore_system_fonts=True)
            try:
                compiler.compile(sys_inputs={"invoice": _as_json(SAMPLE_DATA)})
            except typst.TypstError as exc:
                raise TemplateError(f"template {template.name} is not valid Typst: {_first_line(exc)}") from None
            found = self._compilers[path] = (template, compiler)
        return found


def _as_json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or ["?"])[0][:300]


def page_count(pdf: bytes) -> int:
    """Pages of a PDF Typst wrote: the ``/Count`` of its page tree's root, the first ``/Type/Pages`` object.

    >>> page_count(b"%PDF-1.7 1 0 obj <</Type/Pages/Count 3/Kids[17 0 R 18 0 R 19 0 R]>>")
    3
    """
    found = _PAGES.search(pdf)
    if found is None:
        raise ValueError("not a PDF page tree Typst writes")
    return int(found.group(1))


_PAGES = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)")
