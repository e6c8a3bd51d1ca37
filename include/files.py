"""Writing, finding and moving files so that a reader never sees half of one.

On a local folder or shared mount, every file goes to a hidden temporary name
in its final folder, is flushed to disk, and only then renamed into place
(``os.replace`` is atomic on POSIX). On an object store (see
:mod:`include.storage`), where rename is a copy, the file is written to a local
temporary file and uploaded with one put once complete: the store shows the
object whole or not at all. Either way, if the writer raises, nothing appears.

Moving a file out of the inbox on an object store is a copy then a delete. A
crash between the two leaves the file in the inbox as well as in the archive;
the next import finds it already imported (same checksum) and only moves it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from include.storage import Location, is_local


@contextmanager
def atomic_writer(path: Location, *, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file object that becomes ``path`` when the block ends without error.

    ``durable=False`` leaves the flush to disk to the caller, who writes many
    files and makes them durable together with :func:`make_durable` before
    recording them anywhere.
    """
    if not is_local(path):
        with _uploaded(path) as handle:
            yield handle
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def _uploaded(path: Location) -> Iterator[BinaryIO]:
    with tempfile.NamedTemporaryFile(prefix=".innen-upload.", suffix=".part") as spool:
        yield spool  # type: ignore[misc]
        spool.flush()
        path.fs.put_file(spool.name, path.path)


def scratch_folder(near: Location) -> Path:
    """A hidden local folder for the parts of files that will become files in ``near``'s folder.

    On local storage it sits beside ``near`` (same file system, so
    :func:`put_in_place` renames); for an object store it is a local temporary folder.
    """
    if is_local(near):
        near.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=near.parent, prefix=f".{near.name}.", suffix=".part"))
    return Path(tempfile.mkdtemp(prefix=f".{near.name}.", suffix=".part"))


def put_in_place(written: Path, target: Location) -> None:
    """A complete local file (from :func:`scratch_folder`) becomes ``target``, durably, in one step."""
    if not is_local(target):
        target.fs.put_file(str(written), target.path)
        written.unlink()
        return
    with written.open("rb") as handle:
        os.fsync(handle.fileno())
    written.chmod(0o644)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(written, target)


def atomic_write(path: Location, data: bytes, *, durable: bool = True) -> None:
    with atomic_writer(path, durable=durable) as handle:
        handle.write(data)


def make_durable(paths: list[Location], threads: int = 8) -> None:
    """Flush many written files and their folders to disk; the flushes wait on the disk together, not in turn.

    Objects in an object store are durable once their put returned.
    """
    from concurrent.futures import ThreadPoolExecutor

    paths = [path for path in paths if is_local(path)]

    def flush(target: Path) -> None:
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    folders = sorted({path.parent for path in paths})
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(flush, [*paths, *folders]))


@contextmanager
def parse_source(path: Location) -> Iterator[str | BinaryIO]:
    """What a parser reads ``path`` from: its name on local storage (libxml2 then reads the file itself), else a stream."""
    if is_local(path):
        yield str(path)
        return
    with path.open("rb") as stream:
        yield stream


def modified_at(path: Location) -> float | None:
    """When ``path`` was last written (seconds since the epoch), or None when its store does not say.

    Raises :class:`FileNotFoundError` when it is gone. Object stores name the
    time differently (S3 ``LastModified``, the memory store ``created``).
    """
    if is_local(path):
        return os.stat(path, follow_symlinks=False).st_mtime
    info = path.fs.info(path.path)
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
        if isinstance(value, str) and value:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def everything_in(folder: Location) -> Iterator[Location]:
    """Every file and folder below ``folder``, at any depth (locally without following symbolic links)."""
    if not is_local(folder):
        yield from folder.rglob("*")
        return
    for parent, folders, files in os.walk(folder):
        for name in (*folders, *files):
            yield Path(parent, name)


def remove(path: Location) -> None:
    """Remove a file, or a folder with everything in it (a symbolic link itself, not what it points to)."""
    if not is_local(path):
        path.fs.rm(path.path, recursive=True)
    elif path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Location) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksum(path: Location, sha256: str) -> Location:
    """``<file>.sha256`` beside ``path``, in the format ``sha256sum -c`` reads."""
    checksum = path.with_name(path.name + ".sha256")
    atomic_write(checksum, f"{sha256}  {path.name}\n".encode())
    return checksum


def inside(path: Location, folder: Location) -> bool:
    """True when ``path`` is ``folder`` or lies under it, once ``..`` and (locally) symbolic links are resolved.

    >>> inside(Path("/srv/innen/inbox/camt053/a.xml"), Path("/srv/innen/inbox/camt053"))
    True
    >>> inside(Path("/srv/innen/inbox/camt053/../../outbox/b.xml"), Path("/srv/innen/inbox/camt053"))
    False
    """
    if isinstance(path, Path) and isinstance(folder, Path):
        return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(folder)))
    if isinstance(path, Path) != isinstance(folder, Path):
        return False
    here, there = posixpath.normpath(str(path)), posixpath.normpath(str(folder))
    return here == there or here.startswith(there.rstrip("/") + "/")


def waiting_files(source: Location, suffixes: tuple[str, ...]) -> list[Location]:
    """``source`` itself when it is a file, else its files with one of ``suffixes``; hidden (partial) files skipped."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        return []
    return sorted(
        path for path in source.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in suffixes
    )


def replace(path: Location, target: Location) -> None:
    """``path`` becomes ``target``: one rename on local storage; on an object store, a complete put, then the delete.

    Between two local file systems (an inbox or a staging folder mounted apart), where a rename cannot go, the
    copy is made the way a write is: under a hidden name, renamed into place once whole, then the delete.
    """
    if is_local(path) and is_local(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
            return
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    with path.open("rb") as source, atomic_writer(target) as out:
        shutil.copyfileobj(source, out, 1 << 20)
    path.unlink()


def move_into(path: Location, folder: Location) -> Location:
    """Move ``path`` into ``folder``; a name already taken gets the file's checksum added.

    The very same file (same name and checksum) there already: ``path`` is dropped.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        target = folder / f"{path.stem}.{sha256_of(path)[:12]}{path.suffix}"
    if target.exists():
        path.unlink()
        return target
    replace(path, target)  # not shutil.move: between file systems, it copies straight to the final name
    return target
