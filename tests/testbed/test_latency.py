"""A latency scenario on the testbed, with real faults: a server process SIGKILLed, a host's link unplugged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from parm.testbed import sandbox

REASON = sandbox.unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=REASON or "")]
SCENARIO = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios" / "testbed-failures-smoke.yaml"


def test_a_crash_and_an_unplugged_link_on_the_testbed_lose_no_query(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "parm", "bench", "latency", str(SCENARIO), "--modes", "parm",
                           "--queries", "400", "--out", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert run["failed_requests"] == 0 and run["instances"] == 3
    assert "instance 0 failed" in done.stderr and "Connect" in done.stderr  # its process was SIGKILLed
    assert "instance 1 failed" in done.stderr and "did not answer within" in done.stderr  # its link was cut
