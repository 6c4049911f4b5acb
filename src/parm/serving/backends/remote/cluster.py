"""The cluster file of the remote backend: which model server serves each instance, and how to reach it.

One entry per instance, in YAML (written by `parm export` as a template, read by `parm serve --backend remote
--instances-file`)::

    timeout_ms: 1000                     # a call that takes longer fails the instance (each entry may override)
    instances:
      - {pool: base,     url: http://127.0.0.1:9001, model: fashion-mnist-base-mlp}
      - {pool: base,     url: http://127.0.0.1:9002, model: fashion-mnist-base-mlp}
      - {pool: parity-0, url: grpc://127.0.0.1:9011, model: fashion-mnist-base-mlp-parity-0}

The URL's scheme picks the protocol: ``http://`` (Open Inference Protocol REST, with Triton's binary tensors
unless ``binary: false``) or ``grpc://`` (its gRPC API). ``input`` and ``output`` name the model's tensors
(default ``input`` and ``logits``, as parm's own servers and exports name them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from parm.serving.core.pools import Pool, parse_pool

SCHEMES = ("http", "grpc")
DEFAULT_TIMEOUT_MS = 1000.0
_KEYS = {"pool", "url", "model", "version", "input", "output", "binary", "timeout_ms"}


@dataclass(frozen=True)
class Endpoint:
    """One instance on a model server: its pool, where it is, which model there, and how to call it."""

    pool: Pool
    url: str
    model: str
    version: str | None = None
    input: str = "input"
    output: str = "logits"
    binary: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_MS / 1000

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the server."""
        parts = urlsplit(self.url)
        return parts.hostname or "", parts.port or 0  # a loaded endpoint always has a port

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"pool": str(self.pool), "url": self.url, "model": self.model}
        if self.version is not None:
            doc["version"] = self.version
        if (self.input, self.output) != ("input", "logits"):
            doc |= {"input": self.input, "output": self.output}
        if not self.binary:
            doc["binary"] = False
        return doc | {"timeout_ms": self.timeout_s * 1000}


def load_cluster(path: str | Path) -> list[Endpoint]:
    """The endpoints of a cluster file, in file order; a wrong entry is refused naming its place and the fix."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no cluster file at {path}: write one (see `parm export`, which writes a template)") \
            from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    return parse_cluster(doc, str(path))


def parse_cluster(doc: Any, where: str = "cluster file") -> list[Endpoint]:
    """`load_cluster` on an already parsed document."""
    if not isinstance(doc, dict) or not isinstance(doc.get("instances"), list) or not doc["instances"]:
        raise ValueError(f"{where}: expected a mapping with a non-empty list `instances:` (one entry per instance)")
    unknown = set(doc) - {"instances", "timeout_ms"}
    if unknown:
        raise ValueError(f"{where}: unknown top-level key(s) {sorted(unknown)}; known: instances, timeout_ms")
    default_timeout = _timeout(doc.get("timeout_ms", DEFAULT_TIMEOUT_MS), f"{where}: timeout_ms")
    return [_endpoint(entry, f"{where}: instances[{i}]", default_timeout) for i, entry in enumerate(doc["instances"])]


def order_endpoints(endpoints: list[Endpoint]) -> list[Endpoint]:
    """The endpoints in instance-id order: base pool first, then parity 0, 1, ...; file order within a pool."""
    return sorted(endpoints, key=lambda e: (e.pool.parity is not None, e.pool.parity or 0))


def pool_sizes(endpoints: list[Endpoint]) -> dict[Pool, int]:
    """How many instances each pool has."""
    sizes: dict[Pool, int] = {}
    for endpoint in endpoints:
        sizes[endpoint.pool] = sizes.get(endpoint.pool, 0) + 1
    return sizes


def dump_cluster(endpoints: list[Endpoint], header: str = "") -> str:
    """A cluster file for ``endpoints`` (``header``: comment lines put on top)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    body = yaml.safe_dump({"instances": [e.to_dict() for e in endpoints]}, sort_keys=False, default_flow_style=None,
                          width=120)
    return "\n".join([*lines, body])


def _endpoint(entry: Any, where: str, default_timeout: float) -> Endpoint:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with pool, url and model, got {entry!r}")
    missing = [key for key in ("pool", "url", "model") if key not in entry]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)} (each instance needs pool, url and model)")
    unknown = set(entry) - _KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {', '.join(sorted(_KEYS))}")
    url = str(entry["url"])
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname or parts.port is None:
        raise ValueError(f"{where}: url must be http://HOST:PORT or grpc://HOST:PORT, got {url!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"{where}: url must name a server only (http://HOST:PORT), not a path, got {url!r}")
    try:
        pool = parse_pool(str(entry["pool"]))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    binary = entry.get("binary", True)
    if not isinstance(binary, bool):
        raise ValueError(f"{where}: binary must be true or false, got {binary!r}")
    version = entry.get("version")
    return Endpoint(pool=pool, url=url.rstrip("/"), model=str(entry["model"]),
                    version=None if version is None else str(version), input=str(entry.get("input", "input")),
                    output=str(entry.get("output", "logits")), binary=binary,
                    timeout_s=_timeout(entry.get("timeout_ms", default_timeout * 1000), f"{where}: timeout_ms"))


def _timeout(value: Any, where: str) -> float:
    """Milliseconds, as seconds; refused unless a finite number above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{where} must be a number of milliseconds above 0, got {value!r}")
    return float(value) / 1000
