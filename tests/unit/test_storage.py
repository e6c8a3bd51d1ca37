"""The storage root and the file helpers, on a local folder and on an object store (fsspec's memory store).

An object store has no rename: a file must appear whole (one put) or not at
all, and moving is a copy then a delete. The memory store stands in for S3
here: it is attached to Airflow's ObjectStoragePath the way a provider
attaches ``s3``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from airflow.sdk.io import attach
from fsspec.implementations.memory import MemoryFileSystem

from include.config import archive_dir, inbox_dir, outbox_dir, reports_dir, storage_root
from include.files import (
    atomic_write,
    atomic_writer,
    make_durable,
    move_into,
    put_in_place,
    replace,
    scratch_folder,
    sha256_of,
    waiting_files,
    write_checksum,
)
from include.storage import is_local, location, name_of

attach("memory", fs=MemoryFileSystem())


@pytest.mark.parametrize(("url", "local", "text"), [
    ("/srv/innen", True, "/srv/innen"),
    ("file:///srv/innen", True, "/srv/innen"),
    ("file:///srv/with%20space", True, "/srv/with space"),
    ("relative/var", True, "relative/var"),
    ("memory://innen/prefix", False, "memory://innen/prefix"),
])
def test_a_url_names_a_local_folder_or_an_object_store(url: str, local: bool, text: str) -> None:
    where = location(url)
    assert is_local(where) is local
    assert str(where) == text


def test_every_shared_folder_is_under_the_storage_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INNEN_VAR_DIR", str(tmp_path / "own"))
    monkeypatch.delenv("INNEN_STORAGE_URL", raising=False)
    assert storage_root() == tmp_path / "own"  # default: this machine's var/
    monkeypatch.setenv("INNEN_STORAGE_URL", f"file://{tmp_path}/shared")
    assert [str(f()) for f in (outbox_dir, reports_dir, archive_dir)] == [
        f"{tmp_path}/shared/outbox", f"{tmp_path}/shared/reports", f"{tmp_path}/shared/archive"]
    assert inbox_dir("camt053") == tmp_path / "shared" / "inbox" / "camt053"
    monkeypatch.setenv("INNEN_STORAGE_URL", "memory://bucket/innen")
    assert str(inbox_dir("camt053")) == "memory://bucket/innen/inbox/camt053"


def test_names_of_stored_locations() -> None:
    assert name_of("memory://bucket/innen/outbox/HUB-1.xml") == "HUB-1.xml"
    assert name_of("/srv/innen/outbox/HUB-1.xml") == "HUB-1.xml"
    assert name_of(location("memory://bucket/a/b.csv")) == "b.csv"


@pytest.fixture(params=["local", "object store"])
def root(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "local":
        return tmp_path / "storage"
    return location(f"memory://test-{uuid.uuid4().hex}/innen")


def _names(folder) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_failed_write_leaves_nothing_and_a_finished_one_the_whole_file(root) -> None:  # type: ignore[no-untyped-def]
    target = root / "outbox" / "run.xml"
    with pytest.raises(RuntimeError):
        with atomic_writer(target) as out:
            out.write(b"<Document>half")
            raise RuntimeError("the writer failed")
    assert not target.exists()
    assert [n for n in _names(root / "outbox") if not n.startswith(".")] == []
    atomic_write(target, b"<Document/>")
    assert target.read_bytes() == b"<Document/>"
    make_durable([target])  # a no-op on an object store, fsync locally: must not fail either way


def test_the_checksum_file_is_what_sha256sum_checks(root) -> None:  # type: ignore[no-untyped-def]
    target = root / "outbox" / "run.xml"
    atomic_write(target, b"abc")
    write_checksum(target, sha256_of(target))
    # sha256("abc"), the FIPS 180-2 test vector
    assert (root / "outbox" / "run.xml.sha256").read_text() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  run.xml\n")


def test_waiting_files_skip_hidden_parts_and_other_suffixes(root) -> None:  # type: ignore[no-untyped-def]
    inbox = root / "inbox" / "camt053"
    for name in ("b.xml", "a.XML", ".a.xml.123.part", "notes.txt"):
        atomic_write(inbox / name, b"<x/>")
    assert [p.name for p in waiting_files(inbox, (".xml",))] == ["a.XML", "b.xml"]
    assert [p.name for p in waiting_files(inbox / "b.xml", (".xml",))] == ["b.xml"]
    assert waiting_files(root / "inbox" / "none", (".xml",)) == []


def test_moving_into_a_folder_keeps_both_files_of_one_name_and_drops_an_identical_one(root) -> None:  # type: ignore[no-untyped-def]
    inbox, archive = root / "inbox", root / "archive"
    atomic_write(inbox / "s.xml", b"first")
    first = move_into(inbox / "s.xml", archive)
    atomic_write(inbox / "s.xml", b"second")
    second = move_into(inbox / "s.xml", archive)
    atomic_write(inbox / "s.xml", b"second")
    again = move_into(inbox / "s.xml", archive)
    assert first.name == "s.xml" and second.name == "s.16367aacb67a.xml" and again == second
    assert (first.read_bytes(), second.read_bytes()) == (b"first", b"second")
    assert _names(inbox) == []


def test_replace_and_put_in_place(root) -> None:  # type: ignore[no-untyped-def]
    atomic_write(root / "staging" / "f.xml", b"approved")
    replace(root / "staging" / "f.xml", root / "outbox" / "f.xml")
    assert (root / "outbox" / "f.xml").read_bytes() == b"approved" and not (root / "staging" / "f.xml").exists()
    target = root / "reports" / "list" / "delivered.csv"
    scratch = scratch_folder(target.parent)
    assert is_local(scratch) and scratch.name.startswith(".")
    (scratch / "part.csv").write_bytes(b"a;b\r\n")
    put_in_place(scratch / "part.csv", target)
    assert target.read_bytes() == b"a;b\r\n" and not (scratch / "part.csv").exists()


def test_a_move_between_two_local_file_systems_never_shows_part_of_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An inbox mounted apart from the archive: no rename across; the copy must still appear whole or not at all."""
    import errno
    import os
    import shutil

    def across_devices(real):  # type: ignore[no-untyped-def]
        def rename(src, dst):  # type: ignore[no-untyped-def]
            if os.path.dirname(os.fspath(src)) != os.path.dirname(os.fspath(dst)):
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            return real(src, dst)
        return rename

    monkeypatch.setattr(os, "replace", across_devices(os.replace))
    monkeypatch.setattr(os, "rename", across_devices(os.rename))
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    atomic_write(inbox / "s.xml", b"statement")
    assert move_into(inbox / "s.xml", archive).read_bytes() == b"statement" and _names(inbox) == []

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.EIO, "read error half-way")

    monkeypatch.setattr(os, "sendfile", broken)
    monkeypatch.setattr(shutil, "copyfileobj", broken)
    atomic_write(inbox / "t.xml", b"statement")
    with pytest.raises(OSError, match="half-way"):
        move_into(inbox / "t.xml", archive)
    assert _names(archive) == ["s.xml"] and _names(inbox) == ["t.xml"]
