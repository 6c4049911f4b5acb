"""Where instances run: `local` (child processes, the default) or `ray` (actors on a Ray cluster)."""

from __future__ import annotations

from parm.serving.backends.base import Backend, BackendEvents

BACKENDS = ("local", "ray")


def build_backend(name: str, address: str | None = None, processes: int | None = None) -> Backend:
    """A backend by name; Ray is imported only when asked for. ``processes``: how many processes host the
    local backend's instances (None: one each)."""
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
