"""A stand-in for the Deployment controller on the emulator (nothing rolls out there by itself).

On every Deployment write it does what kube-controller-manager would, in miniature: find or create the
ReplicaSet for the pod template (a new one gets the next revision; an old one brought back, as by a
rollback, is renumbered to the next revision), annotate the Deployment with that revision, and
patch its status: complete, or stalled with a pod stuck in ImagePullBackOff for images in `broken`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from tests.cluster.emulator import ApiServer

REVISION = "deployment.kubernetes.io/revision"


class DeploymentController:
    def __init__(self) -> None:
        self.broken: set[str] = set()  # images whose pods never become ready

    def __call__(self, server: ApiServer, deployment: dict[str, Any]) -> None:
        if deployment["kind"] != "Deployment":
            return
        meta, spec = deployment["metadata"], deployment["spec"]
        template = spec["template"]
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        owned = [rs for rs in self._replica_sets(server, deployment)]
        revisions = [int(rs["metadata"]["annotations"][REVISION]) for rs in owned]
        mine = next((rs for rs in owned if rs["metadata"]["labels"]["pod-template-hash"] == template_hash), None)
        latest = max(revisions, default=0)
        revision = latest if mine and int(mine["metadata"]["annotations"][REVISION]) == latest else latest + 1
        rs_name = f"{meta['name']}-{template_hash}"
        labels = {**template["metadata"].get("labels", {}), "pod-template-hash": template_hash}
        pod_template = copy.deepcopy(template)
        pod_template["metadata"]["labels"] = labels
        server.put(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": rs_name,
                    "namespace": meta["namespace"],
                    "labels": labels,
                    "annotations": {REVISION: str(revision)},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": meta["name"],
                            "uid": meta["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": spec.get("replicas", 1),
                    "selector": {"matchLabels": labels},
                    "template": pod_template,
                },
            },
            manager="kube-controller-manager",
        )
        image = template["spec"]["containers"][0]["image"]
        stalled = image in self.broken
        if stalled:
            self._stuck_pod(server, meta["namespace"], rs_name, labels, image)
        desired = spec.get("replicas", 1)
        status = {
            "observedGeneration": meta["generation"],
            "replicas": desired * (2 if stalled else 1),
            "updatedReplicas": desired,
            "readyReplicas": desired,
            "availableReplicas": desired,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "ReplicaSetUpdated" if stalled else "NewReplicaSetAvailable",
                },
            ],
        }
        updated = copy.deepcopy(deployment)
        updated["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        updated["status"] = status
        server.put(updated, manager="kube-controller-manager")

    @staticmethod
    def _replica_sets(server: ApiServer, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        uid = deployment["metadata"]["uid"]
        return [
            copy.deepcopy(obj.raw)
            for (res, _, _), obj in server.objects._objects.items()
            if res.plural == "replicasets"
            and not obj.deleted
            and any(o["uid"] == uid for o in obj.raw["metadata"].get("ownerReferences", []))
        ]

    @staticmethod
    def _stuck_pod(server: ApiServer, namespace: str, rs_name: str, labels: dict[str, str], image: str) -> None:
        pod = f"{rs_name}-x7k2p"
        server.put(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "namespace": namespace, "labels": labels},
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [
                        {
                            "name": "server",
                            "restartCount": 0,
                            "state": {
                                "waiting": {
                                    "reason": "ImagePullBackOff",
                                    "message": f'Back-off pulling image "{image}"',
                                }
                            },
                        }
                    ],
                },
            }
        )
        server.put(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{pod}.1", "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": namespace},
                "type": "Warning",
                "reason": "Failed",
                "message": f"Failed to pull image {image}: not found",
            }
        )
