"""``make cluster``: a distributed Airflow on this machine, as an institution runs it on several.

PostgreSQL (Debian's binaries, a cluster under ``var/cluster/pg`` run as the ``postgres`` user) holds both
Airflow's metadata database (``airflow``) and Innen's (``innen``); Redis (Debian's ``redis-server``) is the
Celery broker; the api-server, scheduler, dag-processor and triggerer run beside **two Celery workers with
different working directories** (``var/cluster/worker-1``, ``worker-2``), so a task that relied on a worker's
own disk would fail here. Every component gets the environment of ``deploy/airflow.env`` (the file an
institution's operator copies to each machine), filled in by :func:`deploy_env`; ``var/cluster/shared`` stands
in for the shared storage every worker mounts.

    python -m sandbox.cluster start | stop | status

``stop`` stops exactly what ``start`` started: the processes and servers recorded in ``var/cluster/state.json``.
:func:`kill_worker` kills a worker as a lost machine would (its tasks with it), :func:`restart_worker` starts it
again (and records it there).
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from base64 import urlsafe_b64encode
from pathlib import Path

from sandbox.airflow_services import ROOT, AirflowServices, airflow_env

CLUSTER = Path(os.environ.get("INNEN_CLUSTER_DIR") or ROOT / "var" / "cluster")
DEPLOY_ENV = ROOT / "deploy" / "airflow.env"
PG_PORT = int(os.environ.get("INNEN_CLUSTER_PG_PORT") or 55432)
REDIS_PORT = int(os.environ.get("INNEN_CLUSTER_REDIS_PORT") or 56379)
API_PORT = int(os.environ.get("INNEN_CLUSTER_API_PORT") or 58080)
WORKERS = ("worker-1", "worker-2")
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", *WORKERS)
WORKER_CONCURRENCY = 2  # task slots per worker


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise SystemExit("Debian's PostgreSQL is missing: make postgres")
    return Path(found[-1]).parent


def _as_postgres(*command: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


def _secret(name: str, make) -> str:  # type: ignore[no-untyped-def]
    path = CLUSTER / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def deploy_env(values: dict[str, str]) -> dict[str, str]:
    """``deploy/airflow.env`` with its ``${NAME}`` placeholders filled from ``values`` (comments and blanks skipped)."""
    env: dict[str, str] = {}
    for line in DEPLOY_ENV.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        for name, filled in values.items():
            value = value.replace("${" + name + "}", filled)
        if "${" in value:
            raise SystemExit(f"{DEPLOY_ENV}: {key} needs a value this machine does not give: {value}")
        env[key.strip()] = value
    return env


def cluster_values() -> dict[str, str]:
    """What ``deploy/airflow.env`` asks for, on this one machine."""
    return {
        "PG_HOST": "127.0.0.1", "PG_PORT": str(PG_PORT), "PG_USER": "postgres",
        "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(REDIS_PORT),
        "API_URL": f"http://127.0.0.1:{API_PORT}", "PUBLIC_URL": f"http://127.0.0.1:{API_PORT}/innen",
        "FERNET_KEY": _secret("fernet_key", lambda: urlsafe_b64encode(secrets.token_bytes(32)).decode()),
        "JWT_SECRET": _secret("jwt_secret", lambda: secrets.token_hex(32)),
        "INNEN_ROOT": str(ROOT), "SHARED": str(CLUSTER / "shared"),
    }


def _start_postgres() -> None:
    data = CLUSTER / "pg" / "data"
    pg = _pg_bin()
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data.parent, "postgres", "postgres")
        subprocess.run(_as_postgres(str(pg / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                    "--locale=C"), check=True, capture_output=True)
    options = f"-p {PG_PORT} -k {data.parent} -c listen_addresses=127.0.0.1 -c max_connections=200"
    running = subprocess.run(_as_postgres(str(pg / "pg_ctl"), "-D", str(data), "status"), capture_output=True)
    if running.returncode != 0:
        subprocess.run(_as_postgres(str(pg / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data.parent / "server.log"),
                                    "-w", "start"), check=True, capture_output=True)
    for database in ("airflow", "innen"):
        exists = subprocess.run(_as_postgres(str(pg / "psql"), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres",
                                             "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{database}'"),
                                capture_output=True, text=True, check=True).stdout.strip()
        if not exists:
            subprocess.run(_as_postgres(str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres",
                                        database), check=True, capture_output=True)


def _start_redis() -> None:
    redis = shutil.which("redis-server")
    if redis is None:
        raise SystemExit("Debian's redis-server is missing: make redis")
    folder = CLUSTER / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([redis, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--dir", str(folder), "--daemonize", "yes",
                    "--pidfile", str(folder / "redis.pid"), "--logfile", str(folder / "redis.log"), "--save", "",
                    "--appendonly", "no"], check=True)
    deadline = time.monotonic() + 20
    while not (folder / "redis.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def services(*, prepare: bool = True) -> AirflowServices:
    """The cluster's Airflow, configured from ``deploy/airflow.env``; ``prepare``: its metadata database migrated
    and the demo users made (not needed to start one more component of a running cluster)."""
    values = cluster_values()
    env = deploy_env(values)
    home = CLUSTER / "airflow"
    base = airflow_env(home, API_PORT, env)
    if prepare:
        services = AirflowServices.prepare(home, port=API_PORT, env={**base, **env})
    else:
        services = AirflowServices(home, API_PORT, {**base, **env},
                                   json.loads((home / "innen-demo-users.json").read_text()))
    for worker in WORKERS:
        services.component_specs[worker] = worker_spec(worker)
    return services


def worker_spec(worker: str, concurrency: int = WORKER_CONCURRENCY) -> tuple[list[str], Path, dict[str, str]]:
    """How ``worker`` runs: its Celery node name, ``concurrency`` task slots, its own folder and log-server port."""
    return (
        ["celery", "worker", "--celery-hostname", f"{worker}@%h", "--concurrency", str(concurrency)],
        CLUSTER / worker,  # its own working directory: nothing may rely on another worker's disk
        {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(8794 + WORKERS.index(worker))},
    )


def _innen_schema(url: str) -> None:
    from include.finance.db import create_schema, get_engine

    create_schema(get_engine(url))


def running() -> bool:
    """Whether every process ``start`` recorded is still alive."""
    state_file = CLUSTER / "state.json"
    if not state_file.exists():
        return False
    for pid in json.loads(state_file.read_text()).get("pids", {}).values():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
    return True


def start() -> AirflowServices:
    if running():
        return services()
    stop()  # what is left of a cluster half gone
    CLUSTER.mkdir(parents=True, exist_ok=True)
    _start_postgres()
    _start_redis()
    airflow = services()
    _innen_schema(airflow.env["INNEN_DB_URL"])
    airflow.start(COMPONENTS, timeout=180, pause_all=False)
    state = {"pids": {name: process.pid for name, process in airflow.processes.items()}, "api": airflow.base}
    (CLUSTER / "state.json").write_text(json.dumps(state, indent=2))
    return airflow


def _state() -> dict:
    return json.loads((CLUSTER / "state.json").read_text())


def worker_of(pid: int) -> str | None:
    """The worker whose processes include ``pid`` (a task's, as its task instance records it), or None.

    By ancestry, not by process group: Airflow's supervisor puts each task process in a group of its own."""
    import psutil

    workers = {number: name for name, number in _state()["pids"].items() if name in WORKERS}
    try:
        process = psutil.Process(pid)
        lineage = [process, *process.parents()]
    except psutil.NoSuchProcess:
        return None
    return next((workers[p.pid] for p in lineage if p.pid in workers), None)


def kill_worker(worker: str) -> list[int]:
    """SIGKILL ``worker`` as a lost machine or the kernel's OOM killer would: the Celery worker, its pool, the
    task supervisors and the task processes (each in a process group of its own, so killing the worker's group
    alone would leave them running as orphans). Returns the process ids killed."""
    import psutil

    pid = _state()["pids"][worker]
    os.killpg(pid, signal.SIGSTOP)  # frozen first: nothing forks or exits while the tree is listed
    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    groups = {pid}
    for process in tree:
        try:
            groups.add(os.getpgid(process.pid))
        except ProcessLookupError:
            pass
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
    psutil.wait_procs(tree, timeout=10)
    return [process.pid for process in tree]


def stop_worker(worker: str, timeout: float = 60) -> None:
    """Stop ``worker`` as an operator would (Celery's warm shutdown: its running tasks finish first); the cluster
    counts as not running until :func:`restart_worker` starts it again."""
    pid = _state()["pids"].get(worker)
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)  # reaped, when this process started it
            except ChildProcessError:
                pass
            os.killpg(pid, 0)
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def restart_worker(worker: str, *, concurrency: int = WORKER_CONCURRENCY, timeout: float = 120) -> int:
    """Start ``worker`` again (stopping it first if it still runs), with ``concurrency`` task slots, and record it in
    ``state.json``; returns its process id once Celery reports it ready."""
    stop_worker(worker)
    state = _state()
    airflow = services(prepare=False)
    airflow.component_specs[worker] = worker_spec(worker, concurrency)
    log = airflow.home / f"{worker}.log"
    offset = log.stat().st_size if log.exists() else 0
    airflow.start((worker,), timeout=timeout, pause_all=False)
    process = airflow.processes[worker]
    state["pids"][worker] = process.pid
    (CLUSTER / "state.json").write_text(json.dumps(state, indent=2))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # Celery's own word that the worker consumes its queue
        with log.open("rb") as text:
            text.seek(offset)
            if b" ready." in text.read():
                return process.pid
        if process.poll() is not None:
            raise RuntimeError(f"{worker} exited with {process.returncode}:\n{airflow.log(worker)[-3000:]}")
        time.sleep(0.3)
    raise RuntimeError(f"{worker} not ready after {timeout} s:\n{airflow.log(worker)[-3000:]}")


