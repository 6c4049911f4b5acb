"""Choosing a backend: how many processes host the local instances, and what Ray refuses."""

from __future__ import annotations

import pytest

from parm.serving.backends import build_backend


def test_the_local_backend_takes_a_process_count_and_ray_refuses_one() -> None:
    assert build_backend("local").processes is None  # one process per instance
    assert build_backend("local", processes=1).processes == 1
    with pytest.raises(ValueError, match="--backend local only"):
        build_backend("ray", processes=2)
    with pytest.raises(ValueError, match="at least 1"):
        build_backend("local", processes=0)
