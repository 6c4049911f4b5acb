"""KServe's ModelServer as a real third-party peer in tests: `benchmarks/thirdparty/kserve_onnx.py` in a subprocess.

KServe and tritonclient.grpc cannot live in one process (both register the same protobuf messages), so the server
always runs apart: started on a loopback port, waited for on its ``ready`` line (no sleeping), SIGKILLed at the end.
"""

from __future__ import annotations

import contextlib
import importlib.util
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Found without importing it: kserve's protobuf messages would clash with tritonclient.grpc's in this process.
needs_kserve = pytest.mark.skipif(importlib.util.find_spec("kserve") is None or
                                  importlib.util.find_spec("onnxruntime") is None,
                                  reason="kserve or onnxruntime is not installed: `make test` installs both (test extras)")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "thirdparty" / "kserve_onnx.py"
READY_TIMEOUT_S = 60.0


def wait_for_ready(process: subprocess.Popen, timeout: float = READY_TIMEOUT_S) -> str:
    """The URL of the script's ``ready http://HOST:PORT`` line, read as soon as it is printed."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0 and selector.select(left):
            line = process.stdout.readline()
            if not line:
                break  # the server exited
            if line.startswith("ready "):
                return line.split()[1]
    raise AssertionError(f"no ready line within {timeout} s (exit status {process.poll()})")


def start_kserve(repository: Path, log: Path, port: int = 0, models: list[str] | None = None) -> subprocess.Popen:
    """KServe serving ``repository``'s models (or ``models`` of it) on 127.0.0.1:``port`` (0: a free one)."""
    command = [sys.executable, str(SCRIPT), str(repository), "--port", str(port), *(["--models", *models] if models
                                                                                    else [])]
    with log.open("a") as out:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=out, stdin=subprocess.DEVNULL, text=True)


@contextlib.contextmanager
def kserve(repository: Path, log: Path, port: int = 0, models: list[str] | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``start_kserve`` for the block: (its URL, its process); SIGKILLed on the way out."""
    process = start_kserve(repository, log, port, models)
    try:
        yield wait_for_ready(process), process
    finally:
        process.kill()
        process.wait(timeout=10)
