# METADATA
# title: Images name a version, never :latest
# description: |-
#   Every container image has a tag or a digest, and the tag is not `latest`: a moving tag makes a
#   rollout unreproducible and a rollback impossible.
# custom:
#   id: MLGIT-IMG-001
#   severity: deny
#   remediation: >-
#     Deploy the image the pipeline built, by its version tag or digest (`mlgit deploy --image REF@sha256:...`).
package mlgit.image_tag

import data.mlgit.lib

deny contains result if {
	some w in lib.pods
	some c in w.all_containers
	lib.image_tag(c.image) == "latest"
	result := lib.finding(w, sprintf("container %s uses the moving tag :latest (%s); use a version tag or a digest", [c.name, c.image]))
}

deny contains result if {
	some w in lib.pods
	some c in w.all_containers
	not lib.image_tag(c.image)
	not contains(c.image, "@")
	result := lib.finding(w, sprintf("container %s image %s has neither tag nor digest (that means :latest); pin a version", [c.name, c.image]))
}
