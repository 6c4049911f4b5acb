"""The Ray backend against a real local Ray, run in a network namespace that has only loopback.

Ray binds to the machine's non-loopback address by default; inside ``unshare --net`` there is none,
so nothing it does can leave the machine. The scenario lives in ray_backend_script.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("ray")

SCRIPT = Path(__file__).with_name("ray_backend_script.py")
SERVE_SCRIPT = Path(__file__).with_name("ray_serve_script.py")

# Every Ray process must agree on these; the last one makes Ray take 127.0.0.1 without probing for a route out.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _netns_reason() -> str | None:
    """Why a loopback-only network namespace can't be made here, or None if it can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs `unshare` and `ip` for a loopback-only network namespace"
    probe = subprocess.run(["unshare", "--net", "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace: {probe.stderr.strip() or probe.returncode}"
    return None


@pytest.fixture
def ray_tmpdir():
    """A short private RAY_TMPDIR: Ray's unix socket paths must stay under ~107 characters."""
    path = tempfile.mkdtemp(prefix="parm-ray-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_in_netns(script: Path, workdir: Path, ray_tmpdir: str) -> dict:
    """Run ``script WORKDIR`` in a loopback-only network namespace and return its SUMMARY line as a dict."""
    if reason := _netns_reason():
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | RAY_ENV | {"RAY_TMPDIR": ray_tmpdir}
    command = f'ip link set lo up && exec "{sys.executable}" "{script}" "{workdir}"'
    proc = subprocess.run(["unshare", "--net", "sh", "-c", command], env=env, capture_output=True, text=True,
                          timeout=150)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SUMMARY ")]
    assert proc.returncode == 0 and lines, f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1].removeprefix("SUMMARY "))


@pytest.mark.slow
def test_ray_backend_serves_reports_lost_batches_and_restarts(tmp_path, ray_tmpdir):
    s = run_in_netns(SCRIPT, tmp_path, ray_tmpdir)

    assert set(s["answers"].values()) == {1}, s["answers"]  # every batch answered or lost, exactly once
    assert s["lost"] == s["expected_lost"]
    # One failure per death (instance 1 is noticed by its batch and by its watcher, reported once);
    # the batch sent to 0 while it restarted gets a failure of its own; ready comes after.
    assert sorted(i for i, _ in s["failures"]) == [0, 0, 1, 2]
    assert s["sequence"] == {"0": ["failure", "failure", "ready"], "1": ["failure", "ready"], "2": ["failure", "ready"]}
    assert s["ready"] == [0, 1, 2]
    assert all(s["served_after_kill"])
    assert s["wrong_outputs"] == [] and s["wrong_instance"] == []
    assert s["pair_s"] >= 0.95  # an actor runs one batch at a time (two 0.5 s batches)
    assert not s["ray_still_up"]  # the backend started Ray, so stop() shut it down


@pytest.mark.slow
def test_parm_serve_on_ray_answers_tritonclient_and_survives_a_killed_actor(tmp_path, ray_tmpdir):
    s = run_in_netns(SERVE_SCRIPT, tmp_path, ray_tmpdir)
    assert s["answered"] == 120 and s["wrong"] == []  # every query answered, each with F's exact output
    assert s["failures"] == 1
    assert set(s["kinds"]) <= {"original", "reconstructed"}
