# METADATA
# title: Staging and production images are pinned by digest
# description: |-
#   In the staging and production tiers every container image is referenced by its sha256 digest,
#   so what runs is exactly what was tested and promoted, even if a tag is pushed again.
#   The `unpinned` placeholder written before anything was promoted is MLGIT-IMG-004's concern.
# custom:
#   id: MLGIT-IMG-002
#   severity: deny
#   remediation: >-
#     Promote by digest (`mlgit promote`), which pins `image@sha256:...` in the overlay.
package mlgit.image_digest

import data.mlgit.lib

deny contains result if {
	lib.tier in lib.release_tiers
	some w in lib.pods
	some c in w.all_containers
	not lib.pinned(c.image)
	not endswith(c.image, ":unpinned")
	result := lib.finding(w, sprintf(
		"container %s image %s is not pinned by digest in a %s environment; reference it as NAME@sha256:<digest>",
		[c.name, c.image, lib.tier],
	))
}

