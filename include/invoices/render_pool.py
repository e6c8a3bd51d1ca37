"""Rendering many invoices on every core (speed machinery of :mod:`include.invoices.making`).

Typst compiles while holding Python's GIL, and the EPC code is Python too,
so threads would take turns: a run of many invoices is rendered by worker
processes instead, one per core, each with its own Typst compiler (fonts
loaded once per worker). Workers get the facts of a few invoices at a time,
write each PDF (atomically, not yet flushed to disk) and send back what the
run records: file, SHA-256, pages. The main process meanwhile reads the next
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
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from include.invoices.render import Renderer

if TYPE_CHECKING:
    from include.invoices.facts import InvoiceFacts
    from include.invoices.making import MadeInvoice

# Below this many invoices a run renders in its own process: starting workers costs about a second.
PARALLEL_FROM = 100
BATCH = 25

Job = tuple["InvoiceFacts", int, date]  # facts, version, print day

_renderer: Renderer | None = None


def _start_worker(template_folder: str, var_dir: str | None) -> None:
    global _renderer
    if var_dir is not None:
        os.environ["INNEN_VAR_DIR"] = var_dir
    _renderer = Renderer(Path(template_folder))


def _render_batch(jobs: list[Job]) -> list[MadeInvoice]:
    from include.invoices.making import render_to_file

    assert _renderer is not None
    return [render_to_file(_renderer, facts, version, day) for facts, version, day in jobs]


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
                initargs=(str(template_folder), os.environ.get("INNEN_VAR_DIR")))
        else:
            self._local = Renderer(template_folder)

    def submit(self, jobs: list[Job]) -> Callable[[], list[MadeInvoice]]:
        """Start rendering ``jobs``; the returned function waits for them and gives the results in order."""
        if self._pool is None:
            from include.invoices.making import render_to_file

            assert self._local is not None
            made = [render_to_file(self._local, facts, version, day) for facts, version, day in jobs]
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


def pipelined(chunks: Iterator[list[Job]], pool: RenderPool) -> Iterator[tuple[list[Job], list[MadeInvoice]]]:
    """Each chunk with its results, the next chunk read and submitted before waiting for the current one."""
    pending: tuple[list[Job], Callable[[], list[MadeInvoice]]] | None = None
    for jobs in chunks:
        started = (jobs, pool.submit(jobs))
        if pending is not None:
            yield pending[0], pending[1]()
        pending = started
    if pending is not None:
        yield pending[0], pending[1]()
