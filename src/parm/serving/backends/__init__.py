"""Where instances run: `local` (child processes, the default) or `ray` (actors on a Ray cluster)."""

from __future__ import annotations

from parm.serving.backends.base import Backend, BackendEvents

BACKENDS = ("local", "ray")


def build_backend(name: str, address: str | None = None) -> Backend:
    """A backend by name; Ray is imported only when asked for."""
    if name == "local":
        from parm.serving.backends.local import LocalBackend

        return LocalBackend()
    if name == "ray":
        from parm.serving.backends.ray import RayBackend

        return RayBackend(address)
    raise ValueError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "BackendEvents", "build_backend"]
