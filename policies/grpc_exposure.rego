# METADATA
# title: gRPC is routed as gRPC, over TLS, through a Gateway or the ingress controller
# description: |-
#   Where the model server's gRPC port (port name grpc; an Ingress may name it, or give its number) is exposed:
#   an ingress-nginx Ingress (class nginx, or no class: the cluster's default, as mlgit assumes) to it declares
#   nginx.ingress.kubernetes.io/backend-protocol GRPC or GRPCS (else nginx speaks HTTP/1.1 to an HTTP/2 port)
#   and lists every host under spec.tls (ingress-nginx serves HTTP/2 on its TLS port only), in every tier; a
#   GRPCRoute attaches to a Gateway (a parentRef of kind Gateway: one with no parent, or a Service parent in a
#   mesh, exposes nothing and is a mistake); a Service port named grpc declares appProtocol kubernetes.io/h2c,
#   from which gateways and meshes learn to speak HTTP/2 without TLS to it.
# custom:
#   id: MLGIT-NET-006
#   severity: deny
#   remediation: >-
#     Let mlgit render the gRPC exposure (serving.grpc_port in mlgit.yaml, then `mlgit render`) rather than editing
#     deploy/ by hand; keep tls.enabled on where exposure.kind is ingress.
package mlgit.grpc_exposure

import data.mlgit.lib

backend_protocol := "nginx.ingress.kubernetes.io/backend-protocol"

# The Ingress routes some path to a Service port named grpc (by its name, or by its number), or to the gRPC
# service's path.
grpc_ingress(r) if {
	some rule in object.get(r.spec, "rules", [])
	some p in object.get(object.get(rule, "http", {}), "paths", [])
	grpc_backend(object.get(p, "backend", {}), object.get(r.metadata, "namespace", ""))
}

grpc_backend(backend, _) if object.get(object.get(object.get(backend, "service", {}), "port", {}), "name", "") == "grpc"

# By number: the port of that Service (same namespace) named grpc.
grpc_backend(backend, namespace) if {
	service := object.get(backend, "service", {})
	number := object.get(object.get(service, "port", {}), "number", -1)
	some s in lib.of_kind("Service")
	s.metadata.name == object.get(service, "name", "")
	object.get(s.metadata, "namespace", "") == namespace
	some port in object.get(s.spec, "ports", [])
	object.get(port, "name", "") == "grpc"
	object.get(port, "port", -2) == number
}

grpc_ingress(r) if {
	some rule in object.get(r.spec, "rules", [])
	some p in object.get(object.get(rule, "http", {}), "paths", [])
	startswith(object.get(p, "path", "/"), "/inference.GRPCInferenceService")
}

nginx(r) if contains(object.get(r.spec, "ingressClassName", ""), "nginx")

# No class: the legacy class annotation says which controller, else the cluster's default IngressClass takes it,
# which mlgit's clusters run as ingress-nginx (another controller ignores the annotation asked for).
nginx(r) if {
	object.get(r.spec, "ingressClassName", "") == ""
	contains(object.get(object.get(r.metadata, "annotations", {}), "kubernetes.io/ingress.class", "nginx"), "nginx")
}

tls_hosts(r) := {h | some t in object.get(r.spec, "tls", []); t.secretName; some h in object.get(t, "hosts", [])}

deny contains result if {
	some r in lib.of_kind("Ingress")
	grpc_ingress(r)
	nginx(r)

	# Bound first: a missing annotation reads as "" here, in every engine alike.
	protocol := object.get(object.get(r.metadata, "annotations", {}), backend_protocol, "")
	not protocol in {"GRPC", "GRPCS"}
	result := lib.finding(r, concat("", [
		"routes gRPC without annotation ", backend_protocol, ": GRPC, so ingress-nginx would speak HTTP/1.1 to ",
		"the server's HTTP/2 port; add it",
	]))
}

deny contains result if {
	some r in lib.of_kind("Ingress")
	grpc_ingress(r)
	some rule in object.get(r.spec, "rules", [])
	host := object.get(rule, "host", "(none)")
	covered := tls_hosts(r)
	not host in covered
	result := lib.finding(r, concat("", [
		"routes gRPC for host ", host, " without TLS; gRPC needs HTTP/2, which the ingress controller serves on its ",
		"TLS port only: list the host under spec.tls with a secretName (mlgit.yaml: tls.enabled: true)",
	]))
}

gateway_parent(ref) if {
	object.get(ref, "group", "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
	object.get(ref, "kind", "Gateway") == "Gateway"
}

deny contains result if {
	some r in lib.of_kind("GRPCRoute")
	count([ref | some ref in object.get(r.spec, "parentRefs", []); gateway_parent(ref)]) == 0
	result := lib.finding(r, "attaches to no Gateway (spec.parentRefs names none), so it exposes nothing; name the environment's Gateway (mlgit.yaml: exposure.gateway)")
}

deny contains result if {
	some r in lib.of_kind("Service")
	some p in object.get(r.spec, "ports", [])
	object.get(p, "name", "") == "grpc"
	protocol := object.get(p, "appProtocol", "(none)")
	protocol != "kubernetes.io/h2c"
	result := lib.finding(r, concat("", [
		"port grpc has appProtocol ", protocol, "; declare kubernetes.io/h2c, so that gateways speak HTTP/2 ",
		"(gRPC) to it rather than HTTP/1.1",
	]))
}
