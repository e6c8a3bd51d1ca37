"""Where Innen keeps its files and how it reaches its database.

Everything is taken from the environment so that Airflow workers, the demo and
tests agree without a config file:

``INNEN_DB_URL``
    SQLAlchemy URL of the application database. Default: a SQLite file
    ``var/innen.sqlite`` in the project.
``INNEN_VAR_DIR``
    Root of the files Innen writes (outbox, reports). Default: ``var/`` in the
    project.
``INNEN_TEMPLATE_DIR``
    The invoice templates an institution edits (``<print state>.<language>.typ``).
    Default: ``templates/invoices`` in the project.
``INNEN_PUBLIC_URL``
    Where payers' browsers and POM reach Innen's callback and return pages
    (the ``/pom/...`` routes). Default: ``http://localhost:8080/innen``, the
    Airflow API server of ``make ui`` with our plugin's app.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DB_URL_SETTING = "INNEN_DB_URL"


def var_dir() -> Path:
    """Root folder for everything Innen writes at run time."""
    return Path(os.environ.get("INNEN_VAR_DIR") or PROJECT_ROOT / "var")


def outbox_dir() -> Path:
    """Released bank files: only validated, complete files ever appear here."""
    return var_dir() / "outbox"


def staging_dir() -> Path:
    """Bank files waiting for finance's approval; the outbox gets them only when approved."""
    return var_dir() / "staging"


def reports_dir() -> Path:
    """CSV and HTML reports for finance."""
    return var_dir() / "reports"


def inbox_dir(kind: str) -> Path:
    """Where files to import arrive, e.g. ``var/inbox/camt053``."""
    return var_dir() / "inbox" / kind


def archive_dir() -> Path:
    """Imported files, kept as they came."""
    return var_dir() / "archive"


def quarantine_dir() -> Path:
    """Refused files, each with ``<name>.reason.txt`` beside it."""
    return var_dir() / "quarantine"


def invoices_dir() -> Path:
    """Invoice PDFs, one folder per print day: ``var/invoices/<day>/<document>.pdf``."""
    return var_dir() / "invoices"


TEMPLATE_DIR_SETTING = "INNEN_TEMPLATE_DIR"


def templates_dir() -> Path:
    """The invoice templates (``INNEN_TEMPLATE_DIR``), kept as files an institution can edit."""
    return Path(os.environ.get(TEMPLATE_DIR_SETTING) or PROJECT_ROOT / "templates" / "invoices")


def database_url() -> str:
    """The application database URL (``INNEN_DB_URL``), defaulting to SQLite under var/."""
    return os.environ.get(DB_URL_SETTING) or f"sqlite:///{var_dir() / 'innen.sqlite'}"


PUBLIC_URL_SETTING = "INNEN_PUBLIC_URL"


def public_url() -> str:
    """Base URL of Innen's callback and return pages, without a trailing slash."""
    return (os.environ.get(PUBLIC_URL_SETTING) or "http://localhost:8080/innen").rstrip("/")
