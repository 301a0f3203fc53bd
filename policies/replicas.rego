# METADATA
# title: Production runs at least two replicas
# description: |-
#   In the production tier every Deployment runs at least two pods (spec.replicas, or the
#   minReplicas of the HorizontalPodAutoscaler that scales it), so a node drain or a crash never
#   takes the model offline. A canary beside the stable (pods labelled mlgit.dev/track canary) is exempt.
# custom:
#   id: MLGIT-REL-002
#   severity: deny
#   remediation: >-
#     Set `environments.<env>.replicas` or `autoscaling.min_replicas` to 2 or more.
package mlgit.replicas

import data.mlgit.lib

deny contains result if {
	lib.production
	some d in lib.deployments
	not lib.canary_workload(d)
	hpa := lib.autoscaler(d.kind, d.metadata.name)
	object.get(hpa.spec, "minReplicas", 1) < 2
	result := lib.finding(d, sprintf(
		"its HorizontalPodAutoscaler %s allows %v replica(s) in production; set minReplicas to 2 or more",
		[hpa.metadata.name, object.get(hpa.spec, "minReplicas", 1)],
	))
}

deny contains result if {
	lib.production
	some d in lib.deployments
	not lib.canary_workload(d)
	not lib.autoscaler(d.kind, d.metadata.name)
	object.get(d.spec, "replicas", 1) < 2
	result := lib.finding(d, sprintf("runs %v replica(s) in production; set spec.replicas to 2 or more", [object.get(d.spec, "replicas", 1)]))
}
