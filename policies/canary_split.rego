# METADATA
# title: A canary's share of requests is a whole percent, and goes to running pods
# description: |-
#   The weights that split an environment's requests between the stable and the canary Service (a Service
#   selecting the pods of a Deployment labelled mlgit.dev/track canary) are whole numbers from 0 to 100 that add
#   up to 100: the backendRefs of an HTTPRoute or GRPCRoute rule, an OpenShift Route's `to` and alternateBackends, and
#   ingress-nginx's canary-weight annotation (with canary-weight-total 100). A canary with 0 replicas gets weight
#   0, and a Gateway's RequestMirror to it copies 0 percent, so no request goes to a Service without endpoints.
# custom:
#   id: MLGIT-REL-005
#   severity: deny
#   remediation: >-
#     Change the weight with `mlgit canary weight` (it writes canary-weight and stable-weight in the pin file),
#     never the route by hand; give the canary replicas before any weight.
package mlgit.canary_split

import data.mlgit.lib

canary_deployments := [d | some d in lib.deployments; lib.canary(lib.pod_labels(d))]

# Services that send requests to a canary's pods, and that canary's replicas.
canary_services[name] := replicas if {
	some s in lib.of_kind("Service")
	selector := object.get(s.spec, "selector", {})
	count(selector) > 0
	some d in canary_deployments
	lib.selects({"matchLabels": selector}, lib.pod_labels(d))
	name := s.metadata.name
	replicas := object.get(d.spec, "replicas", 1)
}

# Canary Services some route sends a share of requests to (weight > 0). A canary with such traffic, or with
# replicas, runs (mlgit.canary_images running_canary; CanaryState.running in mlgit.manifests.canary_state).
weighted contains b.name if {
	some [r, i] in canary_rules
	some b in r.spec.rules[i].backendRefs
	canary_services[b.name]
	object.get(b, "weight", 1) > 0
}

weighted contains b.name if {
	some r in canary_routes
	some b in route_backends(r)
	canary_services[b.name]
	object.get(b, "weight", 100) > 0
}

weighted contains svc if {
	some [r, svc] in canary_ingresses
	annotation(r, "canary-weight", "0") != "0"
}

whole_percent(w) if {
	is_number(w)
	w == floor(w)
	w >= 0
	w <= 100
}

# --- Gateway API: the backendRefs of a rule (HTTPRoute or GRPCRoute) that sends requests to a canary ----

canary_rules contains [r, i] if {
	some kind in ["HTTPRoute", "GRPCRoute"]
	some r in lib.of_kind(kind)
	some i, rule in object.get(r.spec, "rules", [])
	some b in object.get(rule, "backendRefs", [])
	canary_services[b.name]
}

deny contains result if {
	some [r, i] in canary_rules
	some b in r.spec.rules[i].backendRefs
	weight := object.get(b, "weight", 1)
	not whole_percent(weight)
	result := lib.finding(r, concat("", [
		"backendRef ", b.name, " has weight ", sprintf("%v", [weight]), ", not a whole percent from 0 to 100",
	]))
}

deny contains result if {
	some [r, i] in canary_rules
	total := sum([object.get(b, "weight", 1) | some b in r.spec.rules[i].backendRefs])
	total != 100
	result := lib.finding(r, concat("", [
		"the weights of the rule that splits requests with the canary add up to ", sprintf("%v", [total]),
		", not 100",
	]))
}

deny contains result if {
	some [r, i] in canary_rules
	some b in r.spec.rules[i].backendRefs
	object.get(b, "weight", 1) > 0
	canary_services[b.name] == 0
	result := lib.finding(r, concat("", ["sends requests to canary Service ", b.name, ", whose pods run 0 replicas"]))
}

deny contains result if {
	some r in lib.of_kind("HTTPRoute")
	some rule in object.get(r.spec, "rules", [])
	some f in object.get(rule, "filters", [])
	f.type == "RequestMirror"
	name := f.requestMirror.backendRef.name
	canary_services[name] == 0
	object.get(f.requestMirror, "percent", 100) > 0
	result := lib.finding(r, concat("", [
		"mirrors requests to canary Service ", name, ", whose pods run 0 replicas; mirror-percent follows the ",
		"replicas in the pin file",
	]))
}

# --- OpenShift Route: to and alternateBackends --------------------------------------------------------

route_backends(r) := array.concat([r.spec.to], object.get(r.spec, "alternateBackends", []))

canary_routes contains r if {
	some r in lib.of_kind("Route")
	some b in route_backends(r)
	canary_services[b.name]
}

deny contains result if {
	some r in canary_routes
	some b in route_backends(r)
	weight := object.get(b, "weight", 100)
	not whole_percent(weight)
	result := lib.finding(r, concat("", [
		"backend ", b.name, " has weight ", sprintf("%v", [weight]), ", not a whole percent from 0 to 100",
	]))
}

deny contains result if {
	some r in canary_routes
	total := sum([object.get(b, "weight", 100) | some b in route_backends(r)])
	total != 100
	result := lib.finding(r, concat("", [
		"the weights of the Route that splits requests with the canary add up to ", sprintf("%v", [total]),
		", not 100",
	]))
}

deny contains result if {
	some r in canary_routes
	some b in route_backends(r)
	object.get(b, "weight", 100) > 0
	canary_services[b.name] == 0
	result := lib.finding(r, concat("", ["sends requests to canary Service ", b.name, ", whose pods run 0 replicas"]))
}

# --- ingress-nginx: the canary Ingress's annotations ----------------------------------------------------

nginx := "nginx.ingress.kubernetes.io/"

canary_ingresses[r.metadata.name] := [r, svc] if {
	some r in lib.of_kind("Ingress")
	object.get(object.get(r.metadata, "annotations", {}), concat("", [nginx, "canary"]), "") == "true"
	some rule in object.get(r.spec, "rules", [])
	some p in object.get(object.get(rule, "http", {}), "paths", [])
	svc := p.backend.service.name
	canary_services[svc]
}

annotation(r, key, fallback) := object.get(object.get(r.metadata, "annotations", {}), concat("", [nginx, key]), fallback)

deny contains result if {
	some [r, _] in canary_ingresses
	weight := annotation(r, "canary-weight", "0")
	not regex.match(`^(100|[1-9]?[0-9])$`, weight)
	result := lib.finding(r, concat("", [
		"annotation ", nginx, "canary-weight is ", weight, ", not a whole percent from 0 to 100",
	]))
}

deny contains result if {
	some [r, _] in canary_ingresses
	total := annotation(r, "canary-weight-total", "100")
	total != "100"
	result := lib.finding(r, concat("", [
		"annotation ", nginx, "canary-weight-total is ", total, "; set it to 100 so the weight is a percent",
	]))
}

deny contains result if {
	some [r, svc] in canary_ingresses
	annotation(r, "canary-weight", "0") != "0"
	canary_services[svc] == 0
	result := lib.finding(r, concat("", ["sends requests to canary Service ", svc, ", whose pods run 0 replicas"]))
}
