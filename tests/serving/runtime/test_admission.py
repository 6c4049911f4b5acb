"""Admission before the body: a bounded number inside, a bounded first-come line, a time budget for the wait."""

from __future__ import annotations

import asyncio

import pytest

from parm.serving.http.model import Overloaded
from parm.serving.runtime.admission import Admission


def test_a_full_house_lines_requests_up_in_order_and_turns_away_past_the_line() -> None:
    rejected = []
    admission = Admission(limit=1, line=2, wait_s=60.0, on_reject=lambda: rejected.append(1))
    order: list[str] = []

    async def request(name: str, release: asyncio.Event | None = None) -> None:
        async with admission():
            order.append(name)
            if release is not None:
                await release.wait()

    async def scenario() -> None:
        release = asyncio.Event()
        first = asyncio.create_task(request("first", release))
        await asyncio.sleep(0)  # let it take the place (a scheduling step, not a timed wait)
        waiters = [asyncio.create_task(request(name)) for name in ("second", "third")]
        await asyncio.sleep(0)
        assert admission.waiting == 2 and order == ["first"]
        with pytest.raises(Overloaded, match="waiting"):
            await request("fourth")  # the line is full: turned away at once, unread
        release.set()
        await asyncio.gather(first, *waiters)

    asyncio.run(scenario())
    assert order == ["first", "second", "third"] and rejected == [1] and admission.waiting == 0


def test_a_wait_past_the_budget_is_overloaded_and_frees_its_place_in_line() -> None:
    admission = Admission(limit=1, line=4, wait_s=0.01)

    async def scenario() -> None:
        async with admission():
            with pytest.raises(Overloaded, match="within 0.01 s"):
                async with admission():
                    pass
            assert admission.waiting == 0
        async with admission():  # the place came back
            pass

    asyncio.run(scenario())


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="limit >= 1"):
        Admission(limit=0, line=1, wait_s=1.0)
