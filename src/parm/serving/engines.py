"""How an instance computes its model: PyTorch eager (``torch``, the default) or ONNX Runtime (``onnx``).

ONNX Runtime runs the zoo's small models in a fraction of eager PyTorch's time per call (Base-MLP, one thread, on a
2-core AMD EPYC VM: 35 against 79 µs at batch 1, 63 against 133 at batch 8), and its smaller footprint counts for
more on a loaded host, where a batch finds the caches cold after the frontend ran (docs/RESULTS.md: an instance
process's CPU per batch under load). An ``onnx`` engine exports the checkpoint when the instance starts and checks
the export against PyTorch there (`parm.export.formats`), so it never serves outputs that differ from the
checkpoint's beyond the export's tolerance; an export that fails the check refuses to start, naming the fix.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from parm.models import load_checkpoint

ENGINES = ("torch", "onnx")
Compute = Callable[[np.ndarray], np.ndarray]  # a batch of inputs to its batch of outputs


def check_engine(engine: str) -> None:
    """Refuse an unknown engine, or ``onnx`` without onnx and onnxruntime installed, naming the fix."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine == "onnx":
        from parm.export.formats import ONNX  # imported late: parm.export reads the serving layer's tensor names

        ONNX.require()


def load_engine(checkpoint: str | Path, engine: str = "torch", threads: int = 1) -> Compute:
    """The checkpoint's model as ``engine`` computes it, on ``threads`` intra-op threads."""
    check_engine(engine)
    model, card = load_checkpoint(checkpoint)
    return torch_engine(model) if engine == "torch" else onnx_engine(model, card.input_shape, threads)


def torch_engine(model: torch.nn.Module) -> Compute:
    @torch.inference_mode()
    def compute(inputs: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))).numpy()

    return compute


def onnx_engine(model: torch.nn.Module, input_shape: tuple[int, ...], threads: int = 1) -> Compute:
    """``model`` exported to ONNX, checked against PyTorch (`write_checked`), and run by an ONNX Runtime session."""
    from parm.export.formats import ONNX, onnx_session, write_checked

    with tempfile.TemporaryDirectory(prefix="parm-engine-") as folder:
        path = Path(folder) / ONNX.filename
        write_checked(ONNX, model, tuple(input_shape), path)
        session = onnx_session(path.read_bytes(), threads)
    output, feed = [ONNX.output_name], ONNX.input_name

    def compute(inputs: np.ndarray) -> np.ndarray:
        return session.run(output, {feed: np.ascontiguousarray(inputs, dtype=np.float32)})[0]

    return compute
