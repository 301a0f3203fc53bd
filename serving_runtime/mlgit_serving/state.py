"""Everything one app instance owns; create_app() builds it, so nothing lives at module level."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .audit import AuditLog
from .memory import HeapTrimmer
from .metrics import ServingMetrics
from .repository import ModelRepository
from .settings import ServerSettings


class ServingState:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.metrics = ServingMetrics()
        self.repository = ModelRepository(
            settings.model_repository,
            self.metrics,
            versions=settings.versions,
            default_version=settings.default_version,
        )
        self.audit = AuditLog(settings.audit_sample_rate, settings.audit_max_bytes)
        self.draining = False
        # Shared by REST and gRPC: one large decode at a time (decoding.py), one trim after a burst of large
        # requests (memory.py), whichever protocol they came by.
        self.large_decodes = asyncio.Semaphore(1)
        self.trimmer = HeapTrimmer()
        # With several worker processes: why the others are not ready (worker_readiness.py); a pod is
        # ready only when all are.
        self.peers_not_ready: Callable[[], list[str]] | None = None

    def begin_drain(self) -> None:
        """Called on SIGTERM: readiness fails at once so traffic moves elsewhere; requests still run."""
        self.draining = True

    def not_ready_reasons(self) -> list[str]:
        reasons = self.repository.not_ready()
        if self.draining:
            reasons.insert(0, "the server is shutting down")
        if self.peers_not_ready is not None:
            reasons += self.peers_not_ready()
        return reasons
