"""``parm testbed``: hosts in network namespaces on shaped links, on this machine, inside a sandbox of their own."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "testbed", help="a multi-host testbed on this machine (network namespaces, shaped links; needs root)",
        description="Hosts on one machine: one network namespace per host, each on a link shaped with tc to a "
        "bridge, all inside a sandbox (unshare --net --mount --pid) that the kernel removes when the command "
        "ends, however it ends: its addresses exist nowhere else and nothing is left behind.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="build a small testbed, time a transfer on its links, serve queries through it, tear it down",
        description="Build HOSTS hosts on links of RATE, time one 16 MB transfer between two hosts and back, "
        "serve QUERIES queries through a coded frontend whose no-op instances run on the hosts while shuffles of "
        "128-256 MB load the links, tear everything down, and print the report as JSON.",
        epilog="example: parm testbed check --hosts 3 --rate-mbit 200 --queries 200")
    check.add_argument("--hosts", type=int, default=3, help="hosts (default: %(default)s)")
    check.add_argument("--rate-mbit", type=float, default=200.0, help="each link's rate, each way (default: 200)")
    check.add_argument("--qdisc", choices=("pfifo", "bfifo", "tbf"), default="pfifo",
                       help="the links' queue: pfifo/bfifo under an htb shaper, or tbf (default: %(default)s)")
    check.add_argument("--limit", type=int, default=1000,
                       help="queue length: packets (pfifo), bytes (bfifo) or ms (tbf) (default: %(default)s)")
    check.add_argument("--queries", type=int, default=200, help="queries to serve (default: %(default)s)")
    check.add_argument("--out", type=Path, help="also write the report here")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from parm.testbed import sandbox

    if not sandbox.inside():
        reason = sandbox.unavailable()
        if reason is not None:
            raise ValueError(f"the testbed cannot run here: {reason}")
        return subprocess.run(sandbox.sandboxed(["-m", "parm", *sys.argv[1:]])).returncode
    from parm.testbed.check import CheckOptions, run_check
    from parm.workload.links import LinkSpec

    options = CheckOptions(hosts=args.hosts, link=LinkSpec(args.rate_mbit, args.qdisc, args.limit),
                           queries=args.queries)
    text = json.dumps(run_check(options), indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0
