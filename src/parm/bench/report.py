"""Latency results for people: percentiles, parm against its baselines, a Markdown table and the paper's plots.

Shared by `parm simulate` and `parm bench latency`: both turn each (variant, mode) run into a `LatencyRun`, so
their reports read the same and can be compared line by line. Percentiles use numpy's default (linear
interpolation between the two nearest ranks), so p99.9 of 20,000 queries is well defined without rounding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from parm.serving.core.coordinator import ANSWER_KINDS

# How each query was answered: the coordinator's three kinds, and "error" for a request the real system failed.
KINDS = (*ANSWER_KINDS, "error")
KIND_CODES = {kind: code for code, kind in enumerate(KINDS)}
STATS = ("p50", "p90", "p99", "p99.9", "mean")
# A real run's metadata key for its latency stats measured at the frontend (receipt to answer: the paper's measure
# point), beside the client's (send to answer), which includes the HTTP hop and the client.
AT_FRONTEND = "at_frontend"
_LEVELS = (50.0, 90.0, 99.0, 99.9)
# A run whose latency grew by this much per second of load fell behind its arrivals: 10 ms/s adds 0.7 s over a
# 70 s run, where a system that keeps up stays flat however long its tail (an episode of slow calls moves the median
# of a tenth of the run only if it lasts half of it).
FELL_BEHIND = 0.01


@dataclass(frozen=True)
class LatencyRun:
    """One mode's measured (or simulated) queries: latency in seconds and answer kind per query.

    ``answers`` may be given as kind names or as codes into `KINDS`; it is stored as codes (int8), so a
    million queries cost a megabyte. ``label`` names the scenario variant (``rate=270`` in a sweep). Every
    query counts in the percentiles, failed requests ("error") included.
    """

    mode: str
    label: str
    latencies: np.ndarray
    answers: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    trace: Any = field(default=None, compare=False, repr=False)  # a real run's `parm.bench.fit.RunTrace`, not reported

    def __post_init__(self) -> None:
        latencies = np.asarray(self.latencies, dtype=np.float64)
        answers = np.asarray(self.answers)
        if answers.dtype.kind in "USO":
            unknown = sorted(set(np.unique(answers).tolist()) - set(KINDS))
            if unknown:
                raise ValueError(f"unknown answer kinds {unknown}: use {', '.join(KINDS)}")
            answers = np.array([KIND_CODES[kind] for kind in answers.tolist()], dtype=np.int8)
        if latencies.shape != answers.shape or latencies.ndim != 1:
            raise ValueError(f"need one latency and one answer per query, got {latencies.shape} and {answers.shape}")
        object.__setattr__(self, "latencies", latencies)
        object.__setattr__(self, "answers", answers.astype(np.int8, copy=False))

    def shares(self) -> dict[str, float]:
        """The fraction of queries answered each way, per kind in `KINDS`."""
        counts = np.bincount(self.answers, minlength=len(KINDS)) / max(len(self.answers), 1)
        return {kind: float(share) for kind, share in zip(KINDS, counts, strict=True)}


def percentiles(latencies: np.ndarray) -> dict[str, float]:
    """p50, p90, p99, p99.9 and mean of latencies in seconds, in milliseconds (numpy's linear interpolation)."""
    latencies = np.asarray(latencies, dtype=np.float64)
    if latencies.size == 0:
        raise ValueError("no latencies to summarise")
    values = np.percentile(latencies, _LEVELS) * 1000
    stats = {stat: float(value) for stat, value in zip(STATS[:-1], values, strict=True)}
    return {**stats, "mean": float(latencies.mean() * 1000)}


def latency_drift(sent: np.ndarray, latencies: np.ndarray) -> float | None:
    """How fast latency grew over a run: the median latency of the last tenth of its queries (by send time) less the
    first tenth's, per second of send time between them. About 0 where the system keeps up with its arrivals, a
    positive slope where a queue grows (0.5: each second of load added half a second of waiting); None for fewer
    than 10 queries. Percentiles of a run that fell behind measure its queue, not its tail."""
    sent, latencies = np.asarray(sent, dtype=np.float64), np.asarray(latencies, dtype=np.float64)
    order = np.argsort(sent, kind="stable")
    sent, latencies = sent[order], latencies[order]
    tenth = len(sent) // 10
    if tenth == 0:
        return None
    span = np.median(sent[-tenth:]) - np.median(sent[:tenth])
    if span <= 0:
        return None
    return float((np.median(latencies[-tenth:]) - np.median(latencies[:tenth])) / span)


def behind_lines(runs: Sequence[LatencyRun]) -> list[str]:
    """One line per run whose ``latency_drift`` (metadata) says it fell behind its arrivals."""
    return [f"{run.label} {run.mode}: latency grew {1000 * drift:,.0f} ms per second of load" for run in runs
            if (drift := run.metadata.get("latency_drift")) is not None and drift >= FELL_BEHIND]


def summarize(runs: Sequence[LatencyRun]) -> list[dict[str, Any]]:
    """One row per variant and mode: count, latency stats (ms), answer shares; parm rows also carry ``vs``.

    Repeated runs of one variant and mode (``--repeats``) are summarised as the paper does: each statistic is
    the median of the runs' values. ``vs`` maps each baseline mode of the same variant to parm's relative
    change per stat (-0.4: 40% lower). Real runs also get the same at the frontend (`AT_FRONTEND`, ``vs_at_frontend``).
    """
    rows = []
    for group in _groups(runs):
        stats = [percentiles(run.latencies) for run in group]
        pooled = _pooled(group)
        row = {"variant": pooled.label, "mode": pooled.mode, "count": int(pooled.latencies.size),
               "repeats": len(group), **_medians(stats), **pooled.shares()}
        if all(AT_FRONTEND in run.metadata for run in group):
            row[AT_FRONTEND] = _medians([run.metadata[AT_FRONTEND] for run in group])
        rows.append(row)
    for row in rows:
        if row["mode"] != "parm":
            continue
        baselines = [other for other in rows if other["variant"] == row["variant"] and other["mode"] != "parm"]
        row["vs"] = {other["mode"]: _changes(row, other) for other in baselines}
        if AT_FRONTEND in row:
            row["vs_at_frontend"] = {other["mode"]: _changes(row[AT_FRONTEND], other[AT_FRONTEND])
                                     for other in baselines if AT_FRONTEND in other}
    return rows


def _medians(stats: Sequence[dict[str, float]]) -> dict[str, float]:
    return {stat: float(np.median([s[stat] for s in stats])) for stat in STATS}


def _changes(stats: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    return {stat: stats[stat] / baseline[stat] - 1 for stat in STATS}


def comparison_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per parm row and baseline, tail first: ``rate=270: parm vs none: p99.9 -41.2%, p99 ..., p50 +3.1%``."""
    lines = []
    for row in rows:
        for key, where in (("vs", ""), ("vs_at_frontend", " (at the frontend)")):
            for baseline, change in row.get(key, {}).items():
                changes = ", ".join(f"{stat} {change[stat]:+.1%}" for stat in ("p99.9", "p99", "p50", "mean"))
                lines.append(f"{row['variant']}: parm vs {baseline}{where}: {changes}")
    return lines


def results_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of the rows; the error column appears only when some run had errors."""
    kinds = [kind for kind in KINDS if kind != "error" or any(row["error"] for row in rows)]
    header = ["variant", "mode", "queries", *(f"{stat} (ms)" for stat in STATS), *kinds]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["variant"], row["mode"], str(row["count"]), *(f"{row[stat]:.2f}" for stat in STATS),
                 *(f"{100 * row[kind]:.2f}%" for kind in kinds)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def frontend_table(rows: Sequence[dict[str, Any]]) -> str:
    """The latency stats measured at the frontend (receipt to answer), for the rows that have them; "" if none."""
    rows = [row for row in rows if AT_FRONTEND in row]
    if not rows:
        return ""
    lines = ["| variant | mode | " + " | ".join(f"{stat} (ms)" for stat in STATS) + " |", "|" + "---|" * (2 + len(STATS))]
    lines += ["| " + " | ".join([row["variant"], row["mode"], *(f"{row[AT_FRONTEND][stat]:.2f}" for stat in STATS)]) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"


def write_report(runs: Sequence[LatencyRun], out_dir: str | Path, *, title: str,
                 sweep_key: str | None = None) -> list[Path]:
    """results.json, results.md, cdf.png and, for a sweep, latency_vs_<sweep_key>.png; returns the paths written."""
    if not runs:
        raise ValueError("no runs to report")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = summarize(runs)
    lines = comparison_lines(rows)
    paths = [out_dir / "results.json", out_dir / "results.md", out_dir / "cdf.png"]
    paths[0].write_text(json.dumps({"title": title, "units": {"latency": "ms", "shares": "fraction of queries"},
                                    "rows": rows, "comparisons": lines,
                                    "runs": [{"variant": r.label, "mode": r.mode, **percentiles(r.latencies), **r.metadata}
                                             for r in runs]},
                                   indent=2, default=_jsonable) + "\n")
    at_frontend = frontend_table(rows)
    behind = behind_lines(runs)
    paths[1].write_text(f"# {title}\n\n" + results_table(rows)
                        + (f"\nAt the frontend (receipt to answer; the table above is client send to answer):\n\n{at_frontend}"
                           if at_frontend else "")
                        + "".join(f"\n- {line}" for line in lines) + ("\n" if lines else "")
                        + ("\nFell behind the arrivals (a growing queue: these runs' percentiles measure it, not the tail):\n\n"
                           + "".join(f"- {line}\n" for line in behind) if behind else ""))
    first = runs[0].label
    swept = len({run.label for run in runs}) > 1
    plot_cdf([_pooled(group) for group in _groups(runs) if group[0].label == first], paths[2], title=title + (f", {first}" if swept else ""))
    if sweep_key is not None:
        paths.append(out_dir / f"latency_vs_{sweep_key}.png")
        plot_sweep(rows, sweep_key, paths[-1], title=title)
    return paths


def _groups(runs: Sequence[LatencyRun]) -> list[list[LatencyRun]]:
    """Runs grouped by (variant, mode), in order of first appearance."""
    groups: dict[tuple[str, str], list[LatencyRun]] = {}
    for run in runs:
        groups.setdefault((run.label, run.mode), []).append(run)
    return list(groups.values())


def _pooled(group: Sequence[LatencyRun]) -> LatencyRun:
    """One variant and mode's repeats as one run (for answer shares and plots)."""
    if len(group) == 1:
        return group[0]
    return LatencyRun(group[0].mode, group[0].label, np.concatenate([run.latencies for run in group]),
                      np.concatenate([run.answers for run in group]), group[0].metadata)


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays in metadata, as JSON."""
    return value.tolist() if isinstance(value, np.ndarray | np.generic) else str(value)


# ---- plots ------------------------------------------------------------------------------------------


@contextmanager
def _figure(path: Path, panels: int, title: str) -> Iterator[Any]:
    """A row of ``panels`` axes, saved to ``path`` when the block ends (matplotlib's Agg backend, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=(max(6.4, 5.2 * panels), 4.2), squeeze=False)
    try:
        yield axes[0]
        fig.suptitle(title, fontsize="medium", wrap=True)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def _cdf_points(latencies: np.ndarray, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Sorted latencies (ms) and the fraction of queries at least that slow, thinned to a few hundred points
    spread evenly over the body and logarithmically into the tail (a million points per line would drown the plot)."""
    ordered = np.sort(latencies) * 1000
    n = ordered.size
    body = np.linspace(0, n - 1, points)
    tail = n - np.logspace(np.log10(n), 0, points)
    index = np.unique(np.clip(np.concatenate([body, tail]).astype(np.int64), 0, n - 1))
    return ordered[index], 1 - index / n


def plot_cdf(runs: Sequence[LatencyRun], path: Path, *, title: str) -> None:
    """Latency CDF per mode on log-x, and beside it 1 - CDF on log-y, where the tail lives."""
    with _figure(path, 2, title) as (body, tail):
        for run in runs:
            x, above = _cdf_points(run.latencies)
            body.plot(x, 1 - above, label=run.mode)
            tail.plot(x, above, label=run.mode)
        body.set(xscale="log", xlabel="latency (ms)", ylabel="CDF", ylim=(0, 1.01))
        tail.set(xscale="log", yscale="log", xlabel="latency (ms)", ylabel="1 - CDF (fraction slower)")
        for ax in (body, tail):
            _plain_log_ticks(ax.xaxis)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()


def _plain_log_ticks(axis: Any) -> None:
    """Log-axis tick labels as plain numbers (2, 5, 10, 1,000), not powers of ten (2x10^0, 1e+03)."""
    from matplotlib.ticker import FuncFormatter, LogFormatter

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


SWEEP_LOG_SPAN = 30  # a sweep whose latencies span more than this factor is drawn on a log axis


def plot_sweep(rows: Sequence[dict[str, Any]], sweep_key: str, path: Path, *, title: str) -> None:
    """Paper Fig. 12: median (dashed) and p99.9 (solid) per mode against the swept value; on a log axis when one
    variant's latencies dwarf another's (an overloaded point would flatten every other to zero)."""
    variants = list(dict.fromkeys(row["variant"] for row in rows))
    values = [variant.partition("=")[2] for variant in variants]
    numeric = all(_is_number(value) for value in values)
    position = {variant: float(value) if numeric else i
                for i, (variant, value) in enumerate(zip(variants, values, strict=True))}
    with _figure(path, 1, title) as (ax,):
        for i, mode in enumerate(dict.fromkeys(row["mode"] for row in rows)):
            mine = [row for row in rows if row["mode"] == mode]
            x = [position[row["variant"]] for row in mine]
            color = f"C{i}"
            ax.plot(x, [row["p99.9"] for row in mine], marker="o", color=color, label=f"{mode} p99.9")
            ax.plot(x, [row["p50"] for row in mine], marker=".", linestyle="--", color=color, label=f"{mode} median")
        if not numeric:
            ax.set_xticks(range(len(values)), values)
        latencies = [row[stat] for row in rows for stat in ("p50", "p99.9") if row[stat] > 0]
        if latencies and max(latencies) > SWEEP_LOG_SPAN * min(latencies):
            ax.set_yscale("log")
            _plain_log_ticks(ax.yaxis)
        ax.set(xlabel=sweep_key, ylabel="latency (ms)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
