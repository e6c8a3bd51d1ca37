"""Rendering many invoices on every core (speed machinery of :mod:`include.invoices.making`).

Typst compiles while holding Python's GIL, and the EPC code is Python too,
so threads would take turns: a run of many invoices is rendered by worker
processes instead, one per core, each with its own Typst compiler (fonts
loaded once per worker). Workers get a few :class:`RenderJob` at a time —
plain values: the placeholders' text and the EPC payload, checked already —
draw the EPC code, write each PDF (atomically, not yet flushed to disk) and
send back what the run records: file, SHA-256, pages. They import segno,
Typst and this module, nothing of the database. The main process meanwhile reads the next
chunk's facts from the database; before a chunk is recorded its files are
made durable together (:func:`include.files.make_durable`).

Workers are started with ``spawn``, not forked: a task process may hold
threads (a pool of the database driver, a test's servers), and a fork made
while one of them holds a lock leaves the worker waiting for ever. A spawned
worker imports the program's main module (guarded, as Airflow's, pytest's
and the demo's are) and the rendering modules once, a second or two, which
is why small runs render in their own process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from include.files import atomic_write, sha256_bytes
from include.invoices.qr_codes import make_qr, qr_svg
from include.invoices.render import Renderer, page_count
from include.storage import Location, is_local

# Below this many invoices a run renders in its own process: starting workers costs a second or two.
PARALLEL_FROM = 100
BATCH = 25
# A worker is replaced after this many batches (2 000 invoices): its memory then never creeps past ~80 MB.
BATCHES_PER_WORKER = 80


@dataclass(frozen=True)
class RenderJob:
    """One invoice to render, as plain values: a worker needs no database and none of the models."""

    reference_id: int
    version: int
    document_id: str
    template: Path
    target: Location
    data: dict[str, Any]  # the placeholders' values (include.invoices.facts.invoice_data), without the EPC image
    epc_payload: bytes | None  # the EPC code's checked payload, drawn by the worker
    print_day: date


@dataclass(frozen=True)
class MadeInvoice:
    """A rendered, written invoice: what a worker sends back."""

    reference_id: int
    version: int
    document_id: str
    template: str
    path: Location
    sha256: str
    pages: int
    print_day: date
    pdf: bytes | None = None  # for an object store: the bytes, put there by the main process (see render_job)


def render_job(renderer: Renderer, job: RenderJob) -> MadeInvoice:
    """Draw the EPC code, render, and write the file (atomically; made durable by the caller, with its chunk)."""
    data = job.data
    if job.epc_payload is not None:
        data = data | {"epc_svg": qr_svg(make_qr(job.epc_payload, error="m")).decode("ascii")}
    pdf = renderer.render(job.template, data)
    # A worker process has no Airflow connection to reach an object store with: the main process puts those.
    local = is_local(job.target)
    if local:
        atomic_write(job.target, pdf, durable=False)
    return MadeInvoice(job.reference_id, job.version, job.document_id, job.template.name, job.target,
                       sha256_bytes(pdf), page_count(pdf), job.print_day, None if local else pdf)


_renderer: Renderer | None = None


def _start_worker(template_folder: str) -> None:
    global _renderer
    _renderer = Renderer(Path(template_folder))


def _render_batch(jobs: list[RenderJob]) -> list[MadeInvoice]:
    assert _renderer is not None
    return [render_job(_renderer, job) for job in jobs]


class RenderPool:
    """Renders jobs in order on ``workers`` processes (or in this process when there are few)."""

    def __init__(self, template_folder: Path, jobs_expected: int, workers: int | None = None) -> None:
        """``workers``: that many processes (1: none); default one per core once there are enough jobs."""
        self.folder = template_folder
        count = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._local: Renderer | None = None
        if count > 1 and (workers is not None or jobs_expected >= PARALLEL_FROM):
            self._pool = ProcessPoolExecutor(
                max_workers=count, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                initargs=(str(template_folder),), max_tasks_per_child=BATCHES_PER_WORKER)
        else:
            self._local = Renderer(template_folder)

    def submit(self, jobs: list[RenderJob]) -> Callable[[], list[MadeInvoice]]:
        """Start rendering ``jobs``; the returned function waits for them and gives the results in order."""
        if self._pool is None:
            assert self._local is not None
            made = [render_job(self._local, job) for job in jobs]
            return lambda: made
        futures: list[Future[list[MadeInvoice]]] = [
            self._pool.submit(_render_batch, jobs[start : start + BATCH]) for start in range(0, len(jobs), BATCH)]
        return lambda: [made for future in futures for made in future.result()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def pipelined(chunks: Iterator[list[RenderJob]], pool: RenderPool,
              ahead: int = 3) -> Iterator[tuple[list[RenderJob], list[MadeInvoice]]]:
    """Each chunk with its results, in order, with up to ``ahead`` chunks read and submitted before waiting for
    the oldest: the workers always have work queued while the main process records and reads."""
    pending: deque[tuple[list[RenderJob], Callable[[], list[MadeInvoice]]]] = deque()
    for jobs in chunks:
        pending.append((jobs, pool.submit(jobs)))
        if len(pending) >= ahead:
            jobs_done, wait = pending.popleft()
            yield jobs_done, wait()
    while pending:
        jobs_done, wait = pending.popleft()
        yield jobs_done, wait()
