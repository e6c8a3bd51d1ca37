"""The chunked validation engine on its own, over a small schema of records: refusals in file order, threads, interval.

The pain.008 writer's own tests (tests/integration/test_pain008_writer.py) check it through real bank files.
"""

from __future__ import annotations

import sys
import threading

import pytest
from lxml import etree

from include.errors import ExportRejected
from include.sepa import chunk_validation
from include.sepa.chunk_validation import ChunkValidator, chunks

NS = "urn:example:records"
SCHEMA = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{NS}" xmlns="{NS}"
    elementFormDefault="qualified">
  <xs:element name="File"><xs:complexType><xs:sequence>
    <xs:element name="Header" type="xs:string"/>
    <xs:element name="Record" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:sequence>
      <xs:element name="Id" type="xs:string"/>
      <xs:element name="Account"><xs:simpleType><xs:restriction base="xs:string">
        <xs:pattern value="A[0-9]+"/></xs:restriction></xs:simpleType></xs:element>
      <xs:element name="Amount" type="xs:decimal"/>
    </xs:sequence></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>"""

_per_thread = threading.local()


def _schema() -> etree.XMLSchema:
    """This thread's own compiled schema, as the engine needs."""
    if not hasattr(_per_thread, "schema"):
        _per_thread.schema = etree.XMLSchema(etree.fromstring(SCHEMA.encode()))
    return _per_thread.schema


def _locate(node: etree._Element, first_number: int) -> str:
    """The element, and for a record its id and number in the file (what pain008._location does for pain.008)."""
    record = next((e for e in (node, *node.iterancestors()) if etree.QName(e).localname == "Record"), None)
    if record is None:
        return f" at {etree.QName(node).localname}"
    number = first_number + sum(1 for _ in record.itersiblings(f"{{{NS}}}Record", preceding=True))
    return f" at Record/{etree.QName(node).localname} (record {record.findtext(f'{{{NS}}}Id')}, number {number})"


def _document(numbers: list[int], bad: dict[int, tuple[str, str]] | None = None) -> bytes:
    """A chunk document: the file's header, then records ``numbers``; ``bad`` puts a wrong value in a field."""
    bad = bad or {}
    rows = []
    for n in numbers:
        fields = {"Account": f"A{n}", "Amount": f"{n}.50"}
        if n in bad:
            fields[bad[n][0]] = bad[n][1]
        rows.append(f"<Record><Id>r{n}</Id><Account>{fields['Account']}</Account><Amount>{fields['Amount']}</Amount></Record>")
    return f'<File xmlns="{NS}"><Header>h</Header>{"".join(rows)}</File>'.encode()


def _validate(documents: list[tuple[bytes, int]], name: str = "records.xml") -> None:
    with ChunkValidator(_schema, name, _locate) as validator:
        for document, first in documents:
            validator.submit(document, first)
        validator.finish()


def _file(size: int, chunk: int, bad: dict[int, tuple[str, str]] | None = None) -> list[tuple[bytes, int]]:
    return [(_document(part, bad), part[0]) for part in chunks(range(1, size + 1), chunk)]


def _engine_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("chunk-validation")]


def test_chunks_are_drawn_lazily_and_the_last_is_shorter() -> None:
    drawn = []

    def items():  # type: ignore[no-untyped-def]
        for n in range(7):
            drawn.append(n)
            yield n

    parts = chunks(items(), 3)
    assert next(parts) == [0, 1, 2] and drawn == [0, 1, 2]
    assert list(parts) == [[3, 4, 5], [6]]
    assert list(chunks([], 3)) == []


@pytest.mark.parametrize("in_flight", [0, 1, 100])
def test_a_valid_file_passes_and_its_threads_are_stopped(monkeypatch, in_flight) -> None:
    monkeypatch.setattr(chunk_validation, "IN_FLIGHT", in_flight)
    _validate(_file(200, 7))
    assert _engine_threads() == []


def test_a_schema_error_names_the_file_the_element_and_the_record(monkeypatch) -> None:
    with pytest.raises(ExportRejected) as refused:
        _validate(_file(30, 4, bad={10: ("Amount", "ten")}))
    assert str(refused.value) == (
        "XSD validation failed: records.xml: Element 'Amount': 'ten' is not a valid value of the atomic type "
        "'xs:decimal'. at Record/Amount (record r10, number 10)"
    )
    assert NS not in str(refused.value)  # libxml2's {namespace} is left out


