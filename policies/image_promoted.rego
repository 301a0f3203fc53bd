# METADATA
# title: Staging and production have an image promoted to them
# description: |-
#   Before the first promotion, `mlgit render` pins the placeholder tag `unpinned` in the staging and
#   production overlays. Such an environment cannot be deployed (`mlgit deploy` refuses an image
#   without a digest there); this is a warning, not a deny, so a fresh repository's pipeline passes
#   while it says what is missing. A canary's placeholder is MLGIT-IMG-005's concern (fine while it runs 0
#   replicas).
# custom:
#   id: MLGIT-IMG-004
#   severity: warn
#   remediation: >-
#     Deploy the previous environment and run its `promote-to-<env>` job (or `mlgit promote`), which
#     pins the tested digest in this environment's overlay through a merge request.
package mlgit.image_promoted

import data.mlgit.lib

warn contains result if {
	lib.tier in lib.release_tiers
	some w in lib.pods
	not lib.canary(w.labels)
	some c in w.all_containers
	endswith(c.image, ":unpinned")
	result := lib.finding(w, concat("", [
		"container ", c.name, " has no image promoted to this ", lib.tier,
		" environment yet; it cannot be deployed until `mlgit promote` pins a digest",
	]))
}
