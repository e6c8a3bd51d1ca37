"""Files that arrive to be imported: found in an inbox, taken in one go, then archived or quarantined.

Statements (``inbox/camt053``) and POM's delivery reports (``inbox/pom_reports``)
go the same way: each waiting file is read and booked in one transaction and
its report written (the caller's ``take``); only then is it moved to the
archive. A file the caller refuses goes to the quarantine with
``<name>.reason.txt`` saying why, and the refusal is raised again. A crash
between booking and moving leaves the file in the inbox, where the next run
finds it already taken (same checksum) and only archives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from include.config import archive_dir, inbox_dir, quarantine_dir
from include.errors import InnenError
from include.files import atomic_write, inside, move_into, waiting_files
from include.storage import Location, location

Taken = TypeVar("Taken")


@dataclass(frozen=True)
class Inbox:
    """One kind of incoming file: its inbox folder, the suffixes it takes, and where it is kept afterwards."""

    kind: str  # the inbox folder's name, e.g. "camt053"
    suffixes: tuple[str, ...]
    keep_under: str = ""  # folder under archive/ and quarantine/ ("" keeps the files at their top)

    @property
    def folder(self) -> Location:
        return inbox_dir(self.kind)

    def archive(self) -> Location:
        return archive_dir() / self.keep_under if self.keep_under else archive_dir()

    def quarantine(self) -> Location:
        return quarantine_dir() / self.keep_under if self.keep_under else quarantine_dir()

    def pending(self, source: str | Location | None = None) -> list[Location]:
        """Files to take: ``source`` (a file or a folder inside the inbox; relative: to the inbox), or the
        inbox; hidden and partial files skipped. A ``source`` that does not exist, or holds nothing to take, is
        refused.

        Whatever is taken is moved away afterwards (archive or quarantine), so a ``source`` outside the inbox is
        refused: a run's parameter must not be able to move a bank file from the outbox, or the database.
        """
        folder = self.folder
        if isinstance(source, str):
            source = source.strip()  # typed in a form: spaces around are no part of a name
        if not source:
            return waiting_files(folder, self.suffixes)
        chosen = location(source)
        if isinstance(chosen, Path) and not chosen.is_absolute():
            chosen = folder / chosen
        if not inside(chosen, folder):
            raise InnenError(f"{source}: not inside the inbox {folder}; only a file or folder there is taken")
        if not chosen.exists():  # a typo, or a file taken already: a run that takes nothing would look done
            raise InnenError(f"{source}: no such file or folder in the inbox {folder} (taken already? see the "
                             "archive and the quarantine)")
        files = waiting_files(chosen, self.suffixes)
        if not files:  # a person named it to have something taken: a run that takes nothing would look done
            raise InnenError(f"{source}: no file to take in it (only {', '.join(self.suffixes)} files are taken; "
                             "hidden files are still being written)")
        return files

    def take(self, path: str | Location, take: Callable[[Location], Taken],
             refused: type[Exception]) -> tuple[Taken, Location]:
        """``take(path)``, then the file archived; ``refused`` raised by it: quarantined with its reason, raised."""
        path = location(path)
        try:
            taken = take(path)
        except refused as refusal:
            self.refuse(path, str(refusal))
            raise
        return taken, move_into(path, self.archive())

    def refuse(self, path: Location, reason: str) -> Location:
        """Move ``path`` to the quarantine with ``<name>.reason.txt`` beside it."""
        target = move_into(path, self.quarantine())
        write_reason(target, reason)
        return target

    def keep(self, name: str, data: bytes, reason: str | None = None) -> Location:
        """Bytes fetched rather than found (a report POM sent): kept in the archive, or with ``reason`` in the quarantine."""
        target = (self.quarantine() if reason is not None else self.archive()) / name
        atomic_write(target, data)
        if reason is not None:
            write_reason(target, reason)
        return target


def write_reason(target: Location, reason: str) -> None:
    atomic_write(target.with_name(target.name + ".reason.txt"), (reason + "\n").encode("utf-8"))