def test_an_iban_in_a_refusal_is_masked() -> None:
    with pytest.raises(ExportRejected) as refused:
        _validate(_file(3, 2, bad={3: ("Account", "BE68539007547034")}))
    message = str(refused.value)
    assert "BE68539007547034" not in message and "BE68 **** **** 7034" in message
    assert message.endswith(" at Record/Account (record r3, number 3)")


@pytest.mark.parametrize(("workers", "in_flight"), [(1, 0), (1, 1), (1, 100), (2, 0), (2, 100)])
def test_the_first_failure_in_file_order_is_reported_whichever_thread_found_it(monkeypatch, workers, in_flight) -> None:
    # in_flight 0: the writer's thread takes back nearly every chunk; 100: the worker gets them all and the writer's
    # thread helps only at the end, newest first, so later bad chunks are often checked before the earliest one.
    monkeypatch.setattr(chunk_validation, "WORKERS", workers)
    monkeypatch.setattr(chunk_validation, "IN_FLIGHT", in_flight)
    bad = {8: ("Amount", "x")} | {n: ("Account", "B1") for n in (16, 26, 29)}
    with pytest.raises(ExportRejected, match=r"\(record r8, number 8\)$"):
        _validate(_file(30, 3, bad))
    assert _engine_threads() == []


def test_a_check_that_raises_is_reported_in_file_order_too(monkeypatch) -> None:
    monkeypatch.setattr(chunk_validation, "IN_FLIGHT", 100)
    documents = _file(9, 3)
    documents[1] = (b"<File><not closed", 4)
    documents[2] = (_document([7, 8, 9], {7: ("Amount", "x")}), 7)  # a later refusal does not win
    with pytest.raises(etree.XMLSyntaxError):
        _validate(documents)


def test_when_the_writer_raises_unchecked_chunks_are_dropped_and_the_threads_stop(monkeypatch) -> None:
    monkeypatch.setattr(chunk_validation, "IN_FLIGHT", 100)
    main = threading.current_thread()
    started, release = threading.Event(), threading.Event()
    checked: list[str] = []

    def slow_schema() -> etree.XMLSchema:
        checked.append(threading.current_thread().name)
        if threading.current_thread() is not main:
            started.set()
            release.wait(10)  # the worker is busy with the first chunk while the writer fails
        return _schema()

    with pytest.raises(RuntimeError, match="the writer failed"):
        with ChunkValidator(slow_schema, "records.xml", _locate) as validator:
            for document, first in _file(40, 4):
                validator.submit(document, first)
            assert started.wait(10)
            threading.Timer(0.2, release.set).start()
            raise RuntimeError("the writer failed")
    assert _engine_threads() == []
    assert len(checked) == 1  # the nine chunks still queued were never checked


def test_the_switch_interval_is_lowered_while_validating_and_restored_afterwards() -> None:
    before = sys.getswitchinterval()
    assert before > chunk_validation.SWITCH_INTERVAL
    with ChunkValidator(_schema, "records.xml", _locate):
        assert sys.getswitchinterval() == pytest.approx(chunk_validation.SWITCH_INTERVAL)
    assert sys.getswitchinterval() == before
    with pytest.raises(ExportRejected):
        with ChunkValidator(_schema, "records.xml", _locate) as validator:
            validator.submit(_document([1], {1: ("Amount", "x")}), 1)
            validator.finish()
    assert sys.getswitchinterval() == before


def test_the_switch_interval_is_never_raised_by_validating() -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.0001)
        lower = sys.getswitchinterval()
        with ChunkValidator(_schema, "records.xml", _locate):
            assert sys.getswitchinterval() == lower
        assert sys.getswitchinterval() == lower
    finally:
        sys.setswitchinterval(before)


def test_two_files_validated_at_once_leave_the_switch_interval_as_it_was() -> None:
    # The first to open is the first to close: the interval stays lowered for the second, and comes back after it.
    before = sys.getswitchinterval()
    first = ChunkValidator(_schema, "a.xml", _locate).__enter__()
    second = ChunkValidator(_schema, "b.xml", _locate).__enter__()
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(chunk_validation.SWITCH_INTERVAL)
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before
