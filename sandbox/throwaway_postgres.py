"""A throwaway PostgreSQL server for the tests and the benchmarks: Debian's binaries, a temporary directory.

Started as the ``postgres`` user when run as root (PostgreSQL refuses to run
as root), on a free loopback port, without fsync; :meth:`PostgresCluster.stop`
removes everything it made.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """A PostgreSQL server in a temporary directory, on a free loopback port."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
        if not found:
            raise RuntimeError(
                "Debian's PostgreSQL binaries are missing: run `make postgres` (apt-get install postgresql)")
        self.bin = Path(found[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="innen-pg-"))
        self.dir.chmod(0o755)
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, cwd=self.dir, text=True)
        if done.returncode:
            raise RuntimeError(
                f"{args[0]} failed ({done.returncode}): {done.stdout.strip()} {done.stderr.strip()}"
                f"\n--- server.log ---\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\n".join((self.dir / "server.log").read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return "(no log)"

    def start(self) -> None:
        data = self.dir / "data"
        self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        self._serve()

    def _serve(self, attempts: int = 5) -> None:
        # A free port can be taken by another process between our probe and the
        # server's bind (two test workers start their servers at the same moment),
        # and a busy machine can take longer than pg_ctl's default minute: a new
        # port and a longer wait, a few times, before giving up with the log.
        for attempt in range(1, attempts + 1):
            options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
            try:
                self._run("pg_ctl", "-D", str(self.dir / "data"), "-o", options, "-l", str(self.dir / "server.log"),
                          "-w", "-t", "180", "start")
                return
            except RuntimeError:
                if attempt == attempts:
                    raise
                subprocess.run(
                    (["runuser", "-u", "postgres", "--"] if self._as_postgres else [])
                    + [str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop"],
                    capture_output=True, cwd=self.dir)
                self.port = _free_port()

    def restart(self) -> None:
        """Stop the server as a crash would (``immediate``: open transactions are lost) and start it again."""
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        self._serve()  # with its log file: a server started without one would hold our output pipe open

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"
