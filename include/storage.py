"""Where Innen's shared files live: one root every worker sees, named by ``INNEN_STORAGE_URL``.

The inbox, outbox, staging, archive, quarantine, reports and invoices are all
folders under this root (see :mod:`include.config`). The root is one of:

* a local folder or a shared mount (``/srv/innen``, ``file:///srv/innen``):
  a :class:`pathlib.Path`. Writes go to a hidden temporary name and are
  renamed into place (atomic on POSIX, also on NFS within one folder);
* anything else fsspec knows (``s3://aws_innen@bucket/innen``,
  ``memory://innen`` in tests): Airflow's :class:`ObjectStoragePath`. The
  Airflow Connection named before the ``@`` holds the credentials, so no
  secret is in the URL or the environment. Object stores have no atomic
  rename; :mod:`include.files` writes a complete local file first and uploads
  it in one put, which an object store makes visible whole or not at all.

This module only turns a URL into a location; how files are written and moved
is :mod:`include.files`.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Union
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

Location = Union[Path, "ObjectStoragePath"]


def location(url: str | PurePath | Location) -> Location:
    """``url`` as a location: a :class:`Path` for a local path or ``file://`` URL, else an ObjectStoragePath.

    >>> location("/srv/innen/inbox")
    PosixPath('/srv/innen/inbox')
    >>> location("file:///srv/innen")
    PosixPath('/srv/innen')
    >>> location("memory://innen/reports").protocol
    'memory'
    """
    if isinstance(url, PurePath):
        return Path(url)
    if not isinstance(url, str):
        return url
    if "://" not in url:
        return Path(url)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url)


def is_local(where: Location) -> bool:
    """Whether ``where`` is on a local (or mounted) file system, where rename and fsync hold."""
    return isinstance(where, PurePath)


def name_of(where: str | Location) -> str:
    """The last part of a location or of a stored location string.

    >>> name_of("memory://innen/archive/statement.xml"), name_of("/srv/innen/archive/statement.xml")
    ('statement.xml', 'statement.xml')
    """
    return PurePath(urlparse(where).path if isinstance(where, str) and "://" in where else str(where)).name
