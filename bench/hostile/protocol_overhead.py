"""What the connection limits cost per request: uvicorn's httptools protocol against mlgit's subclass.

One keep-alive connection with an in-memory transport and an application that answers at once, on uvloop;
a typical tritonclient-sized head. CPU time per request, the minimum of 15 rounds (a shared machine's noise
only adds). Run pinned to one core: `taskset -c 1 python bench/hostile/protocol_overhead.py`.
Measured on the 2-core dev VM: 15.2 us/request without the limits, 16.8 us with them (an iris inference
request costs about 130 us of server CPU in all).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import uvicorn
import uvloop
from prometheus_client import CollectorRegistry
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from mlgit_serving.connections import ConnectionTable
from mlgit_serving.http_protocol import HeadLimits, limited_protocol

REQUEST = (
    b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: python-httpx/0.28\r\n"
    b"Accept: */*\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\r\n\r\n{}"
)


async def answer(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class NullTransport(asyncio.Transport):
    def write(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def per_request(protocol_class: type[asyncio.Protocol], requests: int) -> float:
    config = uvicorn.Config(answer, http=protocol_class, log_config=None, access_log=False, lifespan="off")
    config.load()
    protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(NullTransport())
    for _ in range(1000):  # warm up
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)
    started = time.process_time()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the application's task runs and answers
    elapsed = time.process_time() - started
    protocol.connection_lost(None)  # cancels its timers
    return elapsed / requests * 1e6


async def main() -> None:
    limited = limited_protocol(HeadLimits(32768, 10.0), ConnectionTable(2048, CollectorRegistry()))
    plain, ours = [], []
    for _ in range(15):
        plain.append(await per_request(HttpToolsProtocol, 20000))
        ours.append(await per_request(limited, 20000))
    print(f"uvicorn httptools: {min(plain):.2f} us/request; with limits: {min(ours):.2f} us/request")


if __name__ == "__main__":
    uvloop.run(main())
