"""Airflow loads Innen's plugin from plugins/ and its macros work."""

from __future__ import annotations


def test_plugin_loads_without_errors_and_offers_its_macros() -> None:
    from airflow import plugins_manager

    plugins_manager.ensure_plugins_loaded()
    assert plugins_manager.get_import_errors() == {}
    names = {info["name"] for info in plugins_manager.get_plugin_info()}
    assert "innen" in names
    plugins_manager.integrate_macros_plugins()
    from airflow.sdk.execution_time import macros

    assert macros.innen.ogm("123456789002") == "+++123/4567/89002+++"
    assert macros.innen.mask_iban("BE68539007547034") == "BE68 **** **** 7034"
