# METADATA
# title: The request body limit fits the model's largest input
# description: |-
#   ingress-nginx rejects bodies larger than nginx.ingress.kubernetes.io/proxy-body-size (default 1m)
#   with an HTML 413 that OIP v2 clients cannot parse. The limit must admit the model's largest input:
#   a full batch (`serving.batching.max_batch_size` rows, or the sample's batch without batching) of
#   every input tensor in binary form.
# custom:
#   id: MLGIT-ML-003
#   severity: deny
#   remediation: >-
#     Set nginx.ingress.kubernetes.io/proxy-body-size (mlgit renders it from `serving.max_request_bytes`) to at least the model's largest input.
package mlgit.body_size

import data.mlgit.lib

annotation := "nginx.ingress.kubernetes.io/proxy-body-size"

# ingress-nginx's own default when the annotation is absent.
nginx_default := 1048576

size_units := {"k": 1024, "m": 1048576, "g": 1073741824}

nginx_bytes(s) := to_number(s) if regex.match(`^[0-9]+$`, s)

nginx_bytes(s) := to_number(substring(s, 0, count(s) - 1)) * size_units[lower(substring(s, count(s) - 1, 1))] if {
	regex.match(`^[0-9]+[kKmMgG]$`, s)
}

nginx(r) if r.spec.ingressClassName == "nginx"

nginx(r) if r.metadata.annotations["kubernetes.io/ingress.class"] == "nginx"

nginx(r) if r.metadata.annotations[annotation]

limit(r) := nginx_bytes(r.metadata.annotations[annotation])

limit(r) := nginx_default if not r.metadata.annotations[annotation]

largest := object.get(lib.model, "largest_input_bytes", 0)

mib(n) := ceil(n / 1048576)

deny contains result if {
	some r in lib.of_kind("Ingress")
	nginx(r)
	object.get(object.get(r.metadata, "annotations", {}), annotation, "") != "0"
	limit(r) < largest
	# format_int, not sprintf's %v: conftest reads input numbers as floats, and Go prints a float
	# of a million or more as 3.145728e+06.
	result := lib.finding(r, concat("", [
		"accepts request bodies up to ", format_int(limit(r), 10), " bytes but the model's largest input is ",
		format_int(largest, 10), " bytes; set ", annotation, " to at least ", format_int(mib(largest), 10), "m",
	]))
}

deny contains result if {
	some r in lib.of_kind("Ingress")
	value := r.metadata.annotations[annotation]
	not nginx_bytes(value)
	result := lib.finding(r, sprintf("%s is %s, which ingress-nginx cannot read; use a size such as 64m", [annotation, value]))
}
