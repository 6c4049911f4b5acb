"""The two model formats a Triton model repository takes from parm: ONNX and TorchScript.

Each format writes a model with a dynamic batch dimension, runs what it wrote the way a model server would (ONNX
Runtime, or libtorch through ``torch.jit.load``), and so checks the export against PyTorch before anyone serves it.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from parm.serving.runtime.deployment import INPUT_NAME, OUTPUT_NAME

if TYPE_CHECKING:
    import onnxruntime

# The largest |exported - PyTorch| on a logit that an export may show, as a share of the batch's largest |logit| (at
# least 1): float32 kernels that sum in another order differ by a few units in the last place, so a trained model's
# logits of 20-30 differ by 1-2e-5 in absolute terms (the demo's models under ONNX Runtime), 1e-6 of their scale.
TOLERANCE = 1e-5
ONNX_OPSET = 17  # pinned, not the exporter's newest: ONNX Runtime has run it since 1.12, so older Tritons load it
CHECK_BATCHES = (1, 5)  # a batch dimension baked in at export time fails the check at one of these


class ExportError(ValueError):
    """An export refused or failed: the message names the fix (a ValueError, so `parm` prints it as one line)."""


Runner = Callable[[Path, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Format:
    """How one format is written and run, and what Triton needs to know of it (platform, file, tensor names)."""

    name: str
    platform: str
    filename: str
    input_name: str
    output_name: str
    requires: tuple[str, ...]
    write: Callable[[nn.Module, torch.Tensor, Path], None]
    run: Runner

    def require(self) -> None:
        """Refuse at once, naming the fix, when a package the format writes or checks with is not installed."""
        missing = [package for package in self.requires if importlib.util.find_spec(package) is None]
        if missing:
            raise ExportError(f"--format {self.name} needs {' and '.join(missing)}, which is not installed: "
                              "pip install 'parm-serving[export]'")


def _write_onnx(model: nn.Module, sample: torch.Tensor, path: Path) -> None:
    # The torch.export-based exporter (dynamo=True, torch's default) needs onnxscript; the TorchScript-based one
    # needs nothing more and handles the zoo's layers (Linear, Conv, BatchNorm, pooling), so parm uses it (torch 2.13
    # warns that it is deprecated).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (sample,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                          opset_version=ONNX_OPSET, dynamo=False)
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def onnx_session(model: Path | bytes, threads: int = 1) -> onnxruntime.InferenceSession:
    """An ONNX Runtime session of ``model`` (a file, or its bytes) on the CPU, with ``threads`` intra-op threads and
    one inter-op thread, as a model server runs it."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                        providers=["CPUExecutionProvider"])


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    (logits,) = onnx_session(path).run([OUTPUT_NAME], {INPUT_NAME: x})
    return logits


def _write_torchscript(model: nn.Module, sample: torch.Tensor, path: Path) -> None:
    # Triton's PyTorch backend runs TorchScript only; torch 2.13 warns that torch.jit is deprecated.
    # Tracing (not scripting) takes any nn.Module, user factories included; the check runs other batch sizes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.trace(model, (sample,)), str(path))


def _run_torchscript(path: Path, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location="cpu")
    with torch.inference_mode():
        return module(torch.from_numpy(x)).numpy()


ONNX = Format("onnx", "onnxruntime_onnx", "model.onnx", INPUT_NAME, OUTPUT_NAME, ("onnx", "onnxruntime"),
              _write_onnx, _run_onnx)
# Triton's PyTorch backend finds a TorchScript model's tensors by position, named `<name>__<index>`
# (docs: "PyTorch Naming Convention"), which every Triton release accepts.
TORCHSCRIPT = Format("torchscript", "pytorch_libtorch", "model.pt", f"{INPUT_NAME}__0", f"{OUTPUT_NAME}__0", (),
                     _write_torchscript, _run_torchscript)
FORMATS = {fmt.name: fmt for fmt in (ONNX, TORCHSCRIPT)}


def get_format(name: str) -> Format:
    """The format called ``name``, refused with the known ones otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ExportError(f"unknown export format {name!r}: use one of {', '.join(FORMATS)}") from None


def write_checked(fmt: Format, model: nn.Module, input_shape: tuple[int, ...], path: Path, *, seed: int = 0) -> float:
    """Write ``model`` to ``path`` in ``fmt`` and return the largest |exported - PyTorch| logit difference over
    seeded random batches of `CHECK_BATCHES` sizes, relative to each batch's largest |logit| (at least 1); refuse an
    export beyond `TOLERANCE`."""
    generator = torch.Generator().manual_seed(seed)
    batches = [torch.rand((n, *input_shape), generator=generator) for n in CHECK_BATCHES]
    model = model.eval()
    fmt.write(model, batches[-1], path)
    with torch.inference_mode():
        expected = [model(x).numpy() for x in batches]
    diff = max(relative_diff(fmt.run(path, x.numpy()), want) for x, want in zip(batches, expected))
    if not diff <= TOLERANCE:  # also refuses NaN
        raise ExportError(f"{path} differs from PyTorch by {diff:.3g} of the largest logit (more than {TOLERANCE:g}) "
                          "on a random batch: "
                          "the model uses an operation this format does not reproduce; try the other --format")
    return diff


def relative_diff(got: np.ndarray, want: np.ndarray) -> float:
    """The largest |got - want| over the largest |want| (at least 1): `TOLERANCE`'s measure."""
    return float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want))))
