"""How parm's tail advantage depends on the background-load model, by simulation of the standard scenario.

Run: .venv/bin/python benchmarks/slowdown_sensitivity.py [--queries 100000]
For each slowdown factor (how much slower a call is while a shuffle touches its instance) and hit
probability (how many of those calls suffer), simulates parm and Equal-Resources on the same arrivals
and prints p50 and p99.9 of both and parm's change. The frontend's cost is held at the mean of the
scenario's measured profile, so that the policies, not this machine's scheduling noise, set the tail.
Writes runs/bench/slowdown_sensitivity/results.json.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from common import markdown_table

from parm.bench.report import percentiles
from parm.bench.scenario import load_scenario
from parm.bench.simulator import simulate
from parm.workload.service_time import ServiceTime

SLOWDOWNS, HITS = (3.0, 3.5, 5.0, 10.0), (1.0, 0.3, 0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", type=Path, default=Path("benchmarks/scenarios/standard.yaml"))
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/slowdown_sensitivity"))
    args = parser.parse_args()
    base = load_scenario(args.scenario, queries=args.queries)
    base = replace(base, frontend=ServiceTime("constant", mean_s=base.frontend_for("none").mean()))
    rows = []
    for slowdown in SLOWDOWNS:
        for hit in HITS:
            scenario = replace(base, shuffles=replace(base.shuffles, slowdown=slowdown, hit_probability=hit))
            er = percentiles(simulate(scenario, "equal-resources").latencies)
            parm = percentiles(simulate(scenario, "parm").latencies)
            rows.append({"slowdown": slowdown, "hit": hit, "er_p50": er["p50"], "er_p999": er["p99.9"],
                         "er_ratio": er["p99.9"] / er["p50"], "parm_p50": parm["p50"], "parm_p999": parm["p99.9"],
                         "change": f"{100 * (parm['p99.9'] / er['p99.9'] - 1):+.0f}%"})
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(markdown_table(rows, {"slowdown": "slowdown", "hit": "hit probability", "er_p50": "ER p50 (ms)",
                                "er_p999": "ER p99.9 (ms)", "er_ratio": "ER p99.9 / p50", "parm_p50": "parm p50 (ms)",
                                "parm_p999": "parm p99.9 (ms)", "change": "parm vs ER, p99.9"}))


if __name__ == "__main__":
    main()
