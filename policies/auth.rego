# METADATA
# title: Production endpoints require authentication
# description: |-
#   In the production tier the model server checks who calls it: its MLGIT_SERVING_AUTH_MODE is api-key
#   or oidc, never none or unset (the runtime's default, under which anyone who reaches the route may
#   call the model). Health endpoints stay open either way.
# custom:
#   id: MLGIT-SEC-003
#   severity: deny
#   remediation: >-
#     Set `serving.auth` (or `environments.<env>.auth`) to mode api-key (the default of production tiers) or
#     oidc in mlgit.yaml; a deliberately open endpoint needs a waiver of MLGIT-SEC-003 with its reason.
package mlgit.auth

import data.mlgit.lib

# The values the server container declares for the mode; the last one wins, as in Kubernetes. A value
# from elsewhere (valueFrom) cannot be judged here and counts as set.
declared_modes(c) := [object.get(e, "value", "(valueFrom)") |
	some e in object.get(c, "env", [])
	e.name == "MLGIT_SERVING_AUTH_MODE"
]

mode(c) := modes[count(modes) - 1] if {
	modes := declared_modes(c)
	count(modes) > 0
}

mode(c) := "none" if count(declared_modes(c)) == 0

open_modes := {"none", ""}

deny contains result if {
	lib.production
	some w in lib.pods
	some c in w.server
	mode(c) in open_modes
	result := lib.finding(w, concat("", [
		"its model server accepts unauthenticated requests in production (MLGIT_SERVING_AUTH_MODE ",
		mode(c),
		"); set serving.auth mode api-key or oidc in mlgit.yaml, or waive MLGIT-SEC-003 with a reason",
	]))
}
