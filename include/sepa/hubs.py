"""Whether a bank hub holds what a bank file needs."""

from __future__ import annotations

from include.finance.models import BankHub
from include.sepa.identifiers import bic_problem, creditor_id_problem, iban_problem


def hub_problems(hub: BankHub) -> list[str]:
    """What is missing or wrong on ``hub`` for collecting; empty when complete."""
    problems = []
    if (problem := creditor_id_problem(hub.creditor_id)) is not None:
        problems.append(problem)
    if (problem := iban_problem(hub.creditor_iban)) is not None:
        problems.append("creditor " + problem)
    if (problem := bic_problem(hub.creditor_bic)) is not None:
        problems.append("creditor " + problem)
    if not (hub.creditor_name or "").strip():
        problems.append("creditor name missing")
    if hub.currency != "EUR":
        problems.append(f"currency {hub.currency} is not EUR")
    return problems
