# METADATA
# title: CPU and memory requests and limits are set
# description: |-
#   Every container (init containers included) sets requests and limits for cpu and memory, so the
#   scheduler places the model where it fits and a leaking process cannot starve its neighbours.
# custom:
#   id: MLGIT-RES-001
#   severity: deny
#   remediation: >-
#     Set `serving.resources.requests` and `serving.resources.limits` (cpu and memory) in mlgit.yaml.
package mlgit.resources

import data.mlgit.lib

required := ["requests.cpu", "requests.memory", "limits.cpu", "limits.memory"]

missing(c) := [field |
	some field in required
	parts := split(field, ".")
	not object.get(object.get(object.get(c, "resources", {}), parts[0], {}), parts[1], false)
]

deny contains result if {
	some w in lib.pods
	some c in w.all_containers
	gaps := missing(c)
	count(gaps) > 0
	result := lib.finding(w, concat("", ["container ", c.name, " does not set resources ", concat(", ", gaps), "; set cpu and memory requests and limits"]))
}
