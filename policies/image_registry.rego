# METADATA
# title: Images come from an allowed registry
# description: |-
#   Every container image is pulled from one of the allowed registries (by default the registry of
#   `image.repository`). An entry may also be a registry path prefix such as registry.example.com/team.
# custom:
#   id: MLGIT-IMG-003
#   severity: deny
#   remediation: >-
#     Push the image to the project's registry, or add its registry to `policy.allowed_registries`.
package mlgit.image_registry

import data.mlgit.lib

allowed_registries := object.get(lib.context, "allowed_registries", [])

allowed(image) if lib.image_registry(image) in allowed_registries

allowed(image) if {
	some prefix in allowed_registries
	startswith(image, concat("", [prefix, "/"]))
}

deny contains result if {
	some w in lib.pods
	some c in w.all_containers
	not allowed(c.image)
	result := lib.finding(w, concat("", [
		"container ", c.name, " image ", c.image, " comes from ", lib.image_registry(c.image),
		", which is not an allowed registry (", concat(", ", allowed_registries), ")",
	]))
}
