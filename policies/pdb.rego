# METADATA
# title: Production has a PodDisruptionBudget
# description: |-
#   In the production tier every Deployment's pods are covered by a PodDisruptionBudget, so voluntary
#   disruptions (node drains, cluster upgrades) keep some replicas serving. A canary beside the stable (pods
#   labelled mlgit.dev/track canary) is exempt: the stable carries the environment's availability.
# custom:
#   id: MLGIT-REL-003
#   severity: deny
#   remediation: >-
#     Keep the PodDisruptionBudget mlgit renders for production (its selector must match the pod labels).
package mlgit.pdb

import data.mlgit.lib

covered(d) if {
	some pdb in lib.of_kind("PodDisruptionBudget")
	lib.selects(pdb.spec.selector, d.labels)
}

deny contains result if {
	lib.production
	some d in lib.pods
	d.kind == "Deployment"
	not lib.canary(d.labels)
	not covered(d)
	result := lib.finding(d, "no PodDisruptionBudget selects its pods in production; add one (e.g. maxUnavailable: 1)")
}
