"""The simulator against the real system: p50, p99 and p99.9 per mode (client, and frontend where both have it) and
the reconstructed share, from two reports of the same scenario.

Run on loopback (the three commands make the inputs, side by side in one session):
  parm bench calibrate benchmarks/scenarios/standard.yaml --out benchmarks/profiles/frontend-2core.json
  parm bench latency benchmarks/scenarios/standard.yaml --out docs/latency/standard
  parm simulate benchmarks/scenarios/standard.yaml --out docs/latency/standard-simulated
  .venv/bin/python benchmarks/validate_simulator.py docs/latency/standard docs/latency/standard-simulated
On the testbed, with a model fitted on another scenario (`parm testbed fit`, then `parm simulate SCENARIO --fit`):
  .venv/bin/python benchmarks/validate_simulator.py docs/testbed/load-sweep-run1 docs/testbed/load-sweep-predicted \
      --tolerance 0.15 --share-points 3
Prints a Markdown table (the simulator's error per mode and statistic, and whether every one is within the
tolerance) and writes it to SIMULATED/validation.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STATS = ("p50", "p99", "p99.9")


def rows_by_mode(report: Path) -> dict[tuple[str, str], dict]:
    rows = json.loads((report / "results.json").read_text())["rows"]
    return {(row["variant"], row["mode"]): row for row in rows}


def validation_table(real: dict, simulated: dict, tolerance: float, share_points: float) -> str:
    """One line per variant, mode and measure point (client, frontend): real, simulated and error per statistic."""
    lines = ["| variant | mode | at | " + " | ".join(f"{s} real / sim (ms), error" for s in STATS)
             + " | reconstructed real / sim | within |", "|---|---|---|" + "---|" * len(STATS) + "---|---|"]
    keys = sorted(real.keys() & simulated.keys(), key=lambda k: (list(real).index(k)))
    for key in keys:
        share = (100 * real[key]["reconstructed"], 100 * simulated[key]["reconstructed"])
        share_ok = abs(share[1] - share[0]) <= share_points
        for at in ("client", "frontend"):
            r, s = (real[key], simulated[key]) if at == "client" else (real[key].get("at_frontend"),
                                                                        simulated[key].get("at_frontend"))
            if r is None or s is None:
                continue
            errors = [s[stat] / r[stat] - 1 for stat in STATS]
            ok = all(abs(e) <= tolerance for e in errors) and share_ok
            cells = [f"{r[stat]:.2f} / {s[stat]:.2f}, {e:+.1%}" for stat, e in zip(STATS, errors, strict=True)]
            lines.append(f"| {key[0]} | {key[1]} | {at} | " + " | ".join(cells)
                         + f" | {share[0]:.1f}% / {share[1]:.1f}% | {'yes' if ok else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("real", type=Path, help="report folder of `parm bench latency`")
    parser.add_argument("simulated", type=Path, help="report folder of `parm simulate` on the same scenario")
    parser.add_argument("--tolerance", type=float, default=0.10, help="relative error allowed per statistic "
                        "(default: %(default)s)")
    parser.add_argument("--share-points", type=float, default=100.0, help="percentage points the reconstructed "
                        "share may differ by (default: not checked)")
    args = parser.parse_args()
    table = validation_table(rows_by_mode(args.real), rows_by_mode(args.simulated), args.tolerance,
                             args.share_points)
    (args.simulated / "validation.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
