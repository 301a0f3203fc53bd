# METADATA
# title: A running canary and its stable are pinned by digest
# description: |-
#   Where a canary runs (a Deployment whose pods carry mlgit.dev/track canary, with more than 0 replicas or a
#   route sending its Service a weight above 0), the
#   server image of the canary and of the stable (pods labelled mlgit.dev/track stable) is referenced by its
#   sha256 digest, in every tier: the analysis compares two exact builds, and promoting the canary copies its
#   digest to the stable pin. The canary's `unpinned` placeholder is fine while it has neither pods nor traffic.
# custom:
#   id: MLGIT-IMG-005
#   severity: deny
#   remediation: >-
#     Start a canary with `mlgit promote --canary`, which pins it by digest in the environment's pin file; promote
#     to the environment (`mlgit promote`) before starting a canary there.
package mlgit.canary_images

import data.mlgit.canary_split
import data.mlgit.lib

track := "mlgit.dev/track"

# A canary runs while it has pods or traffic: CanaryState.running (mlgit.manifests.canary_state) says the same
# of the pin file, where it also asks for the digest pin that this policy demands of every running canary.
running_canary(d) if {
	lib.canary(lib.pod_labels(d))
	object.get(d.spec, "replicas", 1) > 0
}

running_canary(d) if {
	lib.canary(lib.pod_labels(d))
	some s in lib.of_kind("Service")
	canary_split.weighted[s.metadata.name]
	selector := object.get(s.spec, "selector", {})
	count(selector) > 0
	lib.selects({"matchLabels": selector}, lib.pod_labels(d))
}

deny contains result if {
	some d in lib.deployments
	running_canary(d)
	some c in lib.pod_spec(d).containers
	not lib.pinned(c.image)
	result := lib.finding(d, concat("", [
		"the canary runs container ", c.name, " image ", c.image,
		", which is not pinned by digest; pin the canary as NAME@sha256:<digest>",
	]))
}

deny contains result if {
	some canary in lib.deployments
	running_canary(canary)
	some d in lib.deployments
	lib.pod_labels(d)[track] == "stable"
	some c in lib.pod_spec(d).containers
	not lib.pinned(c.image)
	result := lib.finding(d, concat("", [
		"a canary runs beside this stable Deployment, whose container ", c.name, " image ", c.image,
		" is not pinned by digest; the canary is judged against the stable, so pin the stable first",
	]))
}
