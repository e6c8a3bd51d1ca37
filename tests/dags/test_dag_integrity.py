"""Every DAG file imports cleanly and follows the house rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS.glob("*.py"))
HEAVY = {"lxml", "pandas", "xmlschema", "httpx", "sqlalchemy", "schwifty", "holidays", "segno", "jinja2", "stdnum"}


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


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
            assert node.module == "include.assets", f"{node.module}: import domain code inside the task"
