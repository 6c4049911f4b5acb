"""Admission of requests before their bodies are read: a bounded number inside, a bounded line, a time budget.

Rejecting a request after reading and parsing it costs more than serving it, and clients that are turned away
come straight back: under overload a frontend that rejects late spends its event loop on rejections. Here a
request waits, costing nothing, in a first-come line until a place is free; a line that is full, or a wait
longer than the budget, is a 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from parm.serving.http.model import Overloaded


class Admission:
    """At most ``limit`` requests inside, ``line`` more waiting, none waiting longer than ``wait_s`` seconds.

    A freed place passes straight to the first in line (a future and a timer each, no task: waiting must stay
    cheaper than serving).
    """

    def __init__(self, limit: int, line: int, wait_s: float, on_reject: Callable[[], None] = lambda: None) -> None:
        if limit < 1 or line < 0 or wait_s < 0:
            raise ValueError(f"admission needs limit >= 1, line >= 0 and wait_s >= 0, got {limit}, {line}, {wait_s}")
        self.limit, self.line, self.wait_s, self.on_reject = limit, line, wait_s, on_reject
        self.inside = 0
        self._waiting: deque[asyncio.Future[bool]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def __call__(self) -> Admission:
        """``async with admission():`` holds a place for the block: at once when one is free, else after a wait in
        line; else `Overloaded`. The admission is its own context manager (a generator-based one costs a few
        microseconds per request, a share of a query's time)."""
        return self

    async def __aenter__(self) -> None:
        if self.inside < self.limit and not self._waiting:
            self.inside += 1
        else:
            await self._wait()

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    async def _wait(self) -> None:
        if len(self._waiting) >= self.line:
            self.on_reject()
            raise Overloaded(f"{self.limit} requests are being served and {self.waiting} are waiting: retry later")
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[bool] = loop.create_future()
        self._waiting.append(turn)
        timer = loop.call_later(self.wait_s, self._expire, turn)
        try:
            handed = await turn
        except asyncio.CancelledError:  # the client went away while waiting: give back a place handed to it
            if turn.done() and not turn.cancelled() and turn.result():
                self._release()
            elif turn in self._waiting:
                self._waiting.remove(turn)
            raise
        finally:
            timer.cancel()
        if not handed:
            self.on_reject()
            raise Overloaded(f"no place was free within {self.wait_s:g} s: retry later")

    def _expire(self, turn: asyncio.Future[bool]) -> None:
        if not turn.done():
            self._waiting.remove(turn)
            turn.set_result(False)

    def _release(self) -> None:
        """The place passes to the first in line that still waits, or becomes free."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(True)
                return
        self.inside -= 1
