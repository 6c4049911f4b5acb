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


def test_a_fit_on_the_testbed_learns_laws_that_a_simulation_of_it_draws_from(tmp_path: Path) -> None:
    smoke = SCENARIO.with_name("testbed-smoke.yaml")
    profile = tmp_path / "profile.json"
    done = subprocess.run([sys.executable, "-m", "parm", "testbed", "fit", str(smoke), "--queries", "300",
                           "--out", str(profile), "--report", str(tmp_path / "fit"), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    fitted = json.loads(profile.read_text())
    assert set(fitted["modes"]) == {"parm", "equal-resources"} and fitted["hosts"] == 3
    assert fitted["shuffle_mb_s"] > 0 and (tmp_path / "fit" / "trace.npz").exists()
    for entry in fitted["modes"].values():
        calls = entry["call_delay"]["idle"]["n"] + entry["call_delay"]["busy"]["n"]
        episodes = sorted(entry["call_delay"]["episodes_ms"])
        assert calls >= 300 and episodes[len(episodes) // 2] > 0  # the shared level: a real call takes more than 2 ms
    simulated = subprocess.run([sys.executable, "-m", "parm", "simulate", str(smoke), "--fit", str(profile),
                                "--out", str(tmp_path / "sim"), "--no-progress"], capture_output=True, text=True,
                               timeout=120)
    assert simulated.returncode == 0, simulated.stderr[-3000:]
    rows = json.loads((tmp_path / "sim" / "results.json").read_text())["rows"]
    assert {row["mode"] for row in rows} == {"parm", "equal-resources"} and all("at_frontend" in row for row in rows)
