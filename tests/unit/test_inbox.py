"""What a run's ``path`` parameter may name: only files inside the inbox, since whatever is taken is moved away."""

from __future__ import annotations

from pathlib import Path

import pytest

from include.errors import InnenError
from include.pom.delivery_files import REPORTS
from include.sepa.statement_files import STATEMENTS


def _file(path: Path, data: bytes = b"<Document/>") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def folders(var_dir: Path) -> dict[str, Path]:
    return {
        "inbox": _file(var_dir / "inbox" / "camt053" / "day.xml").parent,
        "sub": _file(var_dir / "inbox" / "camt053" / "by-hand" / "late.xml").parent,
        "bank_file": _file(var_dir / "outbox" / "fj-BIB-1.xml"),
        "database": _file(var_dir / "innen.sqlite", b"SQLite format 3\x00"),
    }


def test_the_inbox_a_subfolder_or_a_file_in_them_is_taken(folders: dict[str, Path]) -> None:
    inbox = folders["inbox"]
    assert STATEMENTS.pending() == [inbox / "day.xml"]
    assert STATEMENTS.pending(str(inbox)) == [inbox / "day.xml"]  # a subfolder's files wait for a run naming it
    assert STATEMENTS.pending(str(folders["sub"])) == [folders["sub"] / "late.xml"]
    assert STATEMENTS.pending("by-hand/late.xml") == [folders["sub"] / "late.xml"]  # relative: to the inbox


@pytest.mark.parametrize("named", ["bank_file", "database", "outside_by_dots", "link_out"])
def test_a_path_outside_the_inbox_is_refused_and_left_where_it_is(folders: dict[str, Path], named: str) -> None:
    target = folders["bank_file"] if named in ("outside_by_dots", "link_out") else folders[named]
    source = {
        "outside_by_dots": str(folders["inbox"] / ".." / ".." / "outbox" / target.name),
        "link_out": str(folders["inbox"] / "link.xml"),
    }.get(named, str(target))
    if named == "link_out":
        (folders["inbox"] / "link.xml").symlink_to(target)
    before = target.read_bytes()
    with pytest.raises(InnenError, match="not inside the inbox"):
        STATEMENTS.pending(source)
    assert target.read_bytes() == before


def test_the_delivery_reports_keep_to_their_own_inbox(var_dir: Path, folders: dict[str, Path]) -> None:
    report = _file(var_dir / "inbox" / "pom_reports" / "batch.csv", b"a,b\n")
    assert REPORTS.pending(str(report)) == [report]
    with pytest.raises(InnenError, match="not inside the inbox"):
        REPORTS.pending(str(folders["inbox"] / "day.xml"))  # the statements' inbox is not the reports'


def test_a_path_is_read_as_typed_and_one_that_does_not_exist_is_refused(folders: dict[str, Path]) -> None:
    """It was an empty list: the run 'imported' nothing and looked done."""
    assert STATEMENTS.pending(" by-hand/late.xml ") == [folders["sub"] / "late.xml"]
    assert STATEMENTS.pending("  ") == [folders["inbox"] / "day.xml"]  # spaces only: the inbox
    for missing in ("by-hand/lost.xml", "elsewhere"):
        with pytest.raises(InnenError, match=f"^{missing}: no such file or folder in the inbox"):
            STATEMENTS.pending(missing)


def test_a_folder_named_with_nothing_in_it_to_take_is_refused(var_dir: Path, folders: dict[str, Path]) -> None:
    """It was an empty list: a run asked to take a folder took nothing and succeeded as if it had."""
    empty = folders["inbox"] / "empty"
    empty.mkdir()
    _file(folders["inbox"] / "wrong-kind" / "statement.pdf")
    _file(folders["inbox"] / "wrong-kind" / ".half.xml")  # a file still being written
    for named in ("empty", "wrong-kind"):
        with pytest.raises(InnenError, match=f"^{named}: no file to take in it .*only .xml, .camt, .053, .054"):
            STATEMENTS.pending(named)
    (var_dir / "inbox" / "pom_reports").mkdir(parents=True)
    with pytest.raises(InnenError, match=r"no file to take in it .*only .csv, .txt"):
        REPORTS.pending(str(var_dir / "inbox" / "pom_reports"))
    assert REPORTS.pending() == []  # no path: an empty inbox is the usual quiet run
