"""Why a rollout failed: the pods' states, their events and their last log lines."""

from __future__ import annotations

from typing import Any

import urllib3
from kubernetes import client

from mlgit.cluster.client import Cluster
from mlgit.cluster.objects import pod_selector

LOG_LINES = 15
MAX_PODS = 3


def _container_problems(pod: dict[str, Any]) -> list[str]:
    found = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        state = status.get("state") or {}
        for phase in ("waiting", "terminated"):
            if phase in state:
                detail = state[phase]
                reason = f"{detail.get('reason', '')} {detail.get('message', '')}".strip()
                found.append(f"container {status['name']} {phase}: {reason}")
        if status.get("restartCount"):
            found.append(f"container {status['name']} restarted {status['restartCount']} time(s)")
    return found


def _logs(cluster: Cluster, pod: dict[str, Any]) -> list[str]:
    core = client.CoreV1Api(cluster.api_client)
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    restarted = any(s.get("restartCount") for s in (pod.get("status") or {}).get("containerStatuses") or [])
    try:
        # After a crash the useful lines are in the previous container's log.
        text = core.read_namespaced_pod_log(name, namespace, tail_lines=LOG_LINES, previous=restarted)
    except client.ApiException as exc:
        return [f"(no logs: HTTP {exc.status})"]
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return [f"(no logs: {exc})"]
    return str(text).splitlines()[-LOG_LINES:] or ["(empty log)"]


def _events(events: list[dict[str, Any]], kind: str, name: str) -> list[str]:
    mine = [
        e
        for e in events
        if (e.get("involvedObject") or {}).get("kind") == kind and (e.get("involvedObject") or {}).get("name") == name
    ]
    mine.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [f"{e.get('type', '')} {e.get('reason', '')}: {e.get('message', '')}" for e in mine[-5:]]


def diagnose(cluster: Cluster, deployment: dict[str, Any]) -> list[str]:
    """Lines describing the Deployment's newest pods and what happened to them.

    Listing pods or events can fail (RBAC, network) with an MlgitError; the caller reports that and
    carries on, since a diagnosis is a courtesy on the way to a rollback.
    """
    namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
    pods = cluster.list("v1", "Pod", namespace, pod_selector(deployment))
    events = cluster.list("v1", "Event", namespace)
    lines = [f"deployment {name}: {line}" for line in _events(events, "Deployment", name)]
    if not pods:
        lines.append(f"deployment {name} has no pods (check quotas and the ReplicaSet's events)")
        replica_sets = [
            e["involvedObject"]["name"]
            for e in events
            if (e.get("involvedObject") or {}).get("kind") == "ReplicaSet"
            and e["involvedObject"].get("name", "").startswith(f"{name}-")
        ]
        for rs in sorted(set(replica_sets)):
            lines += [f"replicaset {rs}: {line}" for line in _events(events, "ReplicaSet", rs)]
    pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)
    for pod in pods[:MAX_PODS]:
        pod_name = pod["metadata"]["name"]
        lines.append(f"pod {pod_name}: {(pod.get('status') or {}).get('phase', 'Unknown')}")
        lines += [f"  {problem}" for problem in _container_problems(pod)]
        lines += [f"  event {line}" for line in _events(events, "Pod", pod_name)]
        lines += [f"  log | {line}" for line in _logs(cluster, pod)]
    return lines
