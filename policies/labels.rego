# METADATA
# title: Resources carry the required labels
# description: |-
#   Every resource has the app.kubernetes.io/* recommended labels, app.kubernetes.io/managed-by: mlgit
#   and the mlgit.dev/environment and mlgit.dev/model labels, which `mlgit deploy`, `destroy` and
#   `status` use to find what belongs to an environment.
# custom:
#   id: MLGIT-META-001
#   severity: warn
#   remediation: >-
#     Keep the labels mlgit renders; add them to resources you add to the kustomize tree.
package mlgit.labels

import data.mlgit.lib

required := [
	"app.kubernetes.io/name",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
	"app.kubernetes.io/component",
	"app.kubernetes.io/part-of",
	"app.kubernetes.io/managed-by",
	"mlgit.dev/environment",
	"mlgit.dev/model",
]

labels(r) := object.get(r.metadata, "labels", {})

warn contains result if {
	some r in lib.resources
	missing := [key | some key in required; not labels(r)[key]]
	count(missing) > 0
	result := lib.finding(r, concat("", ["missing labels ", concat(", ", missing), "; add them (kustomize `labels:`)"]))
}

warn contains result if {
	some r in lib.resources
	value := labels(r)["app.kubernetes.io/managed-by"]
	value != "mlgit"
	result := lib.finding(r, sprintf("app.kubernetes.io/managed-by is %s; it must be mlgit", [value]))
}
