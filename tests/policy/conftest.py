"""Fixtures of the policy tests: mlgit's policies compiled once per session."""

from __future__ import annotations

import pytest

from mlgit.policy.engine import PolicySet
from mlgit.resources import shipped_dir


@pytest.fixture(scope="session")
def policies() -> PolicySet:
    return PolicySet([shipped_dir("policies")])
