"""Innen's Airflow plugin: template macros for finance-facing text.

``{{ macros.innen.ogm('123456789002') }}`` → ``+++123/4567/89002+++``;
``{{ macros.innen.mask_iban(iban) }}`` keeps an IBAN out of logs.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


def ogm(number: str) -> str:
    from include.finance.reference_numbers import display_reference

    return display_reference(number)


def mask_iban(value: str) -> str:
    from include.sepa.identifiers import mask_iban as mask

    return mask(value)


class InnenPlugin(AirflowPlugin):
    name = "innen"
    macros = [ogm, mask_iban]
