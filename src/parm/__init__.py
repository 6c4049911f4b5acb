"""parm: learning-based coded computation for resilient, low-tail-latency inference."""

__version__ = "0.1.0"
