"""Report formats of `mlgit policy check` (a module of its own: the command imports it at start-up)."""

from typing import Literal

Format = Literal["text", "json", "junit"]
