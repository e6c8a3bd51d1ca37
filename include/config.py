"""Where Innen keeps its files and how it reaches its database.

Everything is taken from the environment so that Airflow workers, the demo and
tests agree without a config file:

``INNEN_DB_URL``
    SQLAlchemy URL of the application database. Default: a SQLite file
    ``var/innen.sqlite`` in the project.
``INNEN_VAR_DIR``
    This machine's own folder: the default SQLite database and the default
    storage root. Default: ``var/`` in the project.
``INNEN_STORAGE_URL``
    The root every worker sees for inbox, outbox, staging, archive,
    quarantine, reports and invoices: a local folder or shared mount
    (``/srv/innen``, ``file:///srv/innen``) or an object store
    (``s3://<connection id>@<bucket>/<prefix>``, see :mod:`include.storage`).
    Default: ``INNEN_VAR_DIR``.
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

from include.storage import Location, location

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DB_URL_SETTING = "INNEN_DB_URL"


STORAGE_URL_SETTING = "INNEN_STORAGE_URL"


def var_dir() -> Path:
    """This machine's folder for what is not shared: the default SQLite database (and the default storage)."""
    return Path(os.environ.get("INNEN_VAR_DIR") or PROJECT_ROOT / "var")


def storage_root() -> Location:
    """The root of the files every worker shares (``INNEN_STORAGE_URL``, default :func:`var_dir`)."""
    return location(os.environ.get(STORAGE_URL_SETTING) or var_dir())


def outbox_dir() -> Location:
    """Released bank files: only validated, complete files ever appear here."""
    return storage_root() / "outbox"


def staging_dir() -> Location:
    """Bank files waiting for finance's approval; the outbox gets them only when approved."""
    return storage_root() / "staging"


def reports_dir() -> Location:
    """CSV and HTML reports for finance."""
    return storage_root() / "reports"


def inbox_dir(kind: str) -> Location:
    """Where files to import arrive, e.g. ``var/inbox/camt053``."""
    return storage_root() / "inbox" / kind


def archive_dir() -> Location:
    """Imported files, kept as they came."""
    return storage_root() / "archive"


def quarantine_dir() -> Location:
    """Refused files, each with ``<name>.reason.txt`` beside it."""
    return storage_root() / "quarantine"


def invoices_dir() -> Location:
    """Invoice PDFs, one folder per print day: ``var/invoices/<day>/<document>.pdf``."""
    return storage_root() / "invoices"


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
