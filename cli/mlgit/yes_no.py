"""Yes/no values of environment variables (CI/CD variables), read the same way everywhere."""

from __future__ import annotations

_YES = frozenset({"1", "true", "yes", "on"})
_NO = frozenset({"0", "false", "no", "off"})


def yes_no(text: str) -> bool | None:
    """True or False for a yes/no word (case and spaces ignored); None for anything else, which callers refuse:
    a typo must not silently turn on (or off) what the user meant to control."""
    word = text.strip().lower()
    return True if word in _YES else False if word in _NO else None
