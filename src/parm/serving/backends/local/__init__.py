"""Instances in OS processes on this machine: the backend (`backend`), the process behind it
(`worker`, ``python -m parm.serving.backends.local.worker``) and the frames between them (`wire`)."""

from parm.serving.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
