"""ParM serving: a coded prediction-serving frontend over the Open Inference Protocol.

The path of a query, by package: `http` (the front door: parse, check, answer over HTTP),
`runtime` (the deployment served and the event loop, `frontend`, with its metrics), `core` (no
I/O: `pools`, the `coordinator` that groups, encodes, dispatches, decodes and answers, and the
`codec`), `instance` (what an instance runs) and `backends` (where instances run: local processes
or Ray actors).
"""

from __future__ import annotations

from parm.serving.backends import build_backend
from parm.serving.core.codec import codec_for
from parm.serving.core.coordinator import Coordinator, CoordinatorConfig
from parm.serving.core.pools import BASE_POOL, MODES, Pool, parity_pool, plan_pools
from parm.serving.http.server import build_server
from parm.serving.runtime.deployment import Deployment, ServeOptions, build_deployment
from parm.serving.runtime.frontend import Frontend
from parm.serving.runtime.logs import configure_logging

__all__ = [
    "BASE_POOL",
    "MODES",
    "Coordinator",
    "CoordinatorConfig",
    "Deployment",
    "Frontend",
    "Pool",
    "ServeOptions",
    "build_backend",
    "build_deployment",
    "build_server",
    "codec_for",
    "configure_logging",
    "parity_pool",
    "plan_pools",
]
