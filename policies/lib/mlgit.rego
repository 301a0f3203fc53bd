# METADATA
# title: mlgit policy library
# description: |-
#   The one package that knows the shape of the input document, so that porting the policies
#   (e.g. to Gatekeeper, whose input is `review.object` plus `parameters`) means changing this file only.
#   An environment's input is {"context": {...}, "resources": [k8s objects]}; the pipeline's input is
#   {"context": {...}, "pipeline": {<job name>: <job>, ...}} with `extends` already resolved.
package mlgit.lib

resources := object.get(input, "resources", [])

context := object.get(input, "context", {})

model := object.get(context, "model", {})

tier := object.get(context, "tier", "other")

# Tiers that run real traffic or rehearse it: pinned images, TLS and the like apply in full.
release_tiers := {"production", "staging"}

namespace(r) := object.get(r.metadata, "namespace", object.get(context, "namespace", ""))

# How every message names a resource: kubectl's `Kind namespace/name`.
ref(r) := sprintf("%s %s/%s", [r.kind, namespace(r), r.metadata.name])

# A deny/warn result: conftest shows `msg` and keeps the other keys as metadata; mlgit uses
# `resource` to group findings and to match waivers. concat, not sprintf: rego-cpp's sprintf %s
# quotes a string that comes from a function argument or from concat (policies follow the same rule).
finding(r, msg) := {
	"msg": concat("", [ref(r), ": ", msg]),
	"resource": {"kind": r.kind, "namespace": namespace(r), "name": r.metadata.name},
}

pod_template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

pod_spec(r) := r.spec.template.spec if r.kind in pod_template_kinds

pod_spec(r) := r.spec if r.kind == "Pod"

pod_spec(r) := r.spec.jobTemplate.spec.template.spec if r.kind == "CronJob"

pod_labels(r) := object.get(object.get(r.spec.template, "metadata", {}), "labels", {}) if r.kind in pod_template_kinds

pod_labels(r) := object.get(object.get(r.spec.jobTemplate.spec.template, "metadata", {}), "labels", {}) if r.kind == "CronJob"

pod_labels(r) := object.get(r.metadata, "labels", {}) if r.kind == "Pod"

# Every pod template, flattened once per evaluation: policies iterate these small records rather than
# passing whole objects to functions, which rego-cpp re-evaluates on every call.
pods := [pod |
	some r in resources
	spec := pod_spec(r)
	containers := object.get(spec, "containers", [])
	pod := {
		"kind": r.kind,
		"metadata": {"name": r.metadata.name, "namespace": namespace(r)},
		"spec": spec,
		"labels": pod_labels(r),
		"containers": containers,
		"all_containers": array.concat(object.get(spec, "initContainers", []), containers),
		# The container that serves the model: mlgit names it `server` (zero or one of them).
		"server": [c | some c in containers; c.name == "server"],
	}
]

of_kind(kind) := [r | some r in resources; r.kind == kind]

# A label selector (matchLabels) selects these labels. matchExpressions are not interpreted.
selects(selector, labels) if {
	every k, v in object.get(selector, "matchLabels", {}) {
		labels[k] == v
	}
}

# A toleration for nvidia.com/gpu taints (device plugin convention).
tolerates_gpu(spec) if {
	some t in object.get(spec, "tolerations", [])
	t.key == "nvidia.com/gpu"
}

tolerates_gpu(spec) if {
	some t in object.get(spec, "tolerations", [])
	t.operator == "Exists"
	not t.key
}

gpu_model if model.device == "gpu"

# --- the generated .gitlab-ci.yml -------------------------------------------------------------

pipeline := object.get(input, "pipeline", {})

pipeline_keywords := {
	"default", "include", "stages", "variables", "workflow", "image", "services", "cache",
	"before_script", "after_script", "spec",
}

# Jobs by name; hidden jobs (.name) are templates, merged into real jobs through `extends`.
jobs[name] := job if {
	some name, job in pipeline
	not name in pipeline_keywords
	not startswith(name, ".")
	is_object(job)
}

job_environment(job) := {"name": job.environment} if is_string(job.environment)

job_environment(job) := job.environment if is_object(job.environment)

# Jobs that deploy (start) an environment, with that environment.
deploy_jobs[name] := env if {
	some name, job in jobs
	env := job_environment(job)
	object.get(env, "action", "start") == "start"
}

# GitLab's deployment_tier, else the tier mlgit.yaml gives the environment of that name.
environment_tier(env) := env.deployment_tier

environment_tier(env) := object.get(object.get(context, "tiers", {}), env.name, "other") if not env.deployment_tier

job_finding(name, msg) := {
	"msg": concat("", ["job ", name, ": ", msg]),
	"resource": {"kind": "Job", "namespace": "", "name": name},
}

# --- image references -------------------------------------------------------------------------

# "registry:5000/group/name:tag@sha256:..." -> "registry:5000/group/name:tag"
image_name(image) := split(image, "@")[0]

image_tag(image) := tag if {
	parts := split(image_name(image), "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	tag := split(last, ":")[1]
}

image_registry(image) := first if {
	first := split(image, "/")[0]
	count(split(image, "/")) > 1
	regex.match(`[.:]|^localhost$`, first)
}

image_registry(image) := "docker.io" if {
	parts := split(image, "/")
	not regex.match(`[.:]|^localhost$`, parts[0])
}

image_registry(image) := "docker.io" if count(split(image, "/")) == 1

pinned(image) if regex.match(`@sha256:[a-f0-9]{64}$`, image)

# --- workloads and what scales and protects them ----------------------------------------------

production if tier == "production"

# A canary (docs/canary.md): the Deployment beside the stable whose pods carry mlgit.dev/track canary. It runs a
# few pods for a while; the stable carries the environment's availability (replicas, PodDisruptionBudget,
# autoscaling), and MLGIT-IMG-005 judges the canary's image.
canary(labels) if labels["mlgit.dev/track"] == "canary"

# The workload `r` is a canary. A function of its own so that `not canary_workload(r)` holds for a workload
# without a pod template: OPA moves a call nested in `not` out of the negation, where undefined fails the rule.
canary_workload(r) if canary(pod_labels(r))

deployments := of_kind("Deployment")

# The HorizontalPodAutoscaler that scales the workload `kind`/`name`, if any.
autoscaler(kind, name) := hpa if {
	some hpa in of_kind("HorizontalPodAutoscaler")
	hpa.spec.scaleTargetRef.kind == kind
	hpa.spec.scaleTargetRef.name == name
}
