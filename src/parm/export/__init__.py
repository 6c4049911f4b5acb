"""`parm export`: a trained run as a Triton model repository (ONNX or TorchScript), checked against PyTorch,
with a cluster file template for parm's remote backend."""

from parm.export.formats import FORMATS, TOLERANCE, ExportError, Format, get_format
from parm.export.repository import CLUSTER_NAME, CONFIG_NAME, MAX_BATCH_SIZE, ExportedModel, export_run, plan_models

__all__ = ["CLUSTER_NAME", "CONFIG_NAME", "FORMATS", "MAX_BATCH_SIZE", "TOLERANCE", "ExportError", "ExportedModel",
           "Format", "export_run", "get_format", "plan_models"]
