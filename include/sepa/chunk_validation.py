"""XSD validation of a bank file too large to hold, chunk by chunk, on threads beside its writing.

Why: a collection run's pain.008 file may hold a million transactions (about
530 MB). Validating it whole would mean parsing it back into a tree after
writing it: gigabytes of memory and a second pass. The writer instead cuts
the file into chunks of a few hundred transactions and shows each chunk to
the validator as a small document of its own (the file's opening, the
chunk's records, the closing). When the schema has no identity constraints
and the records are plain repeated particles, a file is valid exactly when
every chunk document is (pain008.py says why that holds for pain.008).

How: lxml releases the GIL while it parses and validates, so
:class:`ChunkValidator` checks chunks on a worker thread while the writer's
thread formats the next ones. When the worker falls :data:`IN_FLIGHT`
chunks behind, the writer's thread takes back the newest chunk the worker
has not started and checks it itself: two threads on two cores, where a
third thread competed with the formatting for them. Memory stays bounded by
the chunks in flight, whatever the file's size. Failures are reported in
file order, whichever thread found them, so the same chunks always give the
same refusal. Disk flushes (``fdatasync``) wait on the device, not the CPU, so
they run on a thread of their own and never hold up a check.

While a validator is open, the interpreter's switch interval is lowered to
:data:`SWITCH_INTERVAL` (0.2 ms; never raised, and restored when the last
open validator closes). With the default 5 ms, the worker, back from a parse
or a check, waits up to 5 ms for the formatting thread to let go of the GIL
every time. Measured with bench/pain008.py (100k transactions, A/B in one
process): the 0.5 ms interval alone took the writer's median from 1.41 s to
1.17 s (8 runs each); 0.2 ms with one worker helped by the writer's thread,
500-transaction chunks and column-wise formatting, from 1.15 s to 0.83 s
(12 runs each). The interval is process-wide: other threads only see more
frequent GIL hand-offs meanwhile, which is harmless.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

from lxml import etree

from include.errors import ExportRejected
from include.sepa.identifiers import mask_ibans_in
from include.xml_safety import safe_parser

IN_FLIGHT = 4  # chunks the worker may fall behind before the writer's thread helps
WORKERS = 1
SWITCH_INTERVAL = 0.0002  # seconds

T = TypeVar("T")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), drawn lazily.

    >>> list(chunks(range(5), 2))
    [[0, 1], [2, 3], [4]]
    """
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _SwitchInterval:
    """The interpreter's switch interval lowered while at least one validator is open, then put back.

    Counted, because the setting is process-wide: two files written at once
    on two threads must not leave it lowered when the first one that lowered
    it is not the last to finish.
    """

    _lock = threading.Lock()
    _open = 0
    _before = 0.0

    @classmethod
    def lower(cls, seconds: float) -> None:
        with cls._lock:
            if cls._open == 0:
                cls._before = sys.getswitchinterval()
            cls._open += 1
            if sys.getswitchinterval() > seconds:
                sys.setswitchinterval(seconds)

    @classmethod
    def restore(cls) -> None:
        with cls._lock:
            cls._open -= 1
            if cls._open == 0 and sys.getswitchinterval() != cls._before:
                # CPython keeps whole microseconds and truncates what it is given: half a microsecond more
                # sets back exactly what was read (0.0001 read back is 9.99…e-05, which would set 99 µs).
                sys.setswitchinterval(cls._before + 0.5e-6)


_NAMESPACE = re.compile(r"\{(?:urn|https?):[^}]*\}")  # "{urn:…}Nm" in libxml2's messages; not an enumeration
_per_thread = threading.local()


def _thread_parser() -> etree.XMLParser:
    """This thread's parser for chunk documents (an lxml parser must not be shared between threads)."""
    parser = getattr(_per_thread, "parser", None)
    if parser is None:
        parser = _per_thread.parser = safe_parser(collect_ids=False)
    return parser


