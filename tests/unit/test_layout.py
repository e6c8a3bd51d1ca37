"""What ``include/`` may import: production code only, never Airflow and never the tools beside it.

The POM simulator, the camt.053 writer, the demo institution and the
benchmarks' loaders live in ``sandbox/``; an ``include/`` module importing
them (or ``bench``, ``scripts``, ``tests``) would ship a tool as product.
Airflow stays in ``dags/`` and ``plugins/``; four ``include/`` modules are
adapters to it (roles, assets, the finance mail through Airflow's SMTP
notifier, and the storage root, an ObjectStoragePath when it is not a local
folder), and import Airflow inside their functions only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = ROOT / "include"
TOOLS = ("sandbox", "bench", "scripts", "tests")
AIRFLOW_ALLOWED = {"include/airflow_roles.py", "include/assets.py", "include/finance_mail.py", "include/storage.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


MODULES = sorted(INCLUDE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_include_imports_no_tool(path: Path) -> None:
    tools = {name for name in _imports(path) if name.split(".")[0] in TOOLS}
    assert not tools, f"{path.relative_to(ROOT)} imports {sorted(tools)}: tools belong outside include/"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_include_imports_no_airflow(path: Path) -> None:
    relative = str(path.relative_to(ROOT))
    airflow = {name for name in _imports(path) if name.split(".")[0] == "airflow"}
    if relative in AIRFLOW_ALLOWED:
        return
    assert not airflow, f"{relative} imports {sorted(airflow)}: Airflow belongs in dags/ and plugins/"


def test_the_tools_live_in_sandbox() -> None:
    for moved in ("demo.py", "pom/simulator.py", "sepa/camt_writer.py"):
        assert not (INCLUDE / moved).exists(), f"include/{moved} is a tool"
    for tool in ("demo_institution.py", "pom_simulator.py", "camt_writer.py", "bench_loading.py"):
        assert (ROOT / "sandbox" / tool).is_file()


SWITCH_INTERVAL_ALLOWED = {"include/sepa/chunk_validation.py"}  # the chunked validation engine, lowering it while it runs


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_domain_module_tunes_the_interpreter(path: Path) -> None:
    """Speed machinery lives in modules of its own: no ``gc`` anywhere in include/, the switch interval in one place."""
    relative = str(path.relative_to(ROOT))
    assert "gc" not in _imports(path), f"{relative} imports gc"
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    sets = any(isinstance(node, ast.Attribute) and node.attr == "setswitchinterval" for node in ast.walk(tree))
    assert not sets or relative in SWITCH_INTERVAL_ALLOWED, f"{relative} sets the interpreter's switch interval"
