"""Service times of emulated instances: drawn from a measured profile, or from a textbook law.

A profile (like ``shared/profiles/resnet18-224-h200.json``) gives quantiles of one instance call's
time per batch size; draws interpolate its inverse CDF, so emulated instances reproduce a real
model's distribution. ``exponential`` and ``constant`` exist for closed-form checks (M/M/c).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DISTRIBUTIONS = ("profile", "exponential", "constant")
# Independent random streams spawned from a scenario's seed (arrivals and shuffles use the seed itself).
# Not default_rng([seed, i]): numpy pads short seeds with zeros, so [seed, 0] would be the arrivals' stream.
SERVICE_STREAM, FAULT_STREAM, SLOWDOWN_STREAM, FRONTEND_STREAM, DELAY_STREAM, EPISODE_STREAM = 1, 2, 3, 4, 5, 6


def stream_rng(seed: int, *key: int) -> np.random.Generator:
    """The generator of stream ``key`` under ``seed``: an instance's service times are (SERVICE_STREAM,
    instance, batch size), in the simulator and in emulated instances alike."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class ServiceTime:
    """A per-call service-time law in seconds, for any batch size in the profile."""

    distribution: str = "profile"
    quantiles: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] | None = None  # batch -> (probs, seconds)
    mean_s: float = 0.002
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown service-time distribution {self.distribution!r}: use one of {DISTRIBUTIONS}")
        if self.distribution == "profile" and not self.quantiles:
            raise ValueError("a profile service time needs quantiles: give `profile: PATH` in the scenario")

    @classmethod
    def from_profile(cls, path: str | Path, scale: float = 1.0, *, mode: str | None = None) -> ServiceTime:
        """Read a profile JSON with ``batches: {B: {quantiles_ms: {p: ms}}}``; a profile measured per serving
        mode (``modes: {mode: {batches: ...}}``, from `parm bench calibrate`) gives ``mode``'s entry."""
        data = json.loads(Path(path).read_text())
        if mode is not None:
            data = data["modes"][mode]
        quantiles = {int(batch): _points(entry["quantiles_ms"]) for batch, entry in data["batches"].items()}
        return cls("profile", quantiles, scale=scale)

    @classmethod
    def from_quantiles_ms(cls, quantiles_ms: dict[str, float]) -> ServiceTime:
        """One law for every batch size from its quantiles (``{"0.5": ms, ...}``, as profiles write them)."""
        return cls("profile", {1: _points(quantiles_ms)})

    def sample(self, rng: np.random.Generator, size: int, batch_size: int = 1) -> np.ndarray:
        """``size`` service times (seconds) for calls of ``batch_size`` queries."""
        if self.distribution == "constant":
            return np.full(size, self.mean_s * self.scale)
        if self.distribution == "exponential":
            return rng.exponential(self.mean_s, size) * self.scale
        probs, seconds = self.quantiles[self._nearest_batch(batch_size)]
        return np.interp(rng.random(size), probs, seconds) * self.scale

    def mean(self, batch_size: int = 1) -> float:
        """The law's mean in seconds (for sizing loads and checking the simulator)."""
        if self.distribution != "profile":
            return self.mean_s * self.scale
        probs, seconds = self.quantiles[self._nearest_batch(batch_size)]
        return float(np.trapezoid(seconds, probs)) * self.scale

    def _nearest_batch(self, batch_size: int) -> int:
        batches = sorted(self.quantiles)
        return min((b for b in batches if b >= batch_size), default=batches[-1])

    def to_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, "mean_s": self.mean_s, "scale": self.scale,
                "quantiles": {str(b): [list(p), list(s)] for b, (p, s) in (self.quantiles or {}).items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceTime:
        quantiles = {int(b): (tuple(p), tuple(s)) for b, (p, s) in data.get("quantiles", {}).items()} or None
        return cls(data["distribution"], quantiles, data["mean_s"], data["scale"])


def _points(quantiles_ms: dict[str, float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(probabilities, seconds), ascending, from a profile's ``{"p": ms}``."""
    points = sorted((float(p), float(ms) / 1000) for p, ms in quantiles_ms.items())
    return tuple(p for p, _ in points), tuple(s for _, s in points)
