"""Where instances run: `local` (child processes, the default), `ray` (actors on a Ray cluster) or `remote`
(model servers at URLs that run already: Triton, KServe, `parm instance`)."""

from __future__ import annotations

from collections.abc import Sequence

from parm.serving.backends.base import Backend, BackendEvents
from parm.serving.backends.remote.cluster import Endpoint

BACKENDS = ("local", "ray", "remote")


def build_backend(name: str, address: str | None = None, processes: int | None = None,
                  endpoints: Sequence[Endpoint] | None = None) -> Backend:
    """A backend by name; Ray is imported only when asked for. ``processes``: how many processes host the
    local backend's instances (None: one each); ``endpoints``: the remote backend's servers, in instance order."""
    if (endpoints is not None) != (name == "remote"):
        raise ValueError("--instances-file goes with --backend remote, and --backend remote needs it: "
                         "the cluster file lists the model servers (see `parm export`, which writes a template)")
    if name == "remote":
        from parm.serving.backends.remote import RemoteBackend

        return RemoteBackend(endpoints)
    if name == "local":
        from parm.serving.backends.local import LocalBackend

        return LocalBackend(processes=processes)
    if processes is not None:
        raise ValueError("--instance-processes applies to --backend local only: Ray places its actors itself")
    if name == "ray":
        from parm.serving.backends.ray import RayBackend

        return RayBackend(address)
    raise ValueError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "BackendEvents", "build_backend"]
