"""What every benchmark needs to measure one side alone: a forked child, its result and its peak memory.

Each side runs in a child of its own, so neither side's memory counts
against the other's; the child measures its own wall time and sends its
result back through a pipe, the parent reads the child's peak RSS from
``os.wait4``.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
from collections.abc import Callable
from typing import Any

MB = 1024 * 1024


def in_child(function: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``function(*args)`` in a forked child: its result and the child's peak RSS in MB."""
    sys.stdout.flush()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            payload, status = ("ok", function(*args)), 0
        except BaseException:
            payload, status = ("error", traceback.format_exc()), 1
        with os.fdopen(write, "wb") as pipe:
            pickle.dump(payload, pipe)
        sys.stdout.flush()
        os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    name = getattr(function, "__name__", "child")
    if not answer:
        raise SystemExit(f"{name} died without an answer (wait status {status}; killed for memory?)")
    kind, value = pickle.loads(answer)
    if kind != "ok":
        raise SystemExit(f"{name} failed in its child:\n{value}")
    return value, usage.ru_maxrss * 1024 / MB  # Linux reports ru_maxrss in KiB


def idle() -> None:
    """Nothing: its peak is what every child starts with."""


def print_profile(profiler: Any, what: str) -> None:
    """The top 25 functions by own time, then by cumulative time."""
    import pstats

    for order, label in (("tottime", "own time"), ("cumulative", "cumulative time")):
        print(f"\n--- cProfile of {what} (top 25 by {label}) ---")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(order).print_stats(int(os.environ.get("BENCH_PROFILE_LINES", "25")))
    sys.stdout.flush()
