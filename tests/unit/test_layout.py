"""What ``include/`` may import: production code only, never Airflow and never the tools beside it.

The POM simulator, the camt.053 writer, the demo institution and the
benchmarks' loaders live in ``sandbox/``; an ``include/`` module importing
them (or ``bench``, ``scripts``, ``tests``) would ship a tool as product.
Airflow stays in ``dags/`` and ``plugins/``; four ``include/`` modules are
adapters to it (roles, assets, the finance mail through Airflow's SMTP
notifier, and the storage root, an ObjectStoragePath when it is not a local
folder), and import Airflow inside their functions only.

And a status is written as a member of :mod:`include.finance.statuses`, never
as a string, where ``include/`` compares, sets or passes one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from include.finance.statuses import (
    ApprovalStatus,
    CollectionStatus,
    PomRequestStatus,
    ReferenceStatus,
    RunStatus,
    values,
)

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


# The statuses a row can have, spelled once in include/finance/statuses.py: code compares and sets the members.
STATUS_VALUES = frozenset(value for enum in (ReferenceStatus, RunStatus, CollectionStatus, PomRequestStatus,
                                             ApprovalStatus) for value in values(enum))


def _status_name(name: str) -> bool:
    return name == "status" or name.endswith("_status")


def _is_status(node: ast.AST) -> bool:
    return _status_name(node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else "")


def _literals(node: ast.AST | None) -> list[str]:
    """The status strings ``node`` spells: a literal, or a tuple, list or set of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if node.value in STATUS_VALUES else []
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [value for element in node.elts for value in _literals(element)]
    return []


def _assigned(target: ast.AST, value: ast.AST) -> list[str]:
    if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
        return [found for part, given in zip(target.elts, value.elts) for found in _assigned(part, given)]
    return _literals(value) if _is_status(target) else []


def status_literals(path: Path) -> list[str]:
    """``line: "value"`` for each status written as a string where a status is compared, set or passed."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        spelled: list[str] = []
        if isinstance(node, ast.Compare) and any(_is_status(side) for side in (node.left, *node.comparators)):
            spelled = [value for side in (node.left, *node.comparators) for value in _literals(side)]
        elif isinstance(node, ast.keyword) and node.arg and _status_name(node.arg):
            spelled = _literals(node.value)
        elif isinstance(node, ast.Dict):
            spelled = [value for key, item in zip(node.keys, node.values, strict=True)
                       if isinstance(key, ast.Constant) and isinstance(key.value, str) and _status_name(key.value)
                       for value in _literals(item)]
        elif isinstance(node, ast.Assign):
            spelled = [value for target in node.targets for value in _assigned(target, node.value)]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("in_", "not_in") \
                and _is_status(node.func.value):
            spelled = [value for argument in node.args for value in _literals(argument)]
        found += [(node.lineno, value) for value in spelled]
    return [f"{line}: {value!r}" for line, value in sorted(found)]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_statuses_are_the_enums_members(path: Path) -> None:
    """``row.status == ReferenceStatus.PAID``, never ``== "paid"``: a misspelt member fails at import, a misspelt
    string compares unequal for ever (the members equal their strings, so nothing stored changes)."""
    spelled = status_literals(path)
    assert not spelled, (f"{path.relative_to(ROOT)} spells statuses as strings (use include.finance.statuses): "
                         f"{', '.join(spelled)}")


def test_the_status_tripwire_sees_each_spelling(tmp_path: Path) -> None:
    module = tmp_path / "spelled.py"
    module.write_text(
        'if ref.status == "paid" or "open" != request.status or run_status in ("ready", "failed"):\n'
        '    row.status, row.at = "sealed", now\n'
        'Run(loi=loi, status="exported")\n'
        'after = {"status": "waiting", "reason": "paid"}\n'
        'select(Collection).where(Collection.status.in_(("pending", "exported")))\n'
        'fine = {"outcome": "paid", "status": ReferenceStatus.PAID, "open": 1} if kind == "paid" else None\n',
        encoding="utf-8")
    assert status_literals(module) == ["1: 'failed'", "1: 'open'", "1: 'paid'", "1: 'ready'", "2: 'sealed'",
                                       "3: 'exported'", "4: 'waiting'", "5: 'exported'", "5: 'pending'"]
