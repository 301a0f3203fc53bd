"""API keys: `Authorization: Bearer <key>` against keys from MLGIT_SERVING_API_KEYS and a key directory.

Only SHA-256 digests of the keys stay in memory. The directory is a mounted Kubernetes Secret: one key per
file, the file name its id; names starting with "." are the kubelet's (`..data` and the timestamped folder
it points to, swapped atomically on an update). It is listed again at most every RELOAD_INTERVAL_S, on the
request that finds the interval over, and read again only when the listing changed, so that a key added to
or removed from the Secret takes effect without a restart while the hot path pays one clock read.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from pathlib import Path

from .auth_errors import AuthFailure
from .errors import ConfigurationError

logger = logging.getLogger(__name__)

RELOAD_INTERVAL_S = 2.0
_Listing = tuple[tuple[str, int, int, int], ...] | None


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def _listing(directory: Path) -> _Listing:
    """What changes when a key file is added, removed or replaced: names and what each resolves to."""
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return None
    listing = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            info = entry.stat()  # follows the kubelet's symlinks into the current ..data
        except OSError:
            listing.append((entry.name, -1, -1, -1))
            continue
        listing.append((entry.name, info.st_ino, info.st_mtime_ns, info.st_size))
    return tuple(listing)


def _read_directory(directory: Path) -> dict[str, bytes]:
    """key id -> digest for every usable key file; the others are logged (by name, never content)."""
    digests = {}
    try:
        names = sorted(entry.name for entry in os.scandir(directory) if not entry.name.startswith("."))
    except OSError as exc:
        logger.error("cannot list the API key directory", extra={"directory": str(directory), "error": exc.strerror})
        return {}
    for name in names:
        try:
            key = (directory / name).read_bytes().strip()
        except OSError as exc:
            logger.warning("API key file ignored: unreadable", extra={"file": str(directory / name), "error": str(exc)})
            continue
        if not key:
            logger.warning("API key file ignored: empty", extra={"file": str(directory / name)})
            continue
        digests[name] = _digest(key)
    return digests


class ApiKeyAuthenticator:
    def __init__(self, inline_keys: list[bytes], directory: Path | None) -> None:
        self._inline = {f"key-{i}": _digest(key) for i, key in enumerate(inline_keys, 1)}
        self._directory = directory
        self._listing: _Listing = None
        self._next_check = 0.0
        self._keys: tuple[tuple[str, bytes], ...] = tuple(self._inline.items())
        if directory is not None:
            self._reload_if_changed()

    @classmethod
    def from_settings(cls, inline: str, directory: Path | None) -> ApiKeyAuthenticator:
        """Refuses to build a server nobody can call: at least one key must be usable at start."""
        keys = [key.strip().encode() for key in inline.split(",") if key.strip()]
        authenticator = cls(keys, directory)
        if not authenticator.key_ids():
            where = "MLGIT_SERVING_API_KEYS is empty"
            if directory is not None:
                where += f" and MLGIT_SERVING_API_KEYS_DIR ({directory}) holds no usable key file"
            else:
                where += " and MLGIT_SERVING_API_KEYS_DIR is not set"
            raise ConfigurationError(
                f"MLGIT_SERVING_AUTH_MODE=api-key needs at least one API key: {where}. Set "
                "MLGIT_SERVING_API_KEYS to comma-separated keys (e.g. the output of `openssl rand -hex 32`) or "
                "MLGIT_SERVING_API_KEYS_DIR to a directory with one key per file"
            )
        return authenticator

    def key_ids(self) -> list[str]:
        return [key_id for key_id, _ in self._keys]

    def _reload_if_changed(self) -> None:
        assert self._directory is not None
        listing = _listing(self._directory)
        if listing == self._listing:
            return
        self._listing = listing
        from_directory = _read_directory(self._directory) if listing is not None else {}
        if listing is None:
            logger.error("the API key directory is missing", extra={"directory": str(self._directory)})
        self._keys = (*self._inline.items(), *from_directory.items())
        if self._keys:
            logger.info("API keys loaded", extra={"key_ids": self.key_ids()})
        else:
            logger.error("no usable API key: every request is refused until one is added")

    async def authenticate(self, credential: bytes) -> str:
        if self._directory is not None:
            now = time.monotonic()
            if now >= self._next_check:
                self._next_check = now + RELOAD_INTERVAL_S
                self._reload_if_changed()
        presented = _digest(credential)
        found = None
        for key_id, digest in self._keys:  # every key is compared, so the time says nothing about which matched
            if hmac.compare_digest(presented, digest) and found is None:
                found = key_id
        if found is None:
            raise AuthFailure("the API key is not valid", "unknown_key")
        return found
