"""Percentiles against known data, parm's comparisons, and the files a report writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from parm.bench.report import (AT_FRONTEND, LatencyRun, comparison_lines, latency_drift, percentiles, plot_sweep, summarize,
                               write_report)


def run(mode: str, latencies_ms: np.ndarray, label: str = "standard", answers: object = None) -> LatencyRun:
    answers = ["original"] * len(latencies_ms) if answers is None else answers
    return LatencyRun(mode, label, np.asarray(latencies_ms, dtype=float) / 1000, np.asarray(answers))


def test_percentiles_of_1_to_1000_ms_interpolate_linearly() -> None:
    stats = percentiles(np.arange(1, 1001) / 1000)
    expected = {"p50": 500.5, "p90": 900.1, "p99": 990.01, "p99.9": 999.001, "mean": 500.5}
    assert stats == pytest.approx(expected, rel=1e-12)


def test_percentiles_need_data() -> None:
    with pytest.raises(ValueError, match="no latencies"):
        percentiles(np.array([]))


def test_answers_are_stored_as_codes_and_counted() -> None:
    result = run("parm", np.ones(4), answers=["original", "reconstructed", "original", "default"])
    assert result.answers.dtype == np.int8
    assert result.shares() == {"original": 0.5, "reconstructed": 0.25, "default": 0.25, "error": 0.0}
    assert LatencyRun("parm", "x", np.ones(2), np.array([0, 1])).shares()["reconstructed"] == 0.5


def test_bad_runs_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown answer kinds"):
        run("parm", np.ones(2), answers=["original", "guessed"])
    with pytest.raises(ValueError, match="one latency and one answer per query"):
        run("parm", np.ones(3), answers=["original"])


def test_summary_compares_parm_with_each_baseline_of_its_variant() -> None:
    ms = np.arange(1, 1001, dtype=float)
    rows = summarize([run("parm", ms), run("none", 2 * ms), run("equal-resources", 4 * ms), run("none", ms, "other")])
    parm = rows[0]
    assert (parm["variant"], parm["mode"], parm["count"]) == ("standard", "parm", 1000)
    assert set(parm["vs"]) == {"none", "equal-resources"}
    assert parm["vs"]["none"] == pytest.approx(dict.fromkeys(("p50", "p90", "p99", "p99.9", "mean"), -0.5))
    assert parm["vs"]["equal-resources"]["p99.9"] == pytest.approx(-0.75)
    assert all("vs" not in row for row in rows[1:])
    assert comparison_lines(rows)[0] == "standard: parm vs none: p99.9 -50.0%, p99 -50.0%, p50 -50.0%, mean -50.0%"


def test_report_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    runs = [run(mode, rng.exponential(scale, 5000) + 1, f"rate={rate}")
            for rate in (100, 200) for mode, scale in (("parm", 1.0), ("none", 2.0 * rate / 100))]
    runs[0].metadata["wall_s"] = np.float64(1.5)
    paths = write_report(runs, tmp_path / "out", title="test", sweep_key="rate")
    assert [p.name for p in paths] == ["results.json", "results.md", "cdf.png", "latency_vs_rate.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    data = json.loads(paths[0].read_text())
    assert [(row["variant"], row["mode"]) for row in data["rows"]] == [
        ("rate=100", "parm"), ("rate=100", "none"), ("rate=200", "parm"), ("rate=200", "none")]
    assert data["runs"][0] == {"variant": "rate=100", "mode": "parm", **percentiles(runs[0].latencies), "wall_s": 1.5}
    assert len(data["comparisons"]) == 2 and data["comparisons"][1].startswith("rate=200: parm vs none: p99.9 -")
    markdown = paths[1].read_text()
    assert markdown.startswith("# test\n\n| variant | mode | queries | p50 (ms) |") and "error" not in markdown
    assert "- rate=100: parm vs none:" in markdown


def test_error_column_only_when_a_run_had_errors(tmp_path: Path) -> None:
    paths = write_report([run("none", np.ones(3), answers=["original", "error", "original"])], tmp_path, title="t")
    assert [p.name for p in paths] == ["results.json", "results.md", "cdf.png"]
    assert "| error |" in paths[1].read_text() and "33.33%" in paths[1].read_text()


def test_repeated_runs_are_summarised_by_the_median_of_each_statistic() -> None:
    runs = [LatencyRun("none", "v", np.full(10, value), ["original"] * 10) for value in (0.001, 0.005, 0.002)]
    (row,) = summarize(runs)
    assert row["repeats"] == 3 and row["count"] == 30
    assert row["p50"] == pytest.approx(2.0) and row["mean"] == pytest.approx(2.0)


def test_latency_measured_at_the_frontend_is_summarised_and_compared_beside_the_clients(tmp_path: Path) -> None:
    def real(mode: str, client_ms: float, frontend_ms: float) -> LatencyRun:
        result = run(mode, np.full(10, client_ms))
        return LatencyRun(mode, result.label, result.latencies, result.answers,
                          {AT_FRONTEND: percentiles(np.full(10, frontend_ms) / 1000)})

    runs = [real("parm", 4.0, 3.0), real("equal-resources", 5.0, 2.0)]
    rows = summarize(runs)
    assert rows[0][AT_FRONTEND]["p50"] == pytest.approx(3.0)
    assert rows[0]["vs"]["equal-resources"]["p50"] == pytest.approx(-0.2)
    assert rows[0]["vs_at_frontend"]["equal-resources"]["p50"] == pytest.approx(0.5)
    assert "standard: parm vs equal-resources (at the frontend): p99.9 +50.0%" in "\n".join(comparison_lines(rows))
    write_report(runs, tmp_path, title="t")
    assert "At the frontend" in (tmp_path / "results.md").read_text()
    assert AT_FRONTEND not in summarize([run("parm", np.ones(3))])[0]  # simulated runs have no frontend figures


def test_a_sweep_spanning_orders_of_magnitude_is_drawn_on_a_log_axis(tmp_path: Path, monkeypatch) -> None:
    """An overloaded point (seconds) beside quiet ones (milliseconds) would flatten them to zero on a linear axis."""
    import matplotlib.axes

    scales, set_yscale = [], matplotlib.axes.Axes.set_yscale

    def recorded(self, value, **kwargs):
        scales.append(value)
        return set_yscale(self, value, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_yscale", recorded)
    quiet = [{"variant": f"rate={rate}", "mode": "parm", "p50": 5.0, "p99.9": 40.0} for rate in (100, 200)]
    plot_sweep(quiet, "rate", tmp_path / "quiet.png", title="quiet")
    overloaded = quiet + [{"variant": "rate=300", "mode": "parm", "p50": 17_000.0, "p99.9": 148_000.0}]
    plot_sweep(overloaded, "rate", tmp_path / "overloaded.png", title="overloaded")
    assert scales == ["log"] and (tmp_path / "quiet.png").exists() and (tmp_path / "overloaded.png").exists()


def test_latency_drift_is_flat_for_a_long_tail_and_the_queue_s_growth_for_a_backlog() -> None:
    rng = np.random.default_rng(0)
    sent = np.sort(rng.uniform(0, 60, 6000))
    tail = rng.pareto(1.5, sent.size) * 0.01  # a heavy tail that does not grow
    assert abs(latency_drift(sent, tail)) < 0.001
    backlog = 0.005 + 0.5 * sent  # served at two thirds of the arrival rate: each second adds half a second
    assert latency_drift(sent[::-1], backlog[::-1]) == pytest.approx(0.5)  # any order: by send time
    assert latency_drift(sent[:9], backlog[:9]) is None  # too few queries to tell


def test_a_run_that_fell_behind_its_arrivals_is_named_in_the_report(tmp_path: Path) -> None:
    kept_up, behind = run("parm", np.ones(20)), run("none", np.ones(20))
    kept_up.metadata["latency_drift"], behind.metadata["latency_drift"] = 0.0001, 0.25
    markdown = write_report([kept_up, behind], tmp_path, title="t")[1].read_text()
    assert "Fell behind the arrivals" in markdown and "- standard none: latency grew 250 ms per second of load" in markdown
    assert "standard parm: latency grew" not in markdown
    assert "Fell behind" not in write_report([kept_up], tmp_path / "ok", title="t")[1].read_text()
