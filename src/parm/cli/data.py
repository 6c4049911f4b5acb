"""``parm data``: fetch datasets into the cache and show their splits and checksums."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from parm.data import DATASETS, load_dataset
from parm.data.cache import default_cache_dir


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("data", help="fetch datasets and show their splits",
                                 description="Fetch datasets into the cache and show their splits and checksums.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser(
        "fetch",
        help="fetch and cache datasets, then print sizes and split checksums",
        description="Fetch datasets (once; later runs read the cache) and print each split's size and "
        "SHA-256: equal checksums mean byte-identical splits.",
    )
    fetch.add_argument("names", nargs="+", metavar="NAME", help="dataset names or local dataset folders")
    fetch.add_argument("--data-dir", type=Path, help="read the datasets from local files instead")
    fetch.add_argument("--cache-dir", type=Path, help="cache folder (default: $PARM_DATA or ~/.cache/parm/data)")
    fetch.add_argument("--refresh", action="store_true", help="fetch again even if the cache is valid")
    fetch.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fetch.set_defaults(run=run_fetch)
    listing = actions.add_parser("list", help="list the registered datasets")
    listing.set_defaults(run=run_list)


def run_fetch(args: argparse.Namespace) -> int:
    summaries = [
        load_dataset(name, data_dir=args.data_dir, cache_dir=args.cache_dir, refresh=args.refresh).summary()
        for name in args.names
    ]
    if args.json:
        print(json.dumps(summaries, indent=2))
        return 0
    print(f"cache: {args.cache_dir or default_cache_dir()}")
    print("| dataset | shape | outputs | train | val | test | dropped rows | test sha256 |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for s in summaries:
        sizes = s["sizes"]
        print(
            f"| {s['name']} | {'x'.join(map(str, s['input_shape']))} | {len(s['classes'])} | {sizes['train']} "
            f"| {sizes['val']} | {sizes['test']} | {s['dropped_rows']} | {s['checksums']['test']} |"
        )
    return 0


def run_list(args: argparse.Namespace) -> int:
    for name, info in DATASETS.items():
        print(f"{name:15s} {info.description}")
    return 0
