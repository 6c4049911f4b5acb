"""`parm serve` as a user runs it: options checked and the port bound before any instance starts, and a Ctrl-C
(SIGINT to the process group) or SIGTERM that drains the queries in flight, quietly and at once.

Real processes on loopback. Every `parm serve` started here carries a tag in its environment, which its
instance processes inherit, so a test can tell whether any of them is left (they run in sessions of their own).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from parm.cli import main
from parm.serving.backends.local import LocalBackend

from .exact_runs import INPUT_SHAPE, affine_run

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")]
MODEL = "toy-logistic-regression"
TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return affine_run(tmp_path_factory.mktemp("lifecycle"))[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment holds ``tag``: a `parm serve` started by `serving` and its instances."""
    pids = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError):
            if entry.isdigit() and tag.encode() in Path(f"/proc/{entry}/environ").read_bytes():
                with contextlib.suppress(OSError):  # a zombie (exited, not yet reaped) is no process left
                    if Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                        pids.append(int(entry))
    return pids


class Serve:
    """A `parm serve` process in a session of its own (as a terminal runs it), its output read as it comes."""

    def __init__(self, args: list[str]) -> None:
        self.tag = f"PARM_LIFECYCLE_TEST={uuid.uuid4().hex}"
        name, value = self.tag.split("=")
        self.process = subprocess.Popen([sys.executable, "-m", "parm", "serve", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, start_new_session=True,
                                        env={**os.environ, name: value})
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self.readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
                        threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True)]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            if " ready at http://" in line:
                self.ready.set()

    def finish(self) -> tuple[int, str, str]:
        """Wait for the exit and for every writer of its pipes (its instances too); the exit code, stdout, stderr."""
        code = self.process.wait(timeout=TIMEOUT_S)
        for reader in self.readers:
            reader.join(timeout=TIMEOUT_S)
        return code, "".join(self.stdout), "".join(self.stderr)

    def kill(self) -> None:
        """Whatever a failed test left running: the server's group, and its instances in their own sessions."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for pid in tagged_processes(self.tag):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=TIMEOUT_S)


@contextlib.contextmanager
def serving(args: list[str]) -> Iterator[Serve]:
    serve = Serve(args)
    try:
        yield serve
    finally:
        serve.kill()


def post_query(port: int) -> int:
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, *INPUT_SHAPE], "data": [0.5] * 16}]}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    connection.request("POST", f"/v2/models/{MODEL}/infer", body=json.dumps(body))
    response = connection.getresponse()
    assert json.loads(response.read())["outputs"], "an answer without outputs"
    connection.close()
    return response.status


def pending_queries(port: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    return float(re.search(r"^parm_pending_queries (\S+)$", text, re.M).group(1))


def test_a_port_in_use_is_one_line_and_a_non_zero_exit_before_any_instance_starts(run_folder: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with serving([str(run_folder), "--port", str(port)]) as serve:
            code, out, err = serve.finish()
            assert tagged_processes(serve.tag) == []  # no instance process was started, or none is left
    assert code != 0 and out == ""
    assert len(err.splitlines()) == 1, err
    assert f"127.0.0.1:{port}" in err and "in use" in err and "--port" in err


@pytest.mark.parametrize(("option", "value"), [
    ("--port", "70000"), ("--port", "0"), ("--host", "256.1.1.1"), ("--max-pending", "0"), ("--max-pending", "-1"),
    ("--max-body-mb", "0"), ("--instances", "0"), ("--instance-processes", "0"), ("--batch-size", "0"),
    ("--deadline-ms", "0"), ("--slow", "0=-5"),
])
def test_an_invalid_option_is_refused_in_one_line_naming_it_before_anything_starts(
        run_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, option: str,
        value: str) -> None:
    started = []
    monkeypatch.setattr(LocalBackend, "start", lambda self, *args: started.append(args))
    port = [] if option == "--port" else ["--port", str(free_port())]
    assert main(["serve", str(run_folder), *port, option, value]) == 2
    out, err = capsys.readouterr()
    assert out == "" and started == []
    assert len(err.splitlines()) == 1 and err.startswith(f"parm serve: error: {option} "), err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_to_the_group_answers_the_queries_in_flight_and_exits_0_within_a_second(
        run_folder: Path, sig: signal.Signals) -> None:
    port, queries = free_port(), 2
    # Both base instances hold each answer 300 ms, so no query can be answered (or rebuilt) sooner.
    with serving([str(run_folder), "--port", str(port), "--slow", "0=300", "--slow", "1=300",
                  "--log-format", "text"]) as serve:
        assert serve.ready.wait(timeout=TIMEOUT_S), "".join(serve.stderr)
        statuses: list[int] = []
        senders = [threading.Thread(target=lambda: statuses.append(post_query(port))) for _ in range(queries)]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + TIMEOUT_S
        while pending_queries(port) < queries:  # every query accepted, none answered yet
            assert time.monotonic() < deadline, "the queries never were in flight together"
        signalled = time.monotonic()
        os.killpg(serve.process.pid, sig)
        serve.process.wait(timeout=TIMEOUT_S)
        drained = time.monotonic() - signalled
        for sender in senders:
            sender.join(timeout=TIMEOUT_S)
        code, _, err = serve.finish()
        assert tagged_processes(serve.tag) == []
    assert statuses == [200] * queries
    assert code == 0 and drained < 1.0, (code, drained)
    assert "Traceback" not in err and "restart" not in err and "instance died" not in err, err
