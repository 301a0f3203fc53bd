"""Values that look like they were never filled in: warnings, not errors, since a demo may keep them.

`mlgit init` without --domain/--registry writes example.com names (RFC 2606 reserves them, so they can
never resolve) and TLS defaults to a ClusterIssuer named letsencrypt-prod that nobody chose; a cluster
without that issuer leaves every certificate pending. Each warning names mlgit.yaml:line:col and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlgit.config.schema import EnvironmentConfig, MlgitConfig, ReviewConfig
from mlgit.config.yamlio import position
from mlgit.errors import Location

# RFC 2606 / RFC 6761 names that exist for documentation and can never be real hosts or registries.
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_TLDS = ("example", "invalid")


def is_placeholder_host(host: str) -> bool:
    """True for example.com, models.example.org, registry.example, x.invalid and the like."""
    host = host.lower().rstrip(".").split(":", 1)[0]
    if host.rsplit(".", 1)[-1] in _RESERVED_TLDS:
        return True
    return any(host == d or host.endswith("." + d) for d in _RESERVED_DOMAINS)


def _node(doc: Any, loc: tuple[str, ...]) -> Any:
    for key in loc:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _tls_sections(config: MlgitConfig, doc: Any) -> list[tuple[tuple[str, ...], EnvironmentConfig | ReviewConfig]]:
    """(the `tls` section that applies in mlgit.yaml, resolved target) for each environment and review."""
    owners: list[tuple[tuple[str, ...], EnvironmentConfig | ReviewConfig]] = [
        (("environments", env), cfg) for env, cfg in config.environments.items()
    ]
    if config.review.enabled:
        owners.append((("review",), config.review))
    sections = []
    for loc, owner in owners:
        # An environment without its own `tls:` uses the top-level one: report it there, once.
        section = (*loc, "tls") if isinstance(_node(doc, (*loc, "tls")), dict) else ("tls",)
        sections.append((section, owner))
    return sections


def placeholder_warnings(config: MlgitConfig, doc: Any, path: Path) -> list[str]:
    """`file:line:col: field: why` for each placeholder value in mlgit.yaml."""
    found: dict[tuple[str, ...], str] = {}
    if is_placeholder_host(config.domain):
        found[("domain",)] = (
            f"{config.domain} is a placeholder (reserved for documentation), so no host of this model resolves; "
            "set your DNS domain"
        )
    registry = config.image.repository.split("/", 1)[0]
    if is_placeholder_host(registry):
        found[("image", "repository")] = (
            f"{registry} is a placeholder registry; pushes and pulls will fail until you set your image repository"
        )
    for section, owner in _tls_sections(config, doc):
        tls, exposure = owner.tls, owner.exposure
        if tls is None or not tls.enabled or (exposure is not None and exposure.kind == "none"):
            continue
        key = (*section, "issuer")
        if "issuer" not in (_node(doc, section) or {}) and key not in found:
            found[key] = (
                f"not set, so certificates ask the {tls.issuer_kind} {tls.issuer!r}, which your cluster may not have; "
                "name the issuer it has (or set tls.enabled: false)"
            )
    located = sorted(((position(doc, loc) or (0, 0), loc, message) for loc, message in found.items()))
    return [
        f"{Location(path, *where) if where[0] else path}: {'.'.join(loc)}: {message}" for where, loc, message in located
    ]
