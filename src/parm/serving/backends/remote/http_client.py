"""An Open Inference Protocol REST client for one model server, on one persistent aiohttp connection.

Batches go out as Triton's binary tensor extension (a JSON header, then the raw float32 bytes) and ask for
the output back in binary, unless the endpoint says ``binary: false`` (then both ways are JSON). A reused
connection that the server had closed while idle (keep-alive timeouts differ between servers) is retried
once on a fresh one; every other failure is an `InstanceError`.
"""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import orjson

from parm.serving.backends.remote.client import InstanceError, probe_timeout
from parm.serving.backends.remote.cluster import Endpoint

HEADER_LENGTH = "Inference-Header-Content-Length"


class HttpClient:
    """`InstanceClient` over REST: ``connects`` connections opened, ``retries`` calls sent again."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.connects = self.retries = 0
        base = endpoint.url + f"/v2/models/{endpoint.model}"
        if endpoint.version is not None:
            base += f"/versions/{endpoint.version}"
        self._infer_url, self._model_ready_url = base + "/infer", base + "/ready"
        self._server_ready_url = endpoint.url + "/v2/health/ready"
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            trace = aiohttp.TraceConfig()
            trace.on_connection_create_end.append(self._connected)
            # One connection: the coordinator keeps one batch in flight per instance.
            connector = aiohttp.TCPConnector(limit=1, force_close=False, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(connector=connector, trace_configs=[trace], auto_decompress=False,
                                                  skip_auto_headers=("User-Agent",))
        return self._session

    async def _connected(self, *_: object) -> None:
        self.connects += 1

    async def infer(self, inputs: np.ndarray) -> np.ndarray:
        body, headers = self._request(np.ascontiguousarray(inputs, dtype=np.float32))
        timeout = aiohttp.ClientTimeout(total=self.endpoint.timeout_s)
        for attempt in (0, 1):
            try:
                async with self._open().post(self._infer_url, data=body, headers=headers, timeout=timeout) as response:
                    payload = await response.read()
                    return self._outputs(response.status, response.headers, payload, len(inputs))
            except aiohttp.ServerDisconnectedError as err:
                if attempt == 0:  # an idle connection the server had closed: once more on a fresh one
                    self.retries += 1
                    continue
                raise InstanceError(f"{self.endpoint.url} closed the connection: {err}") from None
            except (TimeoutError, asyncio.TimeoutError):
                raise InstanceError(f"{self.endpoint.url} did not answer within {self.endpoint.timeout_s * 1000:.0f} ms"
                                    ) from None
            except aiohttp.ClientError as err:
                raise InstanceError(f"{self.endpoint.url}: {type(err).__name__}: {err}") from None
        raise AssertionError("unreachable")

    async def ready(self) -> bool:
        timeout = aiohttp.ClientTimeout(total=probe_timeout(self.endpoint))
        try:
            session = self._open()
            for url in (self._server_ready_url, self._model_ready_url):
                async with session.get(url, timeout=timeout) as response:
                    await response.read()
                    if response.status != 200:
                        return False
        except (aiohttp.ClientError, TimeoutError, asyncio.TimeoutError):
            return False
        return True

    async def close(self) -> None:
        session, self._session = self._session, None  # a call made meanwhile opens a fresh session
        if session is not None:
            await session.close()

    def _request(self, inputs: np.ndarray) -> tuple[bytes, dict[str, str]]:
        """The body and headers of an infer request for ``inputs``."""
        tensor = {"name": self.endpoint.input, "shape": list(inputs.shape), "datatype": "FP32"}
        output = {"name": self.endpoint.output}
        if not self.endpoint.binary:
            doc = {"inputs": [tensor | {"data": inputs.ravel()}], "outputs": [output]}
            return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), {"Content-Type": "application/json"}
        data = inputs.tobytes()
        doc = {"inputs": [tensor | {"parameters": {"binary_data_size": len(data)}}],
               "outputs": [output | {"parameters": {"binary_data": True}}]}
        header = orjson.dumps(doc)
        return header + data, {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(header))}

    def _outputs(self, status: int, headers: object, payload: bytes, rows: int) -> np.ndarray:
        """The output array of a response, or `InstanceError` saying what was wrong with it."""
        where = self.endpoint.url
        if status != 200:
            raise InstanceError(f"{where} answered HTTP {status}: {_error_message(payload)}")
        length = headers.get(HEADER_LENGTH)  # type: ignore[attr-defined]
        try:
            doc = orjson.loads(payload[:int(length)] if length is not None else payload)
            item = next(o for o in doc["outputs"] if o["name"] == self.endpoint.output)
            shape = tuple(int(d) for d in item["shape"])
            size = (item.get("parameters") or {}).get("binary_data_size")  # KServe writes null
            if size is not None:
                start = int(length) + _binary_offset(doc["outputs"], item)
                array = np.frombuffer(payload, dtype=_numpy_type(item["datatype"]), count=int(np.prod(shape)),
                                      offset=start)
            else:
                array = np.asarray(item["data"], dtype=_numpy_type(item["datatype"]))
            outputs = array.reshape(shape).astype(np.float32, copy=True)
        except (ValueError, KeyError, TypeError, AttributeError, StopIteration) as err:
            raise InstanceError(f"{where} answered without a usable output {self.endpoint.output!r}: "
                                f"{type(err).__name__}: {err}") from None
        if len(outputs) != rows:
            raise InstanceError(f"{where} answered {len(outputs)} rows for a batch of {rows}")
        return outputs


_NUMPY_TYPES = {"FP32": np.float32, "FP16": np.float16, "FP64": np.float64}


def _numpy_type(datatype: str) -> type:
    try:
        return _NUMPY_TYPES[datatype]
    except KeyError:
        raise ValueError(f"output datatype {datatype} is not a floating-point type") from None


def _binary_offset(outputs: list[dict], item: dict) -> int:
    """Where ``item``'s bytes start in the binary part: after those of the binary outputs before it."""
    offset = 0
    for output in outputs:
        if output is item:
            return offset
        offset += int((output.get("parameters") or {}).get("binary_data_size", 0))
    raise ValueError("output not in the response")


def _error_message(payload: bytes) -> str:
    try:
        return str(orjson.loads(payload)["error"])[:300]
    except (ValueError, KeyError, TypeError):
        return payload[:300].decode("utf-8", "replace") or "(empty body)"
