"""The reference workload: figures a reader can compare between machines, measured the same way every time."""

from __future__ import annotations

import math

import pytest

from parm.bench import machine_speed as speed_module
from parm.bench.machine_speed import machine_speed


def test_the_figures_are_positive_times_of_each_part_of_the_workload() -> None:
    speed = machine_speed(rounds=1)
    assert all(math.isfinite(value) and value > 0 for value in (speed.python_ns, speed.copy_us, speed.syscall_us))
    assert speed.as_dict().keys() == {"python_ns", "copy_us", "syscall_us", "torch_cpu"}
    assert isinstance(speed.torch_cpu, str) and speed.torch_cpu  # AVX2, AVX512, DEFAULT, ...: what torch reports


def test_each_figure_is_the_median_of_its_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    loops = iter([5.0, 1.0, 3.0])
    monkeypatch.setattr(speed_module, "_loop", lambda: next(loops))
    monkeypatch.setattr(speed_module, "_copies", lambda source, target: 7.0)
    monkeypatch.setattr(speed_module, "_pipe_trips", lambda read, write: 2.0)
    speed = machine_speed(rounds=3)
    assert (speed.python_ns, speed.copy_us, speed.syscall_us) == (3.0, 7.0, 2.0)


def test_no_rounds_is_refused() -> None:
    with pytest.raises(ValueError, match="rounds must be >= 1"):
        machine_speed(rounds=0)