class _Pending:
    """A chunk handed to the worker; the writer's thread may take it back and check it itself."""

    __slots__ = ("future", "document", "first_number", "checked_here")

    def __init__(self, future: Future[str | None], document: bytes, first_number: int) -> None:
        self.future = future
        self.document = document
        self.first_number = first_number
        self.checked_here: Future[str | None] | None = None

    def done(self) -> bool:
        return self.checked_here is not None or self.future.done()

    def outcome(self) -> str | None:
        """The problem found (None: valid); raises what the check raised."""
        return (self.checked_here or self.future).result()


class ChunkValidator:
    """Validates a file's chunk documents on a worker thread; raises for the first failure in file order.

    ``schema`` gives the calling thread's own compiled schema (a schema
    object keeps the error log of its last validation, so threads must not
    share one; see :func:`include.sepa.xsd.thread_schema`). ``locate`` says
    where an error is, for a person: given the element the error points at
    and the number of the chunk's first record in the file, a text such as
    ``" at PmtInf/PmtTpInf/SeqTp"``. A refusal reads
    ``XSD validation failed: <file_name>: <libxml2's message><where>``,
    namespaces left out and IBANs masked.

    Use it as a context manager: the switch interval is lowered while it is
    open, and on leaving, what is not checked yet is dropped and its threads
    are stopped (before the file is closed: they may flush it).
    """

    def __init__(self, schema: Callable[[], etree.XMLSchema], file_name: str,
                 locate: Callable[[etree._Element, int], str]) -> None:
        self._schema = schema
        self._file_name = file_name
        self._locate = locate
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="chunk-validation")
        self._flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-validation-sync")
        self._pending: deque[_Pending] = deque()

    def _check(self, document: bytes, first_number: int) -> str | None:
        tree = etree.fromstring(document, _thread_parser())
        schema = self._schema()
        if schema.validate(tree):
            return None
        error = schema.error_log[0]
        nodes = tree.xpath(error.path) if error.path else []
        where = self._locate(nodes[0], first_number) if nodes else ""
        message = mask_ibans_in(_NAMESPACE.sub("", error.message))
        return f"{self._file_name}: {message}{where}"

    def sync(self, fd: int) -> None:
        """Start flushing the file's written pages to disk (fdatasync releases the GIL)."""
        self._flusher.submit(os.fdatasync, fd)

    def submit(self, document: bytes, first_number: int) -> None:
        """Check a chunk document whose first record is the file's ``first_number``-th (from 1).

        Raises for an earlier chunk that failed, once every chunk before it passed.
        """
        future = self._pool.submit(self._check, document, first_number)
        self._pending.append(_Pending(future, document, first_number))
        self._settle(IN_FLIGHT)

    def _settle(self, open_allowed: int) -> None:
        """Report finished chunks in file order until at most ``open_allowed`` are open, helping the worker."""
        pending = self._pending
        while pending:
            if pending[0].done():
                problem = pending.popleft().outcome()
                if problem is not None:
                    raise ExportRejected(f"XSD validation failed: {problem}")
            elif sum(not item.done() for item in pending) <= open_allowed:
                return
            elif not self._check_one_here():
                pending[0].future.result()

    def _check_one_here(self) -> bool:
        """Take back the newest chunk the worker has not started and check it on this thread."""
        for item in reversed(self._pending):
            if item.checked_here is None and item.future.cancel():
                item.checked_here = here = Future()
                try:
                    here.set_result(self._check(item.document, item.first_number))
                except Exception as error:  # reported in file order, as the worker's would be
                    here.set_exception(error)
                return True
        return False

    def finish(self) -> None:
        """Wait for every check; raises for the first chunk in file order that failed."""
        self._settle(0)

    def __enter__(self) -> ChunkValidator:
        _SwitchInterval.lower(SWITCH_INTERVAL)
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self.close()
        finally:
            _SwitchInterval.restore()

    def close(self) -> None:
        """Drop what is not checked yet and wait for the threads."""
        for item in self._pending:
            item.future.cancel()
        self._pool.shutdown(wait=True)
        self._flusher.shutdown(wait=True)
