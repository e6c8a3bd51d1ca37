"""A real Airflow on this machine: api-server, scheduler and dag-processor as processes, and a REST client.

Used by the demo (a bank file left waiting for approval, another approved through the API) and by the tests
that need Airflow's own REST API, roles and human-in-the-loop answers. Each start gets its own
``AIRFLOW_HOME`` (metadata database, logs) and port; the FAB auth manager with Innen's roles and one demo user
per role (:mod:`sandbox.airflow_users`). :meth:`AirflowServices.stop` stops exactly the processes it started.

    services = AirflowServices.prepare(home, env={"INNEN_DB_URL": url, "INNEN_VAR_DIR": var})
    with services.running():
        finance = services.client("finance")
        run_id = services.trigger(finance, "pain_export")
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
FAB = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def airflow_env(home: Path, port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every component gets: Innen's (as ``bin/innen-env.sh``) plus this instance's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    secret_file = home / "jwt_secret"
    if not secret_file.exists():
        home.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_hex(32))
        secret_file.chmod(0o600)
    base = f"http://127.0.0.1:{port}"
    env.update({
        "INNEN_ROOT": str(ROOT),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__AUTH_MANAGER": FAB,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
        # The scheduler's task-log server: a port of its own, so two instances (tests on both cores) can run at once.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        # A short-lived test or demo: parse the DAG files once, look for work often.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3600",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
    })
    env.update(extra or {})
    return env


@dataclass
class AirflowServices:
    home: Path
    port: int
    env: dict[str, str]
    passwords: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # name → (airflow arguments, working directory, extra environment); a name not here runs `airflow <name>`
    component_specs: dict[str, tuple[list[str], Path, dict[str, str]]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def prepare(cls, home: Path, *, port: int | None = None, env: Mapping[str, str] | None = None) -> AirflowServices:
        """Migrate the metadata database of ``home`` and create Innen's roles and demo users (idempotent)."""
        port = port or free_port()
        full = airflow_env(home, port, env)
        airflow = str(Path(sys.executable).with_name("airflow"))
        log = home / "setup.log"
        with log.open("ab") as out:
            for command in ([airflow, "db", "migrate"], [sys.executable, "-m", "sandbox.airflow_users"]):
                done = subprocess.run(command, env=full, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=300)
                if done.returncode:
                    raise RuntimeError(f"{' '.join(command[-2:])} failed:\n{log.read_text()[-3000:]}")
        passwords = json.loads((home / "innen-demo-users.json").read_text())
        return cls(home, port, full, passwords)

    def start(self, components: tuple[str, ...] = COMPONENTS, timeout: float = 120, *, pause_all: bool = True) -> None:
        """Start ``components``; ``pause_all``: every DAG already known is paused before the scheduler starts,
        so nothing runs but what the caller unpauses (a DAG a test made earlier may be unpaused)."""
        airflow = str(Path(sys.executable).with_name("airflow"))

        def launch(name: str) -> None:
            arguments, cwd, extra = self.component_specs.get(name) or (
                [name] + (["--apps", "all"] if name == "api-server" else []), self.home, {})
            Path(cwd).mkdir(parents=True, exist_ok=True)
            with (self.home / f"{name}.log").open("ab") as out:
                self.processes[name] = subprocess.Popen([airflow, *arguments], env={**self.env, **extra}, cwd=cwd,
                                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        first = [name for name in components if name == "api-server"]
        for name in first:
            launch(name)
        if first:
            self.wait_healthy(timeout)
            if pause_all:
                with self.client("admin") as admin:
                    admin.patch("/api/v2/dags", params={"dag_id_pattern": "%"},
                                json={"is_paused": True}).raise_for_status()
        for name in components:
            if name not in first:
                launch(name)
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{self.log(name)[-3000:]}")
            try:
                if httpx.get(f"{self.base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"api-server not healthy after {timeout} s:\n{self.log('api-server')[-3000:]}")

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # the component and the processes it started
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.processes.clear()

    @contextmanager
    def running(self, components: tuple[str, ...] = COMPONENTS, *, pause_all: bool = True
                ) -> Iterator[AirflowServices]:
        try:
            self.start(components, pause_all=pause_all)
            yield self
        finally:
            self.stop()

    # -- the REST API, as a person would use it ---------------------------------------------------------------

    def token(self, user: str) -> str:
        answer = httpx.post(f"{self.base}/auth/token", json={"username": user, "password": self.passwords[user]},
                            timeout=30)
        answer.raise_for_status()
        return answer.json()["access_token"]

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30, headers={"Authorization": f"Bearer {self.token(user)}"})

    def unpause(self, *dag_ids: str) -> None:
        with self.client("admin") as admin:
            for dag_id in dag_ids:
                self.wait_for_dag(admin, dag_id)
                admin.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def wait_for_dag(self, client: httpx.Client, dag_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if client.get(f"/api/v2/dags/{dag_id}").status_code == 200:
                return
            time.sleep(0.5)
        raise RuntimeError(f"DAG {dag_id} not parsed after {timeout} s:\n{self.log('dag-processor')[-3000:]}")

    @staticmethod
    def trigger(client: httpx.Client, dag_id: str, conf: Mapping[str, Any] | None = None) -> httpx.Response:
        return client.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})})

    @staticmethod
    def task_instances(client: httpx.Client, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                            params={"limit": 500})
        answer.raise_for_status()
        return answer.json()["task_instances"]

    def wait_until(self, client: httpx.Client, dag_id: str, run_id: str, done: Any, timeout: float = 240,
                   what: str = "") -> list[dict[str, Any]]:
        """Poll the run's task instances until ``done(task_instances)`` is true; fails on a failed run."""
        deadline = time.monotonic() + timeout
        tis: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            tis = self.task_instances(client, dag_id, run_id)
            if done(tis):
                return tis
            state = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}").json().get("state")
            if state == "failed":
                raise RuntimeError(f"{dag_id} {run_id} failed: {_states(tis)}\n{self.task_logs(dag_id, run_id)}")
            time.sleep(1)
        raise RuntimeError(f"{dag_id} {run_id}: not {what or 'done'} after {timeout} s: {_states(tis)}\n"
                           f"{self.log('scheduler')[-2000:]}")

    def awaiting(self, client: httpx.Client, dag_id: str, run_id: str, task_id: str, count: int = 1,
                 timeout: float = 240) -> list[dict[str, Any]]:
        """Wait until ``count`` instances of ``task_id`` wait for a person's answer and may be answered; those.

        "May be answered": the scheduler has handled the end of the workload that parked each of them
        (:meth:`parked`). Airflow 3.3 loses a race against an answer given before that: the answer queues the
        task again, the stale "finished" event then arrives for a queued task, and the scheduler fails that try
        (Innen's approval finds the answer on record in its retry, but only after the retry delay). A person is
        rarely that fast; a test or the demo is."""
        tis = self.wait_until(
            client, dag_id, run_id,
            lambda tis: sum(1 for t in tis if t["task_id"] == task_id and t["state"] == "awaiting_input") >= count,
            timeout, f"awaiting input at {task_id}")
        waiting = [t for t in tis if t["task_id"] == task_id and t["state"] == "awaiting_input"]
        self.parked(dag_id, run_id, task_id, [t["map_index"] for t in waiting])
        return waiting

    def parked(self, dag_id: str, run_id: str, task_id: str, map_indexes: list[int], *, times: int = 1,
               timeout: float = 90) -> None:
        """Wait until the scheduler logged ``times`` parked ends ("TaskInstance Finished … state=awaiting_input")
        for each of ``map_indexes`` of ``task_id`` (a task asked again parks again: ``times=2``)."""
        import re

        def ends(map_index: int, log: str) -> int:
            return len(re.findall(rf"TaskInstance Finished: dag_id={re.escape(dag_id)}, task_id={re.escape(task_id)}, "
                                  rf"run_id={re.escape(run_id)}, map_index={map_index}, [^\n]*?state=awaiting_input,",
                                  log))

        deadline = time.monotonic() + timeout
        pending = set(map_indexes)
        while pending:
            log = self.log("scheduler")
            pending = {i for i in pending if ends(i, log) < times}
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"the scheduler did not report {task_id} {sorted(pending)} parked after {timeout} s:"
                                   f"\n{log[-3000:]}")
            if pending:
                time.sleep(0.5)

    def finished(self, client: httpx.Client, dag_id: str, run_id: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}").json().get("state")
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise RuntimeError(f"{dag_id} {run_id} not finished after {timeout} s")

    @staticmethod
    def answer(client: httpx.Client, dag_id: str, run_id: str, task_id: str, map_index: int, option: str,
               params: Mapping[str, Any] | None = None) -> httpx.Response:
        return client.patch(
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/{map_index}/hitlDetails",
            json={"chosen_options": [option], "params_input": dict(params or {})})

    def task_logs(self, dag_id: str, run_id: str) -> str:
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        texts = [f"--- {path.relative_to(folder)}\n{path.read_text(errors='replace')[-2500:]}"
                 for path in sorted(folder.rglob("*.log"))] if folder.exists() else []
        return "\n".join(texts)


