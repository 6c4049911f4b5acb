"""The converted-dataset cache: one compressed ``.npz`` per dataset plus a manifest with its SHA-256.

A cache file whose checksum, format version or contents do not match its manifest is treated as
absent (and rebuilt by the caller), never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from parm.data.dataset import LabeledArrays, SourceData

CACHE_VERSION = 1  # the manifest's task is optional (classification when absent)


def default_cache_dir() -> Path:
    """``$PARM_DATA``, else ``$XDG_CACHE_HOME/parm/data``, else ``~/.cache/parm/data``."""
    if env := os.environ.get("PARM_DATA"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "parm" / "data"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    return cache_dir / f"{key}.npz", cache_dir / f"{key}.json"


def save_source(cache_dir: Path, key: str, source: SourceData) -> Path:
    """Write ``source`` atomically (temp file, then rename) and record its checksum."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    data_path, manifest_path = _paths(cache_dir, key)
    arrays = {"train_x": source.train.x, "train_y": source.train.y}
    if source.test is not None:
        arrays.update(test_x=source.test.x, test_y=source.test.y)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".npz.tmp")
    os.close(fd)
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    manifest = {
        "version": CACHE_VERSION,
        "sha256": file_sha256(Path(tmp)),
        "classes": list(source.classes),
        "dropped_rows": source.dropped_rows,
        "description": source.description,
        "task": source.task,
    }
    os.replace(tmp, data_path)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return data_path


def cache_path(cache_dir: Path, key: str) -> Path:
    """The data file of ``key``'s cache entry (its manifest lies beside it)."""
    return _paths(cache_dir, key)[0]


def is_cached(cache_dir: Path, key: str) -> bool:
    """Whether any file of ``key``'s entry is on disk: with `load_source` returning None, the entry is damaged
    (a missing entry is the first fetch, a damaged one is worth a word to the user)."""
    return any(path.exists() for path in _paths(cache_dir, key))


def load_source(cache_dir: Path, key: str) -> SourceData | None:
    """The cached source, or None when it is missing or damaged in any way (`is_cached` tells which)."""
    data_path, manifest_path = _paths(cache_dir, key)
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("version") != CACHE_VERSION or file_sha256(data_path) != manifest["sha256"]:
            return None
        with np.load(data_path, allow_pickle=False) as arrays:
            train = LabeledArrays(arrays["train_x"], arrays["train_y"])
            test = LabeledArrays(arrays["test_x"], arrays["test_y"]) if "test_x" in arrays else None
        return SourceData(
            train=train,
            test=test,
            classes=tuple(manifest["classes"]),
            dropped_rows=int(manifest["dropped_rows"]),
            description=manifest["description"],
            task=manifest.get("task", "classification"),
        )
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None
