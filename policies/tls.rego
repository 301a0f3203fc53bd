# METADATA
# title: Exposed routes use TLS from an allowed cert-manager issuer
# description: |-
#   Every Ingress host is listed under spec.tls with a secret, and the Ingress names an allowed
#   cert-manager issuer (cert-manager.io/cluster-issuer or cert-manager.io/issuer), or its secret is issued
#   by a Certificate of the environment (a shared wildcard) or, for the same hosts, by another Ingress's
#   allowed issuer (the gRPC Ingress shares the HTTP one's). Every HTTPRoute and GRPCRoute hostname is covered by a
#   cert-manager Certificate in the environment (a wildcard *.d covers one label under d). Every OpenShift
#   Route terminates TLS (edge or reencrypt) and names an allowed issuer for cert-manager's openshift-routes
#   controller (cert-manager.io/issuer-name) or takes its certificate from a Secret a Certificate of the
#   environment covering its host issues (spec.tls.externalCertificate). Every Certificate uses an allowed
#   issuer. Development-tier environments are exempt.
# custom:
#   id: MLGIT-NET-001
#   severity: deny
#   remediation: >-
#     Set `tls.enabled: true` and an allowed `tls.issuer` in mlgit.yaml (or add the issuer to `policy.allowed_issuers`), then `mlgit render`.
package mlgit.tls

import data.mlgit.lib

exempt if lib.tier == "development"

allowed_issuers := object.get(lib.context, "allowed_issuers", [])

allowed_list := concat(", ", allowed_issuers)

ingress_issuer(r) := r.metadata.annotations["cert-manager.io/cluster-issuer"]

ingress_issuer(r) := r.metadata.annotations["cert-manager.io/issuer"] if {
	not r.metadata.annotations["cert-manager.io/cluster-issuer"]
}

tls_covers(r, host) if {
	some t in object.get(r.spec, "tls", [])
	host in object.get(t, "hosts", [])
	t.secretName
}

certificate_covers(host) if {
	some cert in lib.of_kind("Certificate")
	host in object.get(cert.spec, "dnsNames", [])
}

# A wildcard *.d covers exactly one DNS label in front of d.
certificate_covers(host) if {
	some cert in lib.of_kind("Certificate")
	some name in object.get(cert.spec, "dnsNames", [])
	startswith(name, "*.")
	parts := split(host, ".")
	count(parts) > 1
	concat(".", array.slice(parts, 1, count(parts))) == substring(name, 2, -1)
}

# The secret is issued by a Certificate of this environment (the policy below judges its issuer).
issued_secret(name) if {
	some cert in lib.of_kind("Certificate")
	cert.spec.secretName == name
}

ingress_secrets_issued(r) if {
	some t in object.get(r.spec, "tls", [])
	issued_secret(t.secretName)
}

# Every TLS entry's Secret is one that another Ingress, with an allowed issuer, asks cert-manager for, for
# these hosts at least (the gRPC Ingress <name>-grpc beside the HTTP Ingress <name>).
ingress_secrets_issued(r) if {
	count(object.get(r.spec, "tls", [])) > 0
	every t in r.spec.tls {
		shared_with_issuing_ingress(r, t)
	}
}

shared_with_issuing_ingress(r, t) if {
	some other in lib.of_kind("Ingress")
	other.metadata.name != r.metadata.name
	ingress_issuer(other) in allowed_issuers
	some o in object.get(other.spec, "tls", [])
	o.secretName == t.secretName
	every host in object.get(t, "hosts", []) {
		host in object.get(o, "hosts", [])
	}
}

route_termination(r) := object.get(object.get(r.spec, "tls", {}), "termination", "none")

route_external_secret(r) := r.spec.tls.externalCertificate.name

deny contains result if {
	not exempt
	some r in lib.of_kind("Ingress")
	some rule in object.get(r.spec, "rules", [])
	not tls_covers(r, rule.host)
	result := lib.finding(r, sprintf(
		"host %s is served without TLS; list it under spec.tls with a secretName (mlgit.yaml: tls.enabled: true)",
		[rule.host],
	))
}

deny contains result if {
	not exempt
	some r in lib.of_kind("Ingress")
	not ingress_issuer(r)
	not ingress_secrets_issued(r)
	result := lib.finding(r, concat("", [
		"no cert-manager issuer annotation; add cert-manager.io/cluster-issuer with one of: ", allowed_list,
	]))
}

deny contains result if {
	not exempt
	some r in lib.of_kind("Ingress")
	issuer := ingress_issuer(r)
	not issuer in allowed_issuers
	result := lib.finding(r, concat("", [
		"cert-manager issuer ", issuer, " is not allowed; use one of: ", allowed_list,
		" (mlgit.yaml: tls.issuer, policy.allowed_issuers)",
	]))
}

deny contains result if {
	not exempt
	some r in lib.resources
	r.kind in {"HTTPRoute", "GRPCRoute"}
	some host in object.get(r.spec, "hostnames", [])
	not certificate_covers(host)
	result := lib.finding(r, sprintf(
		"hostname %s has no cert-manager Certificate in this environment; add one listing it in spec.dnsNames",
		[host],
	))
}

deny contains result if {
	not exempt
	some r in lib.of_kind("Route")
	not route_termination(r) in {"edge", "reencrypt"}
	result := lib.finding(r, concat("", [
		"host ", object.get(r.spec, "host", "(none)"), " is served without TLS termination (spec.tls.termination ",
		route_termination(r), "); use edge or reencrypt (mlgit.yaml: tls.enabled: true)",
	]))
}

deny contains result if {
	not exempt
	some r in lib.of_kind("Route")
	route_termination(r) in {"edge", "reencrypt"}
	not route_external_secret(r)
	issuer := object.get(object.get(r.metadata, "annotations", {}), "cert-manager.io/issuer-name", "(none)")
	not issuer in allowed_issuers
	result := lib.finding(r, concat("", [
		"cert-manager issuer ", issuer, " (annotation cert-manager.io/issuer-name) is not an allowed issuer; use one of: ",
		allowed_list, " (mlgit.yaml: tls.issuer, policy.allowed_issuers)",
	]))
}

deny contains result if {
	not exempt
	some r in lib.of_kind("Route")
	secret := route_external_secret(r)
	not route_certificate_ok(r, secret)
	result := lib.finding(r, concat("", [
		"spec.tls.externalCertificate ", secret, " is not issued by a Certificate of this environment covering host ",
		object.get(r.spec, "host", "(none)"), "; let mlgit render it (review.tls.wildcard: true)",
	]))
}

route_certificate_ok(r, secret) if {
	issued_secret(secret)
	certificate_covers(r.spec.host)
}

deny contains result if {
	not exempt
	some r in lib.of_kind("Certificate")
	# Bound first: `not r.spec.issuerRef.name in ...` would be undefined in OPA without an issuerRef.
	issuer := object.get(object.get(r.spec, "issuerRef", {}), "name", "(none)")
	not issuer in allowed_issuers
	result := lib.finding(r, concat("", [
		"issuerRef ", issuer, " is not an allowed issuer; use one of: ",
		allowed_list, " (mlgit.yaml: tls.issuer, policy.allowed_issuers)",
	]))
}
