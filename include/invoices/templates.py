"""Invoice templates: Typst files carrying the seed's placeholders (seed 004, 2.4.8), checked when loaded.

An institution edits its invoices as files under ``INNEN_TEMPLATE_DIR``
(default ``templates/invoices``), one per print state (the reference type's
``lnstate``) and language: ``FAC.nl.typ``, ``FAC.fr.typ``; a type without a
print state, or whose file is missing, uses ``default.<language>.typ``. The
files are `Typst <https://typst.app/docs>`_ markup; the placeholders are the
seed's:

=========================  =====================================================================
``$State.Camount``         the amount the invoice asks for (the reference's open amount)
``$State.Ccur``            its currency
``$State.Cinvoicenr``      the invoice number (empty when the type numbers none)
``$State.Cref``            the structured communication: ``+++123/4567/89002+++``, RF in groups of four
``$State.Cpaydate``        the date it is to be paid by ("Te betalen tegen")
``$State.Cfploi``          the payment reference, ``fp:SYS:n``
``$State.Ctitle``          the reference's description on one line
``$State.Ctitle{}``        the description with its line breaks kept
``$State.Ctitle[x]``       line ``x`` (0, 1, ...) of the description, empty when it has none
``$Euser.<field>``         the end user: ``name firstname lastname eloi street number zip city country address``
                           (``address`` is the whole postal block of the address the invoice goes to)
``$Creditor.<field>``      ``name`` (the financial system's merchant name), ``iban``, ``bic``, ``id``
``{invoice_qr}``           POM's QR code in POM's own layout with its pay link (seed 000, 4.3), when
                           the type may be paid online and a request is open
``{epc_qr}``               the EPC069-12 bank-transfer QR code (not on a direct-debit notice)
``{debt_lines}``           the table of debt lines: transaction code, description, amount, open amount;
                           once something was paid, the whole amount and what was paid above what is asked
``{payment_instructions}`` how to pay: by transfer with the communication, or the direct debit's date
                           (after a partial payment it first says how much of the whole was paid)
=========================  =====================================================================

A placeholder stands where text goes; the value is inserted as text, so an
``&``, ``#`` or ``*`` in a name is printed as it is, and a word too wide for
its line (a long code) breaks where the line ends. In a template's own code,
``innen-text("State.Cinvoicenr")`` gives a value as a string (to test it);
beyond the seed's placeholders, ``innen-show("invoice_date")`` shows the
invoice's date (its print day), which the shipped templates print.
A template naming a placeholder that does not exist is refused when it is
loaded, with the template, the line and the placeholder, so no invoice is ever
half filled; so is a near miss Typst would print as written or take for math
(``{invoiceqr}``, ``$state.Camount``, ``$State.Ctitle[x]``, the pay link's
``$amount``).

>>> t = parse_template("Factuur $State.Cinvoicenr voor $Euser.name\\n$State.Ctitle[1]", "FAC.nl.typ")
>>> [p.key for p in t.placeholders]
['State.Cinvoicenr', 'Euser.name', 'State.Ctitle[1]']
>>> parse_template("Bedrag $State.Cbedrag", "FAC.nl.typ")
Traceback (most recent call last):
...
include.invoices.templates.TemplateError: template FAC.nl.typ, line 1: unknown placeholder $State.Cbedrag
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from include.errors import InnenError

STATE_FIELDS = ("Camount", "Ccur", "Cinvoicenr", "Cref", "Cpaydate", "Cfploi", "Ctitle")
EUSER_FIELDS = ("name", "firstname", "lastname", "eloi", "street", "number", "zip", "city", "country", "address")
CREDITOR_FIELDS = ("name", "iban", "bic", "id")
BLOCKS = ("invoice_qr", "epc_qr", "debt_lines", "payment_instructions")
MULTI_LINE = ("Euser.address",)  # placeholders whose value is a block of lines
LANGUAGES = ("nl", "fr")
DEFAULT_TEMPLATE = "default"

_FIELDS = {"State": STATE_FIELDS, "Euser": EUSER_FIELDS, "Creditor": CREDITOR_FIELDS}
# The pay link's placeholders (seed 004, 2.5.6): written in an invoice they would be Typst math, an error naming none.
_PAY_LINK = {"ref": "Cref", "inv": "Cinvoicenr", "amount": "Camount", "cur": "Ccur", "fploi": "Cfploi",
             "title": "Ctitle"}
# ``$Group.name``, with ``{}`` or ``[...]`` after it; a pay-link placeholder; a word (or words joined by ``_`` or
# spaces) in braces. What is not near a placeholder is left to Typst: ``$arrow.r$`` is a symbol, ``{x}`` code.
_PLACEHOLDER = re.compile(
    r"\$(?P<group>[A-Za-z]+)\.(?P<name>[A-Za-z]+)(?P<suffix>\{\}|\[(?P<index>[^\]\n]*)\])?"
    r"|\$(?P<paylink>" + "|".join(_PAY_LINK) + r")\b(?!\.)"
    r"|\{(?P<block>\s*[A-Za-z]+(?:[_ ][A-Za-z]+)*\s*)\}"
)
_SNAKE_CASE = re.compile(r"[a-z]+(?:_[a-z]+)+")


def _loose(name: str) -> str:
    return name.lower().replace("_", "").replace(" ", "")


_LOOSE_BLOCKS = {_loose(block): block for block in BLOCKS}
_LOOSE_GROUPS = {group.lower(): group for group in _FIELDS}


class TemplateError(InnenError):
    """A template cannot be used; the message names the template, the line and what is wrong."""


@dataclass(frozen=True)
class Placeholder:
    key: str  # "State.Camount", "State.Ctitle{}", "State.Ctitle[2]", "Euser.name", "{epc_qr}"
    line: int
    start: int
    end: int


@dataclass(frozen=True)
class Template:
    """A parsed template: its source and where its placeholders are."""

    name: str
    source: str
    placeholders: tuple[Placeholder, ...]

    def typst_source(self) -> str:
        """The template with every placeholder replaced by a Typst expression reading the invoice's data.

        ``#(...);`` inserts a value as text and ends the expression at the
        semicolon, whatever follows it in the template.

        >>> parse_template("Ref $State.Cref.", "t").typst_source()
        'Ref #innen-show("State.Cref");.'
        >>> parse_template("{epc_qr}", "t").typst_source()
        '#innen-epc-qr();'
        """
        parts, position = [], 0
        for placeholder in self.placeholders:
            parts.append(self.source[position:placeholder.start])
            parts.append(_expression(placeholder.key))
            position = placeholder.end
        parts.append(self.source[position:])
        return "".join(parts)


def _expression(key: str) -> str:
    if key.startswith("{"):
        return f"#innen-{key[1:-1].replace('_', '-')}();"
    if key.endswith("{}") or key in MULTI_LINE:
        return f'#innen-lines("{key.removesuffix("{}")}");'
    if key.endswith("]"):
        field, index = key[:-1].split("[")
        return f'#innen-line("{field}", {int(index)});'
    return f'#innen-show("{key}");'


def parse_template(source: str, name: str) -> Template:
    """The placeholders of ``source``; an unknown one raises :class:`TemplateError`."""
    found = []
    for match in _PLACEHOLDER.finditer(source):
        line = source.count("\n", 0, match.start()) + 1
        where = f"template {name}, line {line}"
        if match["block"] is not None:
            block = match["block"]
            if block in BLOCKS:
                key = match.group(0)
            elif _loose(block) in _LOOSE_BLOCKS:
                raise TemplateError(f"{where}: unknown placeholder {match.group(0)}, "
                                    f"did you mean {{{_LOOSE_BLOCKS[_loose(block)]}}}?")
            elif _SNAKE_CASE.fullmatch(block):
                raise TemplateError(f"{where}: unknown placeholder {match.group(0)}")
            else:
                continue  # Typst's own braces
        elif match["paylink"]:
            raise TemplateError(f"{where}: ${match['paylink']} is a placeholder of the pay link, not of invoices: "
                                f"use $State.{_PAY_LINK[match['paylink']]}")
        else:
            group, field = match["group"], match["name"]
            if group not in _FIELDS:
                if group.lower() in _LOOSE_GROUPS:
                    raise TemplateError(f"{where}: unknown placeholder ${group}.{field}, "
                                        f"placeholders are written ${_LOOSE_GROUPS[group.lower()]}.…")
                if group[0].islower():
                    continue  # a Typst symbol in math, such as $arrow.r$
            if field not in _FIELDS.get(group, ()):
                raise TemplateError(f"{where}: unknown placeholder ${group}.{field}")
            if match["suffix"] and (group, field) != ("State", "Ctitle"):
                raise TemplateError(f"{where}: only $State.Ctitle takes {{}} or [x], not {match.group(0)}")
            if match["index"] is not None and not match["index"].isdigit():
                raise TemplateError(f"{where}: {match.group(0)} takes a line number (0, 1, 2, ...) between the "
                                    "brackets")
            key = f"{group}.{field}{match['suffix'] or ''}"
        found.append(Placeholder(key, line, match.start(), match.end()))
    return Template(name, source, tuple(found))


def template_path(folder: Path, print_state: str | None, language: str) -> Path:
    """The file for a print state and language: its own, else the default in that language, else in Dutch."""
    language = language if language in LANGUAGES else LANGUAGES[0]
    candidates = [f"{print_state}.{language}.typ"] if print_state else []
    candidates += [f"{DEFAULT_TEMPLATE}.{language}.typ", f"{DEFAULT_TEMPLATE}.{LANGUAGES[0]}.typ"]
    for candidate in candidates:
        if _safe_name(candidate) and (folder / candidate).is_file():
            return folder / candidate
    raise TemplateError(f"no invoice template for print state {print_state!r} in {folder} (looked for {candidates})")


def _safe_name(name: str) -> bool:
    """A print state names a file in the template folder, never a path out of it."""
    return "/" not in name and "\\" not in name and not name.startswith(".")


def load_template(path: Path) -> Template:
    """Read and check one template file (UTF-8)."""
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError(f"template {path.name} is not UTF-8 text: {exc}") from None
    return parse_template(source, path.name)
