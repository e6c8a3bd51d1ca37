"""The official pain.008 schemas, loaded once per process."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from lxml import etree

from include.xml_safety import safe_parser

XSD_DIR = Path(__file__).with_name("xsd")


def namespace(version: str) -> str:
    return f"urn:iso:std:iso:20022:tech:xsd:{version}"


# libxml2 compiles schemas with shared state: two threads compiling at once fail now and then with
# "XMLSchemaParseError: Internal error". Compiling is rare; validating stays parallel.
_compiling = threading.Lock()


def _compile(path: Path) -> etree.XMLSchema:
    with _compiling:
        return etree.XMLSchema(etree.parse(str(path), safe_parser()))


@lru_cache(maxsize=None)
def schema(version: str) -> etree.XMLSchema:
    """The compiled XSD of ``version`` (e.g. ``pain.008.001.02``)."""
    path = XSD_DIR / f"{version}.xsd"
    if not path.is_file():
        raise ValueError(f"no schema for {version}")
    return _compile(path)


_per_thread = threading.local()


def thread_schema(version: str) -> etree.XMLSchema:
    """A compiled XSD of this thread's own: a schema object keeps the error log of its last
    validation, so two threads validating with one object would read each other's errors."""
    cache = getattr(_per_thread, "schemas", None)
    if cache is None:
        cache = _per_thread.schemas = {}
    if version not in cache:
        path = XSD_DIR / f"{version}.xsd"
        cache[version] = _compile(path)
    return cache[version]
