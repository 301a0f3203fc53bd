# METADATA
# title: Containers run as non-root, read-only and unprivileged
# description: |-
#   Every container runs as a non-root user (runAsNonRoot, never uid 0), has a read-only root
#   filesystem, cannot gain privileges (allowPrivilegeEscalation false, not privileged) and drops
#   ALL capabilities. The serving runtime is built for this: uid 10001, writes only to /tmp.
# custom:
#   id: MLGIT-SEC-001
#   severity: deny
#   remediation: >-
#     Keep the securityContext mlgit renders; mount an emptyDir where a sidecar must write.
package mlgit.security_context

import data.mlgit.lib

# The container's setting wins over the pod's, as in Kubernetes; null where neither sets it.
# Always defined, on purpose: OPA evaluates a call nested in a negation before the `not`, so
# `not effective(...) == true` over an undefined result is undefined in OPA and conftest (a missed
# violation) but true in regopy (policies/README.md, "Write for every engine").
effective(w, c, field) := object.get(
	object.get(c, "securityContext", {}), field,
	object.get(object.get(w.spec, "securityContext", {}), field, null),
)

problems := {
	"run_as_non_root": "runAsNonRoot is not true",
	"run_as_root_uid": "runAsUser is 0 (root)",
	"writable_root": "readOnlyRootFilesystem is not true",
	"privilege_escalation": "allowPrivilegeEscalation is not false",
	"privileged": "privileged is true",
	"capabilities": "capabilities.drop does not include ALL",
}

fails("run_as_non_root", w, c) if effective(w, c, "runAsNonRoot") != true

fails("run_as_root_uid", w, c) if effective(w, c, "runAsUser") == 0

fails("writable_root", _, c) if not c.securityContext.readOnlyRootFilesystem == true

fails("privilege_escalation", _, c) if not c.securityContext.allowPrivilegeEscalation == false

fails("privileged", _, c) if c.securityContext.privileged == true

fails("capabilities", _, c) if {
	not "ALL" in object.get(object.get(object.get(c, "securityContext", {}), "capabilities", {}), "drop", [])
}

deny contains result if {
	some w in lib.pods
	some c in w.all_containers
	some check, problem in problems
	fails(check, w, c)
	result := lib.finding(w, sprintf("container %s securityContext: %s; fix it in the container's securityContext", [c.name, problem]))
}
