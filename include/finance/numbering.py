"""The numbers of new payment references: ``fp:SYS:n``, the reference number and the invoice number.

Seed 2.5.2, per payment reference type: ``gen`` draws reference numbers from
a named counter, in a format (OGM or RF) after a prefix; without it the
reference number is a structured communication (OGM) over the fp number.
``geninv`` draws invoice numbers from a named counter after a prefix;
without it there is no invoice number. The identifier's number comes from the
counter ``fp:<system>``.

Mandate execution numbers thousands of references at once and manual creation
one: both come here, and each series costs one counter statement however many
numbers it hands out (:func:`include.finance.counters.reserve`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.finance.counters import reserve
from include.finance.models import FinancialSystem, PaymentReferenceType
from include.finance.reference_numbers import make_reference


@dataclass(frozen=True, slots=True)
class _TypeNumbering:
    reference_format: str | None
    reference_counter: str | None
    reference_prefix: str
    invoice_counter: str | None
    invoice_prefix: str


def reference_numbers(session: Session, wanted: Sequence[tuple[int, int]]) -> list[dict[str, str | None]]:
    """Numbers for new references, one per ``(financial system id, type id)`` of ``wanted``, in that order.

    Each is ``{"loi": "fp:SYS:n", "reference_number": ..., "invoice_number": ... or None}``. The counters
    are taken in the caller's transaction: rolled back with it, never handed out twice.
    """
    if not wanted:
        return []
    system_ids = sorted({system for system, _ in wanted})
    type_ids = sorted({type_id for _, type_id in wanted})
    systems = dict(
        session.execute(select(FinancialSystem.id, FinancialSystem.code).where(FinancialSystem.id.in_(system_ids))).all()
    )
    types = {
        t.id: _TypeNumbering(
            t.reference_format, t.reference_counter, t.reference_prefix, t.invoice_counter, t.invoice_prefix
        )
        for t in session.scalars(select(PaymentReferenceType).where(PaymentReferenceType.id.in_(type_ids)))
    }
    per_system: dict[int, int] = defaultdict(int)
    per_counter: dict[str, int] = defaultdict(int)
    per_invoice_counter: dict[str, int] = defaultdict(int)
    for system, type_id in wanted:
        type_ = types[type_id]
        per_system[system] += 1
        if type_.reference_counter:
            per_counter[type_.reference_counter] += 1
        if type_.invoice_counter:
            per_invoice_counter[type_.invoice_counter] += 1
    next_loi = {sid: reserve(session, f"fp:{systems[sid]}", n) for sid, n in per_system.items()}
    next_ref = {name: reserve(session, name, n) for name, n in per_counter.items()}
    next_invoice = {name: reserve(session, name, n) for name, n in per_invoice_counter.items()}

    numbers: list[dict[str, str | None]] = []
    for system, type_id in wanted:
        type_ = types[type_id]
        number = next_loi[system]
        next_loi[system] += 1
        if type_.reference_counter:
            counter = next_ref[type_.reference_counter]
            next_ref[type_.reference_counter] += 1
            reference = make_reference(type_.reference_format or "OGM", type_.reference_prefix, counter)
        else:  # seed 2.5.2: by default a structured communication over the fp number
            reference = make_reference("OGM", "", number)
        invoice = None
        if type_.invoice_counter:
            invoice = f"{type_.invoice_prefix}{next_invoice[type_.invoice_counter]}"
            next_invoice[type_.invoice_counter] += 1
        numbers.append(
            {"loi": f"fp:{systems[system]}:{number}", "reference_number": reference, "invoice_number": invoice}
        )
    return numbers
