# METADATA
# title: Probes use the v2 health endpoints
# description: |-
#   Every long-running container has startup, readiness and liveness probes. The model server's
#   startup and readiness probes ask /v2/health/ready (the model is loaded and warm) and its liveness
#   probe asks /v2/health/live (the process answers), so a slow model load is not killed and a
#   pod only gets traffic once it can serve it.
# custom:
#   id: MLGIT-REL-001
#   severity: deny
#   remediation: >-
#     Keep the probes mlgit renders on the `server` container; give sidecars their own probes.
package mlgit.probes

import data.mlgit.lib

long_running := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"}

expected_paths := {
	"startupProbe": "/v2/health/ready",
	"readinessProbe": "/v2/health/ready",
	"livenessProbe": "/v2/health/live",
}

deny contains result if {
	some w in lib.pods
	w.kind in long_running
	some c in w.containers
	missing := [probe | some probe in object.keys(expected_paths); not c[probe]]
	count(missing) > 0
	result := lib.finding(w, concat("", ["container ", c.name, " has no ", concat(", ", sort(missing)), "; add them"]))
}

describe(probe) := concat("", ["httpGet ", probe.httpGet.path])

describe(probe) := "not an httpGet probe" if not probe.httpGet.path

deny contains result if {
	some w in lib.pods
	some c in w.server
	some probe in object.keys(expected_paths)
	c[probe]
	object.get(object.get(c[probe], "httpGet", {}), "path", "") != expected_paths[probe]
	result := lib.finding(w, concat("", [
		"container server ", probe, " is ", describe(c[probe]),
		"; it must be an httpGet probe of ", expected_paths[probe],
	]))
}
