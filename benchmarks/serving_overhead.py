"""The frontend's own cost: parm mode against no redundancy, with no-op instances and no slowdowns.

Run: .venv/bin/python benchmarks/serving_overhead.py [--rounds 10] [--queries 200]
Starts two `parm serve --noop` processes (mode parm with the sum code at k = 2, and mode none) on
loopback, then, alternating between them in rounds so that both see the same machine noise:
- latency: one client, one query at a time; the median per mode and their difference;
- throughput: 64 concurrent keep-alive clients; answered queries per second of one frontend process.
Prints a Markdown table and writes runs/bench/serving_overhead/results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import markdown_table

from parm.bench.loadgen import closed_loop, infer_request
from parm.bench.placeholder import INPUT_SHAPE, placeholder_run

MODEL = "bench"


def start_server(run: Path, mode: str, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "parm", "serve", str(run), "--noop", "--mode", mode, "--port", str(port),
         "--name", MODEL, "--log-format", "text"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    for line in process.stdout:  # `parm serve` prints one line once every instance is up
        if "ready at" in line:
            return process
    raise RuntimeError(f"parm serve --mode {mode} exited before it was ready")


async def measure(addresses: dict[str, str], rounds: int, queries: int) -> dict[str, dict]:
    rng = np.random.default_rng(0)
    requests = [infer_request(MODEL, "input", rng.random((1, *INPUT_SHAPE), dtype=np.float32)) for _ in range(64)]
    latency = {mode: [] for mode in addresses}
    rates = {mode: [] for mode in addresses}
    for _ in range(rounds):
        for mode, address in addresses.items():
            samples = await closed_loop(address, requests, concurrency=1, total=queries)
            latency[mode] += [s.latency for s in samples if s.status == 200]
            start = time.perf_counter()
            samples = await closed_loop(address, requests, concurrency=64, total=10 * queries)
            rates[mode].append(sum(s.status == 200 for s in samples) / (time.perf_counter() - start))
    return {mode: {"median_ms": 1000 * statistics.median(latency[mode]),
                   "p99_ms": 1000 * float(np.percentile(latency[mode], 99)),
                   "queries_per_s": statistics.median(rates[mode]), "latency_samples": len(latency[mode])}
            for mode in addresses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200, help="sequential queries per mode and round")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/serving_overhead"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = placeholder_run(tmp)
        servers = {"parm": start_server(run, "parm", 18731), "none": start_server(run, "none", 18732)}
        try:
            results = asyncio.run(measure({"parm": "127.0.0.1:18731", "none": "127.0.0.1:18732"},
                                          args.rounds, args.queries))
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=60)
    results["parm"]["median_minus_none_ms"] = results["parm"]["median_ms"] - results["none"]["median_ms"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = [{"mode": mode, **figures} for mode, figures in results.items()]
    print(markdown_table(rows, {"mode": "mode", "median_ms": "median latency (ms)", "p99_ms": "p99 (ms)",
                                "queries_per_s": "throughput (queries/s, 64 clients)"}))
    print(f"parm median - none median: {results['parm']['median_minus_none_ms']:+.3f} ms")


if __name__ == "__main__":
    main()
