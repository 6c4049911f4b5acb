"""Real shuffles: an instance's endpoint pushes bulk data to another's and gets it all back, over loopback."""

from __future__ import annotations

import socket

from parm.workload.shuffle_traffic import RealShuffles, start_endpoint
from parm.workload.shuffles import ShuffleConfig


def test_a_push_moves_the_bytes_to_the_peer_and_back() -> None:
    a, b = start_endpoint(), start_endpoint()
    with socket.create_connection(("127.0.0.1", a)) as control:
        control.sendall(b"PUSH 127.0.0.1 %d %d\n" % (b, 3 * 2**20 + 17))  # not a whole number of chunks
        assert control.makefile("rb").readline() == b"DONE\n"


def test_a_shuffle_moves_a_random_size_between_a_random_pair_and_back() -> None:
    ports = {0: start_endpoint(), 1: start_endpoint(), 2: start_endpoint()}
    shuffles = RealShuffles(ShuffleConfig(count=2, min_mb=1, max_mb=2, mode="real"), list(ports), ports.get, seed=0)
    moved = shuffles.transfer_once()
    assert 2 <= moved <= 4 and shuffles.moved_mb == moved  # 1 to 2 MB, there and back


def test_shuffle_threads_stop_when_the_block_ends() -> None:
    ports = {0: start_endpoint(), 1: start_endpoint()}
    shuffles = RealShuffles(ShuffleConfig(count=2, min_mb=1, max_mb=1, mode="real"), list(ports), ports.get, seed=1)
    with shuffles:
        assert all(thread.is_alive() for thread in shuffles.threads)
    assert len(shuffles.threads) == 2 and not any(thread.is_alive() for thread in shuffles.threads)