def stop() -> list[str]:
    stopped: list[str] = []
    state_file = CLUSTER / "state.json"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        for name, pid in state.get("pids", {}).items():
            try:
                os.killpg(pid, signal.SIGTERM)
                stopped.append(name)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        for pid in state.get("pids", {}).values():
            while time.monotonic() < deadline:
                try:
                    os.killpg(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.2)
            else:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        state_file.unlink()
    pid_file = CLUSTER / "redis" / "redis.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
            stopped.append("redis")
        except (ProcessLookupError, ValueError):
            pass
        pid_file.unlink(missing_ok=True)
    data = CLUSTER / "pg" / "data"
    if (data / "postmaster.pid").exists():
        subprocess.run(_as_postgres(str(_pg_bin() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"),
                       capture_output=True)
        stopped.append("postgresql")
    return stopped


def main(argv: list[str]) -> None:
    command = argv[0] if argv else "status"
    if command == "start":
        was_running = running()
        airflow = start()
        if was_running:
            print(f"cluster already running: Airflow {airflow.base}")
            return
        print(f"cluster up: Airflow {airflow.base} (users and passwords in {airflow.home / 'innen-demo-users.json'}),"
              f" PostgreSQL 127.0.0.1:{PG_PORT}, Redis 127.0.0.1:{REDIS_PORT}, workers {', '.join(WORKERS)}; "
              f"logs in {airflow.home}/*.log; make cluster-stop stops it")
    elif command == "stop":
        print("stopped: " + (", ".join(stop()) or "nothing was running"))
    else:
        state = CLUSTER / "state.json"
        print(state.read_text() if state.exists() else "no cluster running")


if __name__ == "__main__":
    main(sys.argv[1:])
