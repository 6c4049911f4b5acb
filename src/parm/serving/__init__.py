"""ParM serving: a coded prediction-serving frontend over the Open Inference Protocol.

The path of a query, one module each: `http` and `protocol` (parse, validate, answer),
`frontend` (the event loop), `coordinator` (group, encode, dispatch, decode, answer; no I/O),
`codec` (the trained code), `backends` (local processes or Ray actors running `instance`).
"""

from __future__ import annotations

from parm.serving.backends import build_backend
from parm.serving.coordinator import Coordinator, CoordinatorConfig
from parm.serving.deployment import Deployment, ServeOptions, build_deployment
from parm.serving.frontend import Frontend
from parm.serving.logs import configure_logging
from parm.serving.modes import MODES, plan_pools
from parm.serving.server import build_server

__all__ = [
    "MODES",
    "Coordinator",
    "CoordinatorConfig",
    "Deployment",
    "Frontend",
    "ServeOptions",
    "build_backend",
    "build_deployment",
    "build_server",
    "configure_logging",
    "plan_pools",
]
