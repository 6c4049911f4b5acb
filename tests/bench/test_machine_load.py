"""The machine's core time by kind over a block, from /proc/stat readings."""

from __future__ import annotations

from pathlib import Path

import pytest

from parm.bench.machine_load import KINDS, CpuShares, cpu_times

BEFORE = "cpu  1000 0 500 8000 100 0 400 0 0 0\ncpu0 500 0 250 4000 50 0 200 0 0 0\nintr 123\n"
AFTER = "cpu  1300 0 600 8400 100 0 600 0 0 0\ncpu0 650 0 300 4200 50 0 300 0 0 0\nintr 456\n"


def test_shares_are_each_kind_s_part_of_the_ticks_spent_in_the_block(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(BEFORE)
    with CpuShares(stat) as cpu:
        stat.write_text(AFTER)  # 1,000 ticks later: 300 user, 100 system, 400 idle, 200 softirq
    assert cpu.shares == {"user": 0.3, "nice": 0.0, "system": 0.1, "idle": 0.4, "iowait": 0.0, "irq": 0.0,
                          "softirq": 0.2, "steal": 0.0, "busy": 0.6}
    assert set(KINDS) <= set(cpu.shares)


def test_no_proc_stat_means_no_shares_not_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-stat"
    assert cpu_times(missing) is None
    with CpuShares(missing) as cpu:
        pass
    assert cpu.shares == {}


def test_this_machine_s_counters_only_grow() -> None:
    first = cpu_times()
    if first is None:
        pytest.skip("no /proc/stat here")
    assert len(first) == len(KINDS) and all(value >= 0 for value in first)
    assert all(after >= before for before, after in zip(first, cpu_times()))
