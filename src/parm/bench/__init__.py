"""Measuring parm serving: load generation over the real protocol (and, later, simulation)."""
