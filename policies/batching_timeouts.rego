# METADATA
# title: The batching delay is well below the probe and route timeouts
# description: |-
#   Adaptive batching holds a request up to `max_delay_ms` waiting for batch-mates. That wait must be
#   a small fraction (at most a tenth) of every probe timeout of the server and every timeout the
#   route sets (ingress-nginx proxy-read/send-timeout, HTTPRoute timeouts), or a busy pod is marked
#   unready or requests time out at the proxy while they wait in the batch queue.
# custom:
#   id: MLGIT-ML-001
#   severity: deny
#   remediation: >-
#     Lower `serving.batching.max_delay_ms`, or raise the probe timeouts / `exposure.timeout_seconds`.
package mlgit.batching_timeouts

import data.mlgit.lib

# "Well below": the delay may use at most this fraction of a timeout.
factor := 10

delay_ms := object.get(lib.model, "max_delay_ms", 0)

deny contains result if {
	some w in lib.pods
	some c in w.server
	some probe in ["startupProbe", "readinessProbe", "livenessProbe"]
	timeout_ms := object.get(c[probe], "timeoutSeconds", 1) * 1000
	delay_ms * factor > timeout_ms
	result := lib.finding(w, sprintf(
		"batching max_delay_ms %v is not well below the %s timeout (%v ms); keep it under a tenth of it",
		[delay_ms, probe, timeout_ms],
	))
}

deny contains result if {
	some r in lib.of_kind("Ingress")
	some key in ["nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"]
	timeout_ms := to_number(r.metadata.annotations[key]) * 1000
	delay_ms * factor > timeout_ms
	result := lib.finding(r, sprintf(
		"batching max_delay_ms %v is not well below %s (%v ms); keep it under a tenth of it",
		[delay_ms, key, timeout_ms],
	))
}

deny contains result if {
	some r in lib.of_kind("HTTPRoute")
	some rule in object.get(r.spec, "rules", [])
	some key, value in object.get(rule, "timeouts", {})
	timeout_ms := time.parse_duration_ns(value) / 1000000
	delay_ms * factor > timeout_ms
	result := lib.finding(r, sprintf(
		"batching max_delay_ms %v is not well below the route's timeouts.%s (%s); keep it under a tenth of it",
		[delay_ms, key, value],
	))
}
