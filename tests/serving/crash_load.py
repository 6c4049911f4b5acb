"""Queries from several client threads with a crash in the middle: the load the kill tests put on a server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import tritonclient.http as triton

T = TypeVar("T")


def load_with_crash(address: str, queries: np.ndarray, infer: Callable[[triton.InferenceServerClient, np.ndarray], T],
                    crash: Callable[[], None], *, after: int = 100, threads: int = 8) -> list[T]:
    """Every query sent (one tritonclient per thread), ``crash()`` called once ``after`` answers are in; the
    results in query order."""
    halfway, answered, lock = threading.Event(), [0], threading.Lock()
    clients = threading.local()

    def send(x: np.ndarray) -> T:
        if not hasattr(clients, "client"):
            clients.client = triton.InferenceServerClient(address)
        result = infer(clients.client, x)
        with lock:
            answered[0] += 1
            if answered[0] == after:
                halfway.set()
        return result

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(send, x) for x in queries]
        assert halfway.wait(timeout=120), f"{after} answers did not come within 120 s"
        crash()
        return [future.result(timeout=120) for future in futures]
