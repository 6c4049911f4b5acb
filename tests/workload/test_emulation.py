"""Emulated instances draw the simulator's service times and slow down exactly while a shuffle touches them."""

from __future__ import annotations

import numpy as np

from parm.workload.emulation import Emulation
from parm.workload.service_time import SERVICE_STREAM, ServiceTime, stream_rng
from parm.workload.shuffles import ShuffleConfig, ShuffleSchedule

EXPONENTIAL = ServiceTime("exponential", mean_s=0.002)


def test_service_times_come_from_the_instance_stream_the_simulator_uses() -> None:
    clock = Emulation(EXPONENTIAL, epoch=0.0, seed=7).clock(instance=3)
    drawn = [clock.service_time(1, at=1.0) for _ in range(5)]
    expected = EXPONENTIAL.sample(stream_rng(7, SERVICE_STREAM, 3, 1), 5)  # the simulator draws in chunks
    np.testing.assert_array_equal(drawn, expected)


def test_the_slowdown_applies_inside_shuffle_intervals_only() -> None:
    constant = ServiceTime("constant", mean_s=0.002)
    emulation = Emulation(constant, intervals=((10.0, 20.0),), slowdown=4.0, epoch=100.0)
    clock = emulation.clock(instance=0)
    assert clock.service_time(1, at=105.0 - emulation.epoch) == 0.002  # before the transfer
    assert clock.service_time(1, at=115.0 - emulation.epoch) == 0.008  # during it
    assert clock.service_time(1, at=125.0 - emulation.epoch) == 0.002  # after it


def test_a_round_trip_through_the_instance_spec_keeps_the_schedule() -> None:
    schedule = ShuffleSchedule.draw(ShuffleConfig(count=2, slowdown=2.5, hit_probability=0.5), 6, 30.0, seed=1)
    emulation = Emulation.for_instance(EXPONENTIAL, schedule, 2, epoch=5.0, seed=9)
    assert Emulation.from_dict(emulation.to_dict()) == emulation
    assert [list(i) for i in emulation.intervals] == schedule.intervals(2)
