# METADATA
# title: A NetworkPolicy restricts traffic to the model pods
# description: |-
#   Every workload's pods are selected by a NetworkPolicy that restricts ingress traffic, so only the
#   ingress controller or gateway (and whatever the policy admits) can reach the model server.
# custom:
#   id: MLGIT-NET-003
#   severity: deny
#   remediation: >-
#     Keep the NetworkPolicy mlgit renders; list the namespaces allowed in `exposure.allowed_namespaces`.
package mlgit.network_policy

import data.mlgit.lib

restricts_ingress(np) if not np.spec.policyTypes

restricts_ingress(np) if "Ingress" in np.spec.policyTypes

protected(w) if {
	some np in lib.of_kind("NetworkPolicy")
	restricts_ingress(np)
	lib.selects(object.get(np.spec, "podSelector", {}), w.labels)
}

deny contains result if {
	some w in lib.pods
	not protected(w)
	result := lib.finding(w, "no NetworkPolicy restricts ingress to its pods; add one whose podSelector matches the pod labels")
}
