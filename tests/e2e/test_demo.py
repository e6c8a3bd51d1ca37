"""`make demo` end to end: the script a newcomer runs, in a private var/ and Airflow home."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest
from lxml import etree

from include.sepa.xsd import schema

ROOT = Path(__file__).resolve().parents[2]


def _demo(var: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INNEN_VAR_DIR": str(var), "PYTHONPATH": str(ROOT), "INNEN_DEMO_DATE": "2026-11-20"}
    env.pop("INNEN_DB_URL", None)
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], env=env, capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


@pytest.mark.timeout(1200)
def test_demo_runs_the_cycle_and_prints_where_its_outputs_are(tmp_path: Path, airflow_db: None) -> None:
    var = tmp_path / "var"
    first = _demo(var)
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    counts = dict(re.findall(r"^\s+(active-ok|active-err|nonactive-ok|nonactive-err)\s+(\d+)$", out, re.M))
    assert set(counts) == {"active-ok", "active-err", "nonactive-ok", "nonactive-err"}
    assert all(int(n) > 0 for n in counts.values())
    assert sum(int(n) for n in counts.values()) >= 300
    for kind in ("FRST", "RCUR", "FNAL", "OOFF"):
        assert re.search(rf"\b{kind} \d+", out), kind
    files = re.findall(r"^\s+(\S+\.xml)\n\s+sha256 ([0-9a-f]{64})\s+(\d+) transactions\s+EUR ([\d.]+)$", out, re.M)
    staged = re.findall(r"waiting for approval in staging: (\S+\.xml) \(sha256 ([0-9a-f]{64}), (\d+) transactions, "
                        r"EUR ([\d.]+)\)", out)
    assert len(files) == 1 and len(staged) == 1, out  # finance2 approved the library's file; the academy's waits
    assert "approved by finance2 through the REST API (four eyes: finance triggered it)" in out
    for (relative, sha, count, _total), folder in [*((f, "outbox") for f in files), *((f, "staging") for f in staged)]:
        path = Path(relative)
        assert path.parent == var / folder
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha
        tree = etree.fromstring(data)
        version = etree.QName(tree).namespace.rsplit(":", 1)[1]
        assert schema(version).validate(tree), relative
        assert len([n for n in tree.iter() if etree.QName(n).localname == "DrctDbtTxInf"]) == int(count)
    assert "BNP-OUD: no file: creditor identifier" in out
    assert (var / "reports" / "mandate_check" / "2026-11-20" / "index.html").is_file()
    # The bank's statement: every kind of line, and where the control list is.
    line = re.search(r"statement \S+ of \S+: (\d+) lines: (.*)$", out, re.M)
    assert line, out
    outcomes = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", line.group(2)))
    assert {"paid", "partial", "overpaid", "unmatched", "returned"} <= set(outcomes)
    assert sum(outcomes.values()) == int(line.group(1))
    control_list = re.search(r"control list \((\d+) items\): (\S+)", out)
    assert control_list and Path(control_list.group(2)).is_file() and int(control_list.group(1)) > 0
    assert list((var / "archive").glob("*.xml")) and not list((var / "inbox" / "camt053").glob("*.xml"))
    # POM: requests made, paid by callback and by the reconciliation, expired references, delivery diagnoses.
    requests = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", re.search(r"^\s+requests: (.*)$", out, re.M).group(1)))
    paid_by = re.search(r"payers pay (\d+) requests with a callback and (\d+) without", out)
    assert paid_by and requests.get("paid") == int(paid_by.group(1)) + int(paid_by.group(2)), out
    assert re.search(r"callbacks taken: paid (\d+)", out).group(1) == paid_by.group(1)
    assert int(re.search(r"references expired after their type's lifetime: (\d+)", out).group(1)) > 0
    assert (var / "reports" / "pom_reconciliation").is_dir()
    diagnoses = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", re.search(r"diagnoses: (.*)$", out, re.M).group(1)))
    assert {"delivered", "given_up", "retrying", "unsubscribed", "unknown", "not_attempted_email_recipient_off",
            "not_attempted_copy_per_address_off"} <= set(diagnoses), diagnoses
    # Invoices: made by the next night's run, whose printing (one PDF for the print room) also holds the academy's
    # direct-debit notices mandate_execution made at once on the 20th; e-mailed per sales journal.
    channels = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", re.search(r"^\s+invoices: (.*?) \(", out, re.M).group(1)))
    made = list((var / "invoices" / "2026-11-21").glob("*.pdf"))
    assert {"email", "paper"} <= set(channels) and sum(channels.values()) == len(made) > 50
    assert not (var / "invoices" / "2026-11-20").exists()  # nothing belongs to the printing that ran before them
    printing = re.search(r"the day's printing: (\S+), for the print room (\S+)", out)
    assert printing and Path(printing.group(1)).is_file() and Path(printing.group(2)).read_bytes().startswith(b"%PDF-")
    assert Path(printing.group(1)).parent.name == "2026-11-21"
    paper = re.search(r"print\.pdf: (\d+) paper invoices, of which (\d+) direct-debit notices mandate_execution made "
                      r"at once on 2026-11-20", out)
    assert paper and int(paper.group(1)) > int(paper.group(2)) > 0, out
    # every current invoice belongs to that printing: each paper one is in print.pdf
    assert int(paper.group(1)) == channels.get("paper", 0) + channels.get("both", 0)
    assert len(pypdf.PdfReader(printing.group(2)).pages) >= int(paper.group(1))
    assert re.search(r"e-mailed through POM: .*batch VERKOOP-BIB-2026-11-21-1 \(\d+ invoices\)", out)
    action_list = re.search(r"action list: (\S+)", out)
    assert action_list and Path(action_list.group(1)).is_file()

    # Finance in Airflow: one control-list item resolved by hand over REST, and where the pages are.
    resolved = re.search(r"control-list item (\d+) \((\w+), EUR [\d.]+\): control_list_resolve success; handled by "
                         r"(.*) by finance: refunded", out)
    assert resolved, out
    assert re.search(r"Finance page:\s+http://localhost:\d+/plugin/innen-finance", out)
    assert re.search(r"Reports tab of the bank-file run: http://localhost:\d+/dags/pain_export/runs/\S+/plugin/"
                     r"innen-reports", out)

    # The figures make cluster-check compares the cluster's cycle with.
    figures = json.loads((var / "demo" / "figures.json").read_text())
    assert figures["bank_entries"] == outcomes
    assert figures["pom_events"]["payment_request.paid"] == int(paid_by.group(1))
    assert figures["diagnoses"] == diagnoses and figures["invoices"] == channels

    second = _demo(var)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Rebuilding the demo database" in second.stdout
    assert re.findall(r"collect \S+\s+exported\s+(\d+)", second.stdout) == re.findall(r"collect \S+\s+exported\s+(\d+)", out)
