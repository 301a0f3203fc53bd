"""uvicorn's httptools protocol with a size cap and a deadline on each request's head, and a connection cap.

uvicorn caps neither the size nor the arrival time of a request's head, and httptools buffers a header
until it is complete, copying the buffer on every read: three 300 MiB headers were answered 200 at a
994 MB peak, and a client sending its head a byte at a time kept its connection for minutes. Here the
head's bytes are counted as they arrive (431 past max_header_bytes, before httptools buffers more than
one read beyond it), the whole head must arrive within header_timeout_seconds of the connection opening
or of its first byte after a response (idle time between requests is the keep-alive timeout's), and every
connection passes through the ConnectionTable's cap.

A request's body can also be taken whole (BodyBuffer, the ASGI scope extension "mlgit.body"): uvicorn hands
a body over in 64 KiB pieces, pausing reading, waking the request's task and copying at each one, and the
application joins them (another copy): a 1.5 MB binary tensor body paid about 25 wake-ups and three copies.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from .connections import ConnectionTable

logger = logging.getLogger(__name__)

# After a 431 the rest of the head is still arriving: read and drop it this long before closing, so that
# the client reads the answer instead of a connection reset.
LINGER_SECONDS = 2.0
_HEADER_LINE_OVERHEAD = len(b": \r\n")
# Requests parsed while an earlier one on the same connection is still answered (HTTP/1.1 pipelining, which
# browsers and proxies do not use). Deeper than this is abuse: thousands of pipelined requests whose answers
# are never read keep a connection busy, and so unevictable, for as long as the attacker likes.
MAX_PIPELINED = 16


class BodyBuffer:
    """The whole body of one request in one bytearray, filled as it arrives, for an application that has
    checked its declared length against its own limit (body.py). Until expect() it is uvicorn's way."""

    __slots__ = ("_cycle", "data")

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle
        self.data: bytearray | None = None

    def expect(self) -> None:
        """From now on gather the body here: no pause of reading, no wake-up until the body is complete."""
        self.data, self._cycle.body = self._cycle.body, bytearray()  # what arrived already, not copied

    @property
    def complete(self) -> bool:
        """The whole body has arrived."""
        return not self._cycle.more_body

    def take(self) -> bytearray:
        """The body, once complete."""
        assert self.data is not None
        data, self.data = self.data, None
        return data


@dataclass(frozen=True)
class HeadLimits:
    max_bytes: int
    timeout_seconds: float


class HeadTooLarge(Exception):
    """Raised in a parser callback to stop httptools; data_received answers 431."""


class PipelineTooDeep(Exception):
    """Raised in a parser callback to stop httptools; data_received closes the connection."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection. The class attributes are bound per server by limited_protocol()."""

    limits: ClassVar[HeadLimits]
    table: ClassVar[ConnectionTable]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # between a request's end (or the connection's start) and its next head's end
        self._head_started = False  # a byte of the awaited head has come
        self._head_received = 0  # bytes of the reads that began and ended within the head
        self._read_size = 0  # bytes of the read being parsed
        self._phase = 0  # counts head and message ends, to tell whether a read stayed within one head
        # The head's deadline, and one timer that checks it: re-arming sets the deadline and only starts a
        # timer when none is pending, so a busy keep-alive connection costs no timer per request.
        self._head_deadline: float | None = None
        self._head_timer: TimerHandle | None = None
        self._rejected = False  # refused, evicted or answered 431: what still arrives is dropped
        self._body: BodyBuffer | None = None  # the current request's

    # The connection table's view of a connection
    def evictable(self) -> bool:
        # A client that does not read its answers (writing paused: the socket's buffers are full) holds
        # nothing worth protecting; otherwise pipelined requests it never reads would pin it here.
        return self.cycle is None or self.cycle.response_complete or self.flow.write_paused

    def evict(self) -> None:
        self._rejected = True
        self._head_deadline = None
        self.transport.close()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.table.admit(self):
            self._rejected = True
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self.table.discard(self)
        if self._head_timer is not None:
            self._head_timer.cancel()  # it holds this protocol for up to header_timeout_seconds
            self._head_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, plus the head's byte count and the 431.
        if self._rejected:
            return
        self._unset_keepalive_if_required()
        if self._in_head and self._head_deadline is None:
            # The first bytes of a head after a response: from here it must be complete in time. Idle time
            # before them is the keep-alive timeout's to judge, not this one's.
            self._arm_head_timer()
        phase = self._phase
        self._read_size = len(data)
        self._head_started = True  # reset by the end of a head or message within this read
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._reject_large_head()
            elif isinstance(exc.__context__, PipelineTooDeep):
                self._rejected = True
                self.table.count("pipeline_too_deep")
                self.transport.close()
            else:
                self._invalid_request()
            return
        except httptools.HttpParserError:
            self._invalid_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        # A read in which a head or a message ended is not counted: it may hold a body, and the next
        # head's share of it is at most one read.
        if self._in_head and phase == self._phase:
            self._head_received += len(data)
            if self._head_received > self.limits.max_bytes:
                self._reject_large_head()

    # httptools parser callbacks
    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_started = False
        self._phase += 1
        self._head_deadline = None
        # The head is within the bytes counted so far plus this read: measure it only when that is too much.
        if self._head_received + self._read_size > self.limits.max_bytes:
            size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
            if size + _HEADER_LINE_OVERHEAD * len(self.headers) > self.limits.max_bytes:
                raise HeadTooLarge
        self.table.touch(self)
        super().on_headers_complete()
        if self.cycle is not None and self.cycle.scope is self.scope:  # else an upgrade: no cycle for it
            self._body = BodyBuffer(self.cycle)
            self.scope["extensions"] = {"mlgit.body": self._body}
        if len(self.pipeline) > MAX_PIPELINED:
            raise PipelineTooDeep

    def on_body(self, body: bytes) -> None:
        buffer = self._body
        if buffer is None or buffer.data is None or self.cycle.response_complete:
            super().on_body(body)
            return
        buffer.data += body  # the application accepted this body's declared length: no pause, no wake-up

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_started = False
        self._head_received = 0
        self._phase += 1

    # Limits
    def _arm_head_timer(self) -> None:
        self._head_deadline = self.loop.time() + self.limits.timeout_seconds
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.timeout_seconds, self._check_head_deadline)

    def _check_head_deadline(self) -> None:
        self._head_timer = None
        if self._head_deadline is None or self.transport.is_closing():
            return
        remaining = self._head_deadline - self.loop.time()
        if remaining > 0:
            self._head_timer = self.loop.call_later(remaining, self._check_head_deadline)
            return
        self.table.count("header_timeout")
        if self._in_head and self._head_started:
            self._write_error(408, f"the request head did not arrive within {self.limits.timeout_seconds:g} s")
        self.transport.close()

    def _reject_large_head(self) -> None:
        self._rejected = True
        self._head_deadline = None
        self.table.count("header_too_large")
        logger.warning("request head too large", extra={"client": self.client, "limit": self.limits.max_bytes})
        self._write_error(431, f"the request line and headers exceed {self.limits.max_bytes} bytes")
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _invalid_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    def _write_error(self, status: int, message: str) -> None:
        """An OIP error answer, written straight to the transport: no request reached the application."""
        body = orjson.dumps({"error": message})
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)


def limited_protocol(limits: HeadLimits, table: ConnectionTable) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for uvicorn.Config(http=...), bound to one server's limits and connection table."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits, "table": table})
