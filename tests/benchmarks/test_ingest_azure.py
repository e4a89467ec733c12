"""The Azure intake benchmark docs/benchmarks.md shows, run small: both sides answer, the ledgers
match what was answered, and the requests per delivery reach the result file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def test_the_azure_intake_benchmark_against_a_checkout_counts_requests_and_checks_both_ledgers(tmp_path: Path) -> None:
    result = tmp_path / "result.json"
    command = ["benchmarks/ingest_azure.py", "--rounds", "1", "--deliveries", "20", "--concurrency", "4"]
    run = subprocess.run(
        [sys.executable, *command, "--baseline-tree", str(ROOT), "--json", str(result)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "goal ledger consistent: MET" in run.stdout
    found = json.loads(result.read_text())
    assert set(found["ledger"]) == {"subject", "baseline"}  # the checkout's intake has a ledger too
    for side in ("subject", "baseline"):  # 14 new versions, 6 redeliveries; the same code on both sides
        requests = found["requests_per_delivery"][side]
        assert requests["new"]["deliveries"] == 14 and requests["new"]["table $batch"] == 1
        assert requests["duplicate"]["deliveries"] == 6 and requests["new"]["queue POST"] == 1
    assert "new event 1 + 1" in found["headline"]
