# METADATA
# title: The metrics port is not reachable through the route's NetworkPolicy
# description: |-
#   Where the model server serves /metrics on a port of its own (named metrics), no NetworkPolicy rule that
#   admits traffic to its http port (the ingress controller's or gateway's) admits it to the metrics port too:
#   only the metrics namespaces' rule, which lists the metrics port alone, may.
# custom:
#   id: MLGIT-NET-005
#   severity: deny
#   remediation: >-
#     List only port http in the exposure NetworkPolicy's rule (`ports: [{port: http}]`, as mlgit renders it);
#     Prometheus's namespaces come in through serving.metrics_namespaces.
package mlgit.metrics_port

import data.mlgit.lib

# The server container's port `name`: its name and number, as a NetworkPolicy may name it.
port_refs(w, name) := {ref |
	some c in w.server
	some p in object.get(c, "ports", [])
	object.get(p, "name", "") == name
	some ref in [name, object.get(p, "containerPort", name)]
}

rule_ports(rule) := object.get(rule, "ports", [])

# A rule without ports, or a port entry without a port, admits every port.
admits(rule, refs) if count(rule_ports(rule)) == 0

admits(rule, refs) if {
	some p in rule_ports(rule)
	object.get(p, "port", null) == null
}

admits(rule, refs) if {
	some p in rule_ports(rule)
	p.port in refs
}

deny contains result if {
	some w in lib.pods
	metrics := port_refs(w, "metrics")
	count(metrics) > 0
	http := port_refs(w, "http")
	some np in lib.of_kind("NetworkPolicy")
	lib.selects(object.get(np.spec, "podSelector", {}), w.labels)
	some rule in object.get(np.spec, "ingress", [])
	admits(rule, http)
	admits(rule, metrics)
	result := lib.finding(np, concat("", [
		"admits the traffic that reaches port http of ", w.kind, " ", w.metadata.name,
		" to its metrics port too; list only port http in that rule",
	]))
}
