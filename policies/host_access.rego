# METADATA
# title: Pods stay out of the host
# description: |-
#   No pod shares the node's network, PID or IPC namespace, mounts a hostPath volume or binds a
#   hostPort: a model server needs none of them, and each one breaks the isolation between tenants.
# custom:
#   id: MLGIT-SEC-002
#   severity: deny
#   remediation: >-
#     Remove hostNetwork/hostPID/hostIPC, hostPath volumes and hostPort; use a Service and emptyDir or PVC volumes.
package mlgit.host_access

import data.mlgit.lib

deny contains result if {
	some w in lib.pods
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	w.spec[field] == true
	result := lib.finding(w, sprintf("pods set %s: true; remove it", [field]))
}

deny contains result if {
	some w in lib.pods
	some v in object.get(w.spec, "volumes", [])
	v.hostPath
	result := lib.finding(w, sprintf("volume %s mounts hostPath %s; use an emptyDir or a PersistentVolumeClaim", [v.name, v.hostPath.path]))
}

deny contains result if {
	some w in lib.pods
	some c in w.all_containers
	some p in object.get(c, "ports", [])
	p.hostPort
	result := lib.finding(w, sprintf("container %s binds hostPort %v; expose it through a Service", [c.name, p.hostPort]))
}
