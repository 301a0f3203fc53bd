# METADATA
# title: Hosts are inside the allowed domains
# description: |-
#   Ingress rule and TLS hosts, HTTPRoute and GRPCRoute hostnames, OpenShift Route hosts and Certificate DNS names are
#   inside one of the allowed domains (mlgit.yaml's `domain`). A route without a host would answer for every
#   host (an OpenShift Route without one gets a generated host outside them).
# custom:
#   id: MLGIT-NET-002
#   severity: deny
#   remediation: >-
#     Use hosts ending in the configured domain (mlgit.yaml `environments.<env>.host`, `review.host`).
package mlgit.hosts

import data.mlgit.lib

allowed_domains := object.get(lib.context, "allowed_domains", [])

in_domain(host) if host in allowed_domains

in_domain(host) if {
	some domain in allowed_domains
	endswith(host, concat("", [".", domain]))
}

hosts(r) := {h | some rule in object.get(r.spec, "rules", []); h := rule.host} | {h |
	some t in object.get(r.spec, "tls", [])
	some h in object.get(t, "hosts", [])
} if r.kind == "Ingress"

hosts(r) := {h | some h in object.get(r.spec, "hostnames", [])} if r.kind in {"HTTPRoute", "GRPCRoute"}

hosts(r) := {h | some h in object.get(r.spec, "dnsNames", [])} if r.kind == "Certificate"

hosts(r) := {h | h := r.spec.host} if r.kind == "Route"

deny contains result if {
	some r in lib.resources
	some host in hosts(r)
	not in_domain(host)
	result := lib.finding(r, concat("", ["host ", host, " is outside the allowed domains (", concat(", ", allowed_domains), "); use a name inside them"]))
}

deny contains result if {
	some r in lib.of_kind("Ingress")
	some rule in object.get(r.spec, "rules", [])
	not rule.host
	result := lib.finding(r, "a rule has no host and so answers for any host; set spec.rules[].host")
}

deny contains result if {
	some r in lib.of_kind("Route")
	object.get(r.spec, "host", "") == ""
	result := lib.finding(r, "no spec.host: OpenShift generates one outside the allowed domains; set the environment's host")
}

deny contains result if {
	some r in lib.resources
	r.kind in {"HTTPRoute", "GRPCRoute"}
	count(object.get(r.spec, "hostnames", [])) == 0
	result := lib.finding(r, "no spec.hostnames: the route answers for any host; list the environment's host")
}
