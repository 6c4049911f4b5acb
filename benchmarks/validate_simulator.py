"""The simulator against the real system: p50 and p99 per mode, from two reports of the same scenario.

Run (the three commands make the inputs, side by side in one session):
  parm bench calibrate benchmarks/scenarios/standard.yaml --out benchmarks/profiles/frontend-2core.json
  parm bench latency benchmarks/scenarios/standard.yaml --out docs/latency/standard
  parm simulate benchmarks/scenarios/standard.yaml --out docs/latency/standard-simulated
  .venv/bin/python benchmarks/validate_simulator.py docs/latency/standard docs/latency/standard-simulated
Prints a Markdown table (the simulator's error per mode and statistic; the target is within 10%) and
writes it to REAL/validation.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

STATS = ("p50", "p99")
TOLERANCE = 0.10


def rows_by_mode(report: Path) -> dict[tuple[str, str], dict]:
    rows = json.loads((report / "results.json").read_text())["rows"]
    return {(row["variant"], row["mode"]): row for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("real", type=Path, help="report folder of `parm bench latency`")
    parser.add_argument("simulated", type=Path, help="report folder of `parm simulate` on the same scenario")
    args = parser.parse_args()
    real, simulated = rows_by_mode(args.real), rows_by_mode(args.simulated)
    lines = ["| variant | mode | " + " | ".join(f"real {s} (ms) | simulated {s} (ms) | error" for s in STATS)
             + " | within 10% |", "|---|---|" + "---:|---:|---:|" * len(STATS) + "---|"]
    for key in sorted(real.keys() & simulated.keys(), key=lambda k: (k[0], list(real).index(k))):
        cells, ok = [], True
        for stat in STATS:
            error = simulated[key][stat] / real[key][stat] - 1
            ok &= abs(error) <= TOLERANCE
            cells.append(f"{real[key][stat]:.2f} | {simulated[key][stat]:.2f} | {error:+.1%}")
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + f" | {'yes' if ok else 'no'} |")
    table = "\n".join(lines)
    (args.real / "validation.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
