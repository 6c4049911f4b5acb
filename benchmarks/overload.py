"""Goodput under overload: `parm serve --max-pending 64` at 8 connections, then at 256 that never back off.

Run: .venv/bin/python benchmarks/overload.py [--run RUN] [--seconds 15] [--rounds 2]
Starts `parm serve RUN --max-pending 64` in its own process, then, round after round, drives it from this
process with closed-loop keep-alive connections that resend the moment an answer (or a 503) comes back:
8 connections, then 256, each for ``--seconds``. Prints and writes (runs/bench/overload/results.json and
.md) queries answered 200 per second (goodput), 503s per second, the p50/p99 latency of the answered
queries at the client and at the frontend (receipt to answer), and the server's resident memory.
Without a trained run it serves a placeholder with no-op instances.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from parm.bench.loadgen import closed_loop, infer_request
from parm.bench.placeholder import INPUT_SHAPE, placeholder_run

DEMO_RUN = Path("runs/parity/fashion-mnist-base-mlp-sum-k2-r1")
MODEL = "overload"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the instance workers), in MB."""
    pids = [pid, *map(int, subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split())]
    total = 0
    for each in pids:
        status = Path(f"/proc/{each}/status")
        if status.exists():
            total += next((int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmRSS")), 0)
    return total / 1024


async def drive(address: str, requests: list[bytes], connections: int, seconds: float) -> dict:
    """``connections`` closed-loop clients for about ``seconds``: the number sent is sized from a first pass."""
    probe = await closed_loop(address, requests, concurrency=connections, total=connections * 20)
    elapsed = max(s.sent + s.latency for s in probe)
    total = int(len(probe) / elapsed * seconds)
    started = time.perf_counter()
    samples = await closed_loop(address, requests, concurrency=connections, total=max(total, connections))
    wall = time.perf_counter() - started
    ok = [s for s in samples if s.status == 200]
    latency = np.array([s.latency for s in ok]) * 1000
    frontend = np.array([s.at_frontend for s in ok if np.isfinite(s.at_frontend)]) * 1000
    return {"connections": connections, "seconds": wall, "sent": len(samples),
            "goodput_per_s": len(ok) / wall, "rejected_per_s": sum(s.status == 503 for s in samples) / wall,
            "other_status": sorted({s.status for s in samples} - {200, 503}),
            "client_p50_ms": float(np.percentile(latency, 50)), "client_p99_ms": float(np.percentile(latency, 99)),
            "frontend_p50_ms": float(np.percentile(frontend, 50)) if frontend.size else None,
            "frontend_p99_ms": float(np.percentile(frontend, 99)) if frontend.size else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=DEMO_RUN, help="run folder to serve (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per measurement (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of 8 then 256 connections (default: %(default)s)")
    parser.add_argument("--max-pending", type=int, default=64)
    parser.add_argument("--connections", default="8,256", help="connection counts per round (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/overload"))
    args = parser.parse_args()
    noop = not args.run.exists()
    run = placeholder_run(tempfile.mkdtemp(prefix="parm-overload-")) if noop else args.run
    port = free_port()
    command = [sys.executable, "-m", "parm", "serve", str(run), "--port", str(port), "--name", MODEL,
               "--max-pending", str(args.max_pending), "--log-format", "text", *(["--noop"] if noop else [])]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for line in server.stdout:  # `parm serve` prints its ready line once it takes queries
            if "ready at" in line:
                break
        x = np.random.default_rng(0).random((1, *INPUT_SHAPE), dtype=np.float32)
        requests = [infer_request(MODEL, "input", x)]
        address, rows = f"127.0.0.1:{port}", []
        start_rss = rss_mb(server.pid)
        for round_ in range(1, args.rounds + 1):
            for connections in map(int, args.connections.split(",")):
                row = asyncio.run(drive(address, requests, connections, args.seconds))
                rows.append({"round": round_, **row, "rss_mb": rss_mb(server.pid)})
                print(json.dumps(rows[-1]), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
    lines = [f"`parm serve {run} --max-pending {args.max_pending}`{' --noop' if noop else ''}; server RSS at start "
             f"{start_rss:.0f} MB", "",
             "| round | connections | goodput (q/s) | 503/s | client p50 / p99 (ms) | frontend p50 / p99 (ms) | RSS (MB) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        at = f"{row['frontend_p50_ms']:.1f} / {row['frontend_p99_ms']:.1f}" if row["frontend_p50_ms"] else "—"
        lines.append(f"| {row['round']} | {row['connections']} | {row['goodput_per_s']:,.0f} | {row['rejected_per_s']:,.0f} "
                     f"| {row['client_p50_ms']:.1f} / {row['client_p99_ms']:.1f} | {at} | {row['rss_mb']:.0f} |")
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"run": str(run), "noop": noop, "start_rss_mb": start_rss,
                                                       "rows": rows}, indent=2) + "\n")
    (args.out / "results.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
