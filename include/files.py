"""Writing files so that a reader never sees half of one.

Every file goes to a hidden temporary name in its final folder, is flushed to
disk, and only then renamed into place (``os.replace`` is atomic on POSIX).
If the writer raises, the temporary file is removed and nothing appears.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_writer(path: Path, *, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file object that becomes ``path`` when the block ends without error.

    ``durable=False`` leaves the flush to disk to the caller, who writes many
    files and makes them durable together with :func:`make_durable` before
    recording them anywhere.
    """
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


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_writer(path, durable=durable) as handle:
        handle.write(data)


def make_durable(paths: list[Path], threads: int = 8) -> None:
    """Flush many written files and their folders to disk; the flushes wait on the disk together, not in turn."""
    from concurrent.futures import ThreadPoolExecutor

    def flush(target: Path) -> None:
        fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    folders = sorted({path.parent for path in paths})
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(flush, [*paths, *folders]))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksum(path: Path, sha256: str) -> Path:
    """``<file>.sha256`` beside ``path``, in the format ``sha256sum -c`` reads."""
    checksum = path.with_name(path.name + ".sha256")
    atomic_write(checksum, f"{sha256}  {path.name}\n".encode())
    return checksum


def waiting_files(source: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """``source`` itself when it is a file, else its files with one of ``suffixes``; hidden (partial) files skipped."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        return []
    return sorted(
        path for path in source.iterdir()
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in suffixes
    )


def move_into(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder``; a name already taken gets the file's checksum added.

    The very same file (same name and checksum) there already: ``path`` is dropped.
    """
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        target = folder / f"{path.stem}.{sha256_of(path)[:12]}{path.suffix}"
    if target.exists():
        path.unlink()
        return target
    shutil.move(str(path), target)
    return target
