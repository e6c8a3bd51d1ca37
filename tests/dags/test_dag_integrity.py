"""Every DAG file imports cleanly and follows the house rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.dag_bag import dag_bag

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py"))
# Modules a DAG file may import at its top: they only name things (assets, roles).
LIGHT = ("include.assets", "include.airflow_roles", "include.param_patterns")
HEAVY = {"lxml", "pandas", "xmlschema", "httpx", "sqlalchemy", "schwifty", "holidays", "segno", "jinja2", "stdnum"}


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    return dag_bag()


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_every_dag_file_defines_the_dag_named_after_it(dagbag) -> None:
    assert sorted(dagbag.dag_ids) == sorted(p.stem for p in DAG_FILES)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_policy(dagbag, path: Path) -> None:
    dag = dagbag.dags[path.stem]
    assert dag.tags and "innen" in dag.tags
    assert dag.doc_md and len(dag.doc_md) > 200
    assert all(task.retries >= 1 for task in dag.tasks), [t.task_id for t in dag.tasks if t.retries < 1]
    assert dag.catchup is False
    decorator = next(
        node for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dag"
    )
    assert "catchup" in {kw.arg for kw in decorator.keywords}, "catchup must be set explicitly"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_no_heavy_imports_at_top_level(path: Path) -> None:
    tree = ast.parse(path.read_text())
    top = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = {alias.name.split(".")[0] for node in top if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module.split(".")[0] for node in top if isinstance(node, ast.ImportFrom) and node.module}
    assert not names & HEAVY
    for node in top:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("include"):
            assert node.module in LIGHT, f"{node.module}: import domain code inside the task"


def test_the_light_modules_stay_light() -> None:
    """What DAG files may import at the top pulls in no heavy library (a fresh interpreter tells)."""
    import subprocess
    import sys

    code = ("import sys; import " + ", ".join(LIGHT) + "; "
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=DAGS.parent).stdout.split())
    assert not loaded & HEAVY


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_money_dags_are_run_by_finance_and_the_pipelines_by_operators(dagbag, path: Path) -> None:
    dag = dagbag.dags[path.stem]
    editors = {role for role, rights in (dag.access_control or {}).items() if "can_edit" in rights.get("DAGs", ())}
    money = {"pain_export", "collection_confirm", "control_list_resolve", "payment_reference_create",
             "payment_reference_seal", "payment_reference_delete"}
    if path.stem == "payment_reference_delete":
        assert editors == {"finance-admin"}
    elif path.stem in money:
        assert editors == {"finance", "finance-admin"}
    else:
        assert editors == {"operator"}
