# METADATA
# title: Routes expose only the inference API and the extras enabled for the environment
# description: |-
#   Ingress paths, HTTPRoute matches and OpenShift Route paths are /v2 (the Open Inference Protocol: inference,
#   metadata and health), its gRPC service (/inference.GRPCInferenceService) or a known extra (/docs,
#   /openapi.json, /ui), never / or /metrics: the metrics and anything else the server answers stay inside the
#   cluster. GRPCRoute matches name that gRPC service exactly (no reflection, no other service). A default
#   backend, a route rule without matches and a regular-expression match route more than that and are denied too.
# custom:
#   id: MLGIT-NET-004
#   severity: deny
#   remediation: >-
#     Route only /v2 and what `exposure.public` enables (docs: /docs and /openapi.json; ui: /ui); let mlgit render the
#     routes rather than editing deploy/ by hand.
package mlgit.public_paths

import data.mlgit.lib

# Whole path segments, as Ingress Prefix and HTTPRoute PathPrefix match them.
under(path, prefix) if path == prefix

under(path, prefix) if startswith(path, concat("", [prefix, "/"]))

public(path) if under(path, "/v2")

public(path) if under(path, "/docs")

public(path) if path == "/openapi.json"

public(path) if under(path, "/ui")

# The Open Inference Protocol's gRPC service: gRPC requests are POSTs to /<service>/<method>.
grpc_service := "inference.GRPCInferenceService"

public(path) if under(path, concat("", ["/", grpc_service]))

message(path) := concat("", [
	"routes ", path,
	" to the public; expose only /v2 and the extras exposure.public enables (/docs, /openapi.json, /ui)",
])

deny contains result if {
	some ingress in lib.of_kind("Ingress")
	object.get(ingress.spec, "defaultBackend", null) != null
	result := lib.finding(ingress, "has a defaultBackend, which routes every path; route /v2 through rules instead")
}

deny contains result if {
	some ingress in lib.of_kind("Ingress")
	some rule in object.get(ingress.spec, "rules", [])
	some p in object.get(object.get(rule, "http", {}), "paths", [])
	path := object.get(p, "path", "/")
	not public(path)
	result := lib.finding(ingress, message(path))
}

deny contains result if {
	some route in lib.of_kind("HTTPRoute")
	some rule in object.get(route.spec, "rules", [])
	count(object.get(rule, "matches", [])) == 0
	result := lib.finding(route, "has a rule without matches, which routes every path; match /v2 instead")
}

deny contains result if {
	some route in lib.of_kind("HTTPRoute")
	some rule in object.get(route.spec, "rules", [])
	some match in object.get(rule, "matches", [])
	path := object.get(match, "path", {})
	object.get(path, "type", "PathPrefix") == "RegularExpression"
	result := lib.finding(route, "matches a regular expression, which cannot be judged; match /v2 as PathPrefix instead")
}

deny contains result if {
	some route in lib.of_kind("HTTPRoute")
	some rule in object.get(route.spec, "rules", [])
	some match in object.get(rule, "matches", [])
	path := object.get(match, "path", {})
	object.get(path, "type", "PathPrefix") != "RegularExpression"
	value := object.get(path, "value", "/")
	not public(value)
	result := lib.finding(route, message(value))
}

deny contains result if {
	some route in lib.of_kind("GRPCRoute")
	some rule in object.get(route.spec, "rules", [])
	count(object.get(rule, "matches", [])) == 0
	result := lib.finding(route, concat("", [
		"has a rule without matches, which routes every gRPC service; match service ", grpc_service, " instead",
	]))
}

deny contains result if {
	some route in lib.of_kind("GRPCRoute")
	some rule in object.get(route.spec, "rules", [])
	some match in object.get(rule, "matches", [])
	object.get(object.get(match, "method", {}), "type", "Exact") == "RegularExpression"
	result := lib.finding(route, concat("", [
		"matches gRPC services by a regular expression, which cannot be judged; match service ", grpc_service,
		" (type Exact) instead",
	]))
}

deny contains result if {
	some route in lib.of_kind("GRPCRoute")
	some rule in object.get(route.spec, "rules", [])
	some match in object.get(rule, "matches", [])
	method := object.get(match, "method", {})
	object.get(method, "type", "Exact") == "Exact"
	# The CRD admits only dotted identifiers here, so the message can name it.
	service := object.get(method, "service", "(any)")
	service != grpc_service
	result := lib.finding(route, concat("", [
		"routes gRPC service ", service, " to the public; match only service ", grpc_service,
	]))
}

deny contains result if {
	some route in lib.of_kind("Route")
	path := object.get(route.spec, "path", "/")
	not public(path)
	result := lib.finding(route, message(path))
}