def _states(tis: list[dict[str, Any]]) -> dict[str, str]:
    return {f"{t['task_id']}[{t['map_index']}]": str(t["state"]) for t in tis}


def main() -> None:
    """``make ui``: Innen's Airflow on ``AIRFLOW_HOME`` (``var/airflow``) and ``AIRFLOW__API__PORT``, until Ctrl-C.

    Not ``airflow standalone``: it forces the simple auth manager, and Innen's roles need FAB's.
    """
    home = Path(os.environ.get("AIRFLOW_HOME") or ROOT / "var" / "airflow")
    port = int(os.environ.get("AIRFLOW__API__PORT") or 8080)
    innen = {key: value for key, value in os.environ.items() if key.startswith("INNEN_")}
    # A SIGTERM (a terminal closed, a supervisor stopping it) stops the components too, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    services = AirflowServices.prepare(home, port=port, env=innen)
    services.env["AIRFLOW__API__HOST"] = "0.0.0.0"
    services.env["AIRFLOW__API__BASE_URL"] = f"http://localhost:{port}"
    services.env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] = "30"
    services.env["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"] = "60"
    with services.running(pause_all=False):
        print(f"Airflow UI: http://localhost:{port}  (users {', '.join(sorted(services.passwords))}; passwords in "
              f"{home / 'innen-demo-users.json'}); logs in {home}/*.log. Ctrl-C stops it.", flush=True)
        try:
            while all(process.poll() is None for process in services.processes.values()):
                time.sleep(1)
            stopped = [name for name, process in services.processes.items() if process.poll() is not None]
            print(f"{', '.join(stopped)} stopped; see {home}/*.log", flush=True)
        except KeyboardInterrupt:
            print("stopping Airflow", flush=True)


if __name__ == "__main__":
    main()
