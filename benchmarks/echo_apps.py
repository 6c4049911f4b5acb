"""Bare ASGI echo servers of an Open Inference Protocol query: the floor a Python HTTP frontend can reach.

Serve one with `uvicorn echo_apps:orjson_app` (or granian) from this folder; `frontend_throughput.py` does.
Each app reads the whole body, parses it into a float32 array as any server must (a JSON body's ``data``
list, or Triton's binary tensor layout: a JSON header of ``Inference-Header-Content-Length`` bytes,
then the raw tensor), and answers fixed logits as JSON: 10 of them for a Fashion-MNIST-size query, 1,000
for a paper-size one (3 x 224 x 224). ``json_app`` uses the standard `json`, ``orjson_app`` orjson.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import orjson

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

HEADER_LENGTH = b"inference-header-content-length"
PAPER_INPUTS = 3 * 224 * 224
LOGITS = {n: np.random.default_rng(n).standard_normal(n).astype(np.float32).tolist() for n in (10, 1000)}


def classes_for(inputs: int) -> int:
    """How many logits the queried model has: 1,000 for a paper-size query, else 10."""
    return 1000 if inputs == PAPER_INPUTS else 10


def parse_query(body: bytes, header_length: int | None, loads: Callable[[bytes], Any]) -> np.ndarray:
    """The query's input as a flat float32 array, from a JSON body or a binary tensor one."""
    if header_length is None:
        return np.asarray(loads(body)["inputs"][0]["data"], dtype=np.float32)
    loads(body[:header_length])  # the JSON header: parsed, as a server must, though the echo needs nothing in it
    return np.frombuffer(body, dtype="<f4", offset=header_length)


def answer(model: str, classes: int) -> dict[str, Any]:
    """An Open Inference Protocol response with ``classes`` fixed FP32 logits."""
    return {"model_name": model, "outputs": [{"name": "logits", "datatype": "FP32", "shape": [1, classes],
                                              "data": LOGITS[classes]}]}


async def read_body(receive: Receive) -> bytes:
    """The whole request body."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge start-up and shutdown: the echo holds no state."""
    while True:
        message = await receive()
        kind = message["type"].rsplit(".", 1)[1]  # startup or shutdown
        await send({"type": f"lifespan.{kind}.complete"})
        if kind == "shutdown":
            return


async def echo(scope: Scope, receive: Receive, send: Send, loads: Callable[[bytes], Any],
               dumps: Callable[[Any], bytes]) -> None:
    """Serve one request (or the lifespan) with the given JSON codec."""
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    header_length = next((int(value) for name, value in scope["headers"] if name == HEADER_LENGTH), None)
    x = parse_query(await read_body(receive), header_length, loads)
    parts = scope["path"].split("/")  # /v2/models/NAME/infer
    body = dumps(answer(parts[3] if len(parts) > 4 else "echo", classes_for(x.size)))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


async def json_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The echo with the standard `json`."""
    await echo(scope, receive, send, json.loads, _json_dumps)


async def orjson_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The echo with orjson."""
    await echo(scope, receive, send, orjson.loads, orjson.dumps)
