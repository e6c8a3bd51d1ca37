"""``bin/airflow``: any airflow command against Innen from any directory, with the Makefile's environment.

The Makefile exports its environment for ``make demo``/``ui``/``airflow``; ``bin/airflow`` sources
``bin/innen-env.sh``. Both are asked what they export, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "bin" / "airflow"
DAG_IDS = sorted(p.stem for p in (ROOT / "dags").glob("*.py"))
# Names the shells and make set for themselves, not part of Innen's environment.
NOISE = {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKE_TERMOUT", "MAKE_TERMERR", "SHLVL", "_", "PWD", "OLDPWD"}


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what conftest or a caller set for Airflow and Innen."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "INNEN_")) and key != "PYTHONPATH"
    }
    env.update(extra)
    return env


def _env_of(command: list[str], env: dict[str, str], cwd: Path) -> dict[str, str]:
    """What ``command`` (printing ``env -0``) adds or changes relative to ``env``."""
    out = subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True, timeout=60).stdout
    printed = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return {key: value for key, value in printed.items() if env.get(key) != value and key not in NOISE}


def _make_env(env: dict[str, str], cwd: Path) -> dict[str, str]:
    command = ["make", "-s", "--no-print-directory", "-C", str(ROOT), "--eval", "_innen_env: ; @env -0", "_innen_env"]
    return _env_of(command, env, cwd)


def _script_env(env: dict[str, str], cwd: Path) -> dict[str, str]:
    return _env_of(["bash", "-c", f'source "{ROOT}/bin/innen-env.sh" && env -0'], env, cwd)


@pytest.mark.parametrize(
    "preset",
    [{}, {"AIRFLOW_HOME": "/srv/airflow", "AIRFLOW__API__PORT": "8181", "PYTHONPATH": "/elsewhere"}],
    ids=["nothing-set", "home-port-pythonpath-set"],
)
def test_the_makefile_and_bin_innen_env_export_the_same(tmp_path: Path, preset: dict[str, str]) -> None:
    env = _clean_env(**preset)
    from_make, from_script = _make_env(env, tmp_path), _script_env(env, tmp_path)
    assert from_script == from_make
    assert from_script["INNEN_ROOT"] == str(ROOT)
    assert from_script["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    assert from_script["PYTHONPATH"] == str(ROOT)
    home = from_script.get("AIRFLOW_HOME", env.get("AIRFLOW_HOME"))
    assert home == preset.get("AIRFLOW_HOME", str(ROOT / "var" / "airflow"))


def test_bin_airflow_lists_the_innen_dags_from_any_directory(tmp_path: Path) -> None:
    home = tmp_path / "airflow-home"
    env = _clean_env(AIRFLOW_HOME=str(home))
    migrate = subprocess.run([str(WRAPPER), "db", "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=120)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    # --local: the DAG files parsed now (without it, only what a dag-processor has already serialized).
    listed = subprocess.run([str(WRAPPER), "dags", "list", "--local", "-o", "json"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    output = listed.stdout + listed.stderr
    assert listed.returncode == 0, output[-3000:]
    assert "No module named" not in output
    dags = json.loads(next(line for line in listed.stdout.splitlines() if line.startswith("[")))
    assert sorted(d["dag_id"] for d in dags) == DAG_IDS
    assert {Path(d["fileloc"]).parent for d in dags} == {ROOT / "dags"}
    assert (home / "airflow.cfg").is_file() and not (ROOT / "airflow.cfg").exists()


def test_bin_airflow_says_what_to_do_without_the_venv(tmp_path: Path) -> None:
    copy = tmp_path / "innen"
    (copy / "bin").mkdir(parents=True)
    for name in ("airflow", "innen-env.sh"):
        (copy / "bin" / name).write_bytes((ROOT / "bin" / name).read_bytes())
    (copy / "bin" / "airflow").chmod(0o755)
    result = subprocess.run([str(copy / "bin" / "airflow"), "version"], env=_clean_env(), cwd=tmp_path,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 127 and "make install" in result.stderr
