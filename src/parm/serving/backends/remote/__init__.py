"""Instances that are model servers at URLs, reached over the Open Inference Protocol (REST or gRPC)."""

from parm.serving.backends.remote.backend import Backoff, RemoteBackend
from parm.serving.backends.remote.cluster import Endpoint, load_cluster, order_endpoints, pool_sizes

__all__ = ["Backoff", "Endpoint", "RemoteBackend", "load_cluster", "order_endpoints", "pool_sizes"]
