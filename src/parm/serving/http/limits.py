"""Limits on a request's head, enforced while it arrives: URL length, header count and header bytes.

Malformed HTTP is refused the same way (a JSON 400, then a lingering close that cannot lose the answer).

uvicorn's httptools protocol buffers a request line and headers of any size: three 100 MB headers
took a frontend from 285 to 607 MB. `BoundedHttpToolsProtocol` counts the head's bytes as they come
and answers 414 (URL too long) or 431 (headers too large or too many) with the protocol's JSON
error, then closes the connection, before the rest is buffered. Pass it as uvicorn's ``http``.
"""

from __future__ import annotations

import asyncio

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from parm.serving.http.responses import error_body

MAX_URL_BYTES = 8 * 1024
MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 * 1024
LINGER_S = 2.0  # how long a refused connection's remaining bytes are read and dropped before it is closed
_REASONS = {400: b"Bad Request", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a head over its limits."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over `MAX_URL_BYTES`, `MAX_HEADERS` or `MAX_HEAD_BYTES`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_head, self._head_bytes, self._refusal, self._discarding = True, 0, (431, ""), False

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the head counted first and a limit raised in a parser callback answered as such."""
        if self._discarding or self.transport.is_closing():
            return
        if self._in_head:
            end = data.find(b"\r\n\r\n")  # a terminator split across two reads is counted a few bytes long
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > MAX_HEAD_BYTES:
                return self._refuse(431, f"the request head exceeds {MAX_HEAD_BYTES} bytes")
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no websockets here: the request goes on as plain HTTP, as uvicorn's does without a library
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._refuse(*self._refusal)
            else:
                self.logger.debug("invalid HTTP request received: %s", exc)
                self._refuse(400, f"invalid HTTP request ({exc})")

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            self._refusal = (414, f"the URL exceeds {MAX_URL_BYTES} bytes")
            raise HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        if len(self.headers) > MAX_HEADERS:
            self._refusal = (431, f"the request has more than {MAX_HEADERS} headers")
            raise HeadTooLarge

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with a JSON error and end the connection; what the client still sends is discarded.

        Closing at once with unread bytes would reset the connection and could lose the answer, so the server
        sends its half-close and drops incoming bytes until the client closes, or `LINGER_S` has passed.
        """
        body = error_body(message)
        head = (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                % (status, _REASONS[status], len(body)))
        self.transport.write(head + body)
        self.transport.write_eof()
        self._discarding = True
        asyncio.get_running_loop().call_later(LINGER_S, self.transport.close)
