# METADATA
# title: Production has a HorizontalPodAutoscaler
# description: |-
#   In the production tier every Deployment is scaled by a HorizontalPodAutoscaler (autoscaling/v2),
#   so inference capacity follows the load instead of a guess. A canary beside the stable (pods labelled
#   mlgit.dev/track canary) is exempt: it runs the replicas its pin file gives it, for a while.
# custom:
#   id: MLGIT-REL-004
#   severity: deny
#   remediation: >-
#     Enable `environments.<env>.autoscaling` in mlgit.yaml (on by default for production).
package mlgit.hpa

import data.mlgit.lib

deny contains result if {
	lib.production
	some d in lib.deployments
	not lib.canary_workload(d)
	not lib.autoscaler(d.kind, d.metadata.name)
	result := lib.finding(d, "no HorizontalPodAutoscaler scales it in production; enable autoscaling for this environment")
}
