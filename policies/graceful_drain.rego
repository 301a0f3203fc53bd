# METADATA
# title: The termination grace period outlasts the server's drain
# description: |-
#   On SIGTERM the serving runtime finishes in-flight and queued requests for up to its drain time
#   (MLGIT_SERVING_DRAIN_SECONDS, default `serving.drain_seconds`), after any preStop sleep. The pod's
#   terminationGracePeriodSeconds (Kubernetes default 30) must exceed preStop + drain, or the kubelet
#   kills the server mid-request during every rollout.
# custom:
#   id: MLGIT-ML-002
#   severity: deny
#   remediation: >-
#     Raise terminationGracePeriodSeconds (mlgit renders drain_seconds + margin) or lower `serving.drain_seconds`.
package mlgit.graceful_drain

import data.mlgit.lib

env_drain(c) := to_number(e.value) if {
	some e in object.get(c, "env", [])
	e.name == "MLGIT_SERVING_DRAIN_SECONDS"
}

drain(c) := env_drain(c)

drain(c) := object.get(lib.model, "drain_seconds", 20) if not env_drain(c)

pre_stop(c) := c.lifecycle.preStop.sleep.seconds

pre_stop(c) := to_number(cmd[1]) if {
	cmd := c.lifecycle.preStop.exec.command
	cmd[0] in {"sleep", "/bin/sleep", "/usr/bin/sleep"}
}

pre_stop_seconds(c) := pre_stop(c)

pre_stop_seconds(c) := 0 if not pre_stop(c)

deny contains result if {
	some w in lib.pods
	some c in w.server
	grace := object.get(w.spec, "terminationGracePeriodSeconds", 30)
	needed := drain(c) + pre_stop_seconds(c)
	grace <= needed
	result := lib.finding(w, sprintf(
		"terminationGracePeriodSeconds %v does not exceed preStop %vs + drain %vs; set it above %v",
		[grace, pre_stop_seconds(c), drain(c), needed],
	))
}
