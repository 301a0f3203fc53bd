"""The cap on open connections, kept below the open-file limit, and what the server closes to keep it.

Idle connections up to the file-descriptor limit used to make accept() fail, and then readiness with it.
The cap stays below the limit (less a reserve for the model files, logs and the metrics listener), and a
full table makes room rather than turning the newcomer away: it closes the least recently active
connection that is idle or still sending its head (a slow client or an abandoned keep-alive connection),
never one whose request is being served, so a probe's fresh connection gets through.
"""

from __future__ import annotations

import logging
import resource
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

logger = logging.getLogger(__name__)

# Descriptors kept free of connections: the listening sockets, model files, logs, onnxruntime, the metrics
# listener and its scrapes. A server at its cap then still has descriptors to accept (and evict) with.
FD_RESERVE = 64
CLOSE_REASONS = ("evicted", "refused", "header_timeout", "header_too_large", "pipeline_too_deep")


class Connection(Protocol):
    def evictable(self) -> bool:
        """True when idle or still receiving a request's head: closing it loses no request."""

    def evict(self) -> None:
        """Close the connection now."""


def raise_open_file_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and soft != resource.RLIM_INFINITY:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:  # e.g. an unlimited hard limit the kernel will not grant
            logger.warning("cannot raise the open-file limit", extra={"soft": soft, "hard": hard, "error": str(exc)})
    return soft


def connection_cap(max_connections: int) -> int:
    """max_connections, lowered so that connections leave FD_RESERVE of the soft open-file limit free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - FD_RESERVE))


class ConnectionTable:
    """The open connections of one server, least recently active first, and the cap on their number."""

    def __init__(self, cap: int, registry: CollectorRegistry) -> None:
        self.cap = cap
        # A dict keeps insertion order: touch() moves a connection to the end, so eviction scans from
        # the front, where slow heads and long-idle keep-alive connections gather.
        self._open: dict[Connection, None] = {}
        closed = Counter(
            "mlgit_connections_closed",
            "Connections the server closed to protect itself: evicted or refused at the connection cap, "
            "a request head too slow or too large.",
            ("reason",),
            registry=registry,
        )
        self._closed = {reason: closed.labels(reason) for reason in CLOSE_REASONS}
        Gauge("mlgit_connections_open", "Open HTTP connections.", registry=registry).set_function(
            lambda: len(self._open)
        )
        Gauge("mlgit_connections_cap", "The cap on open HTTP connections.", registry=registry).set(cap)

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: Connection) -> bool:
        """Add a new connection, evicting one when full; False when the cap is reached and none can go."""
        if len(self._open) >= self.cap:
            victim = next((c for c in self._open if c.evictable()), None)
            if victim is None:
                self.count("refused")
                return False
            del self._open[victim]
            victim.evict()
            self.count("evicted")
        self._open[connection] = None
        return True

    def touch(self, connection: Connection) -> None:
        """Mark a connection as the most recently active (a request head just arrived on it)."""
        if connection in self._open:
            del self._open[connection]
            self._open[connection] = None

    def discard(self, connection: Connection) -> None:
        self._open.pop(connection, None)

    def count(self, reason: str) -> None:
        self._closed[reason].inc()
