"""Everything one app instance owns; create_app() builds it, so nothing lives at module level."""

from __future__ import annotations

from .audit import AuditLog
from .metrics import ServingMetrics
from .repository import ModelRepository
from .settings import ServerSettings


class ServingState:
    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.metrics = ServingMetrics()
        self.repository = ModelRepository(settings.model_repository, self.metrics)
        self.audit = AuditLog(settings.audit_sample_rate, settings.audit_max_bytes)
        self.draining = False

    def begin_drain(self) -> None:
        """Called on SIGTERM: readiness fails at once so traffic moves elsewhere; requests still run."""
        self.draining = True

    def not_ready_reasons(self) -> list[str]:
        reasons = self.repository.not_ready()
        if self.draining:
            reasons.insert(0, "the server is shutting down")
        return reasons
