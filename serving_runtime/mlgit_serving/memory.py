"""Memory management for a server whose requests are large buffers: glibc malloc and the garbage collector.

glibc serves allocations above its mmap threshold (128 KiB at first) with fresh mmap()s and trims the heap
top back to the kernel when it frees; a 400 KB request body then costs page faults for every page on every
request (measured: 32-row CNN binary requests spent more CPU faulting in zeroed pages than in onnxruntime).
Keeping large blocks in the heap and never trimming makes them reusable across requests.

The exception is a request far larger than usual (a 64 MiB JSON body decodes to over half a gigabyte of
Python objects): after one, HeapTrimmer gives the free memory back, so that one peak does not stay resident.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to this size stay in the heap: bodies are capped by max_request_bytes, 64 MiB by default.
_MMAP_THRESHOLD = 64 * 1024 * 1024
_TRIM_THRESHOLD = 256 * 1024 * 1024
# A request whose body (read or decompressed) reaches this is followed by a trim. Bodies this large cost
# tens of milliseconds to decode, so faulting their pages in afresh next time is noise.
TRIM_AFTER_BYTES = 8 * 1024 * 1024
# The trim waits this long: the response is sent (and freed) first, and a burst of large requests shares one.
_TRIM_DELAY_SECONDS = 1.0


def _glibc_function(name: str) -> Callable[..., Any] | None:
    """A function of glibc's malloc, or None under another C library (musl has no mallopt or malloc_trim)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        return getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None


def keep_large_blocks() -> bool:
    """Apply the tuning when the C library is glibc; returns whether it was applied."""
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return False
    applied = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD))
    applied = bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)) and applied
    if not applied:
        logger.warning("mallopt refused the malloc tuning; large requests will be slower")
    return applied


def freeze_startup_objects() -> None:
    """Move everything alive now (modules, FastAPI routes, pydantic schemas: a few hundred thousand objects)
    out of the collector's reach. Otherwise every full collection walks them all while requests wait: the
    60 ms p99 spikes at concurrency 32 before this (p99 fell to 16 ms with it, MLP JSON)."""
    gc.collect()
    gc.freeze()


class HeapTrimmer:
    """After a large request, hands free heap memory back to the kernel (glibc's malloc_trim, every arena)."""

    def __init__(self) -> None:
        self._malloc_trim = _glibc_function("malloc_trim")
        self._scheduled = False

    def after_request(self, body_bytes: int) -> None:
        """Call on the event loop when a request is done with its body, whatever its outcome."""
        if body_bytes < TRIM_AFTER_BYTES or self._malloc_trim is None or self._scheduled:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_later(_TRIM_DELAY_SECONDS, self._trim)

    def _trim(self) -> None:
        self._scheduled = False
        # Walking a large heap takes milliseconds: not on the event loop.
        asyncio.get_running_loop().run_in_executor(None, self._malloc_trim, 0)
