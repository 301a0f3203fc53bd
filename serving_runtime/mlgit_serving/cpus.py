"""How many CPUs this container may use: what MLGIT_SERVING_WORKERS=auto resolves to.

os.cpu_count() is the node's count, and a pod limited to 2 CPUs on a 64-core node would start 64 model
copies; the cgroup's CPU quota (Kubernetes' CPU limit) is what the container may actually use.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

_CGROUP = Path("/sys/fs/cgroup")
# Most server processes one server starts (MLGIT_SERVING_WORKERS, and what `auto` resolves to). Each worker holds
# a listening socket, a pipe and a model copy; a few hundred already fill the default open-file limit (1024) and
# more than any pod's memory. mlgit.yaml's serving.workers has the same cap (cli/mlgit/config/serving.py).
MAX_WORKERS = 256


def _quota(cgroup: Path) -> float | None:
    """The CPU quota in CPUs, None when unlimited or unknown (cgroup v2 cpu.max, else v1 cfs files)."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def usable_cpus(cgroup: Path = _CGROUP) -> int:
    """The CPUs this process may run on, lowered to the cgroup quota rounded up (1.5 CPUs: 2); at least 1."""
    cpus = len(os.sched_getaffinity(0))
    quota = _quota(cgroup)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def worker_count(workers: int | str, cgroup: Path = _CGROUP) -> int:
    """The number of server processes for the `workers` setting (an int, or "auto": at most MAX_WORKERS)."""
    return min(usable_cpus(cgroup), MAX_WORKERS) if workers == "auto" else int(workers)
