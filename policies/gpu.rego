# METADATA
# title: GPU limits match the model, and GPU pods land on GPU nodes
# description: |-
#   A GPU model's server asks for exactly the configured number of `nvidia.com/gpu` and its pods
#   either tolerate the nvidia.com/gpu taint or select GPU nodes (nodeSelector/affinity); a CPU model
#   asks for no GPU at all, so it never holds an accelerator it cannot use.
# custom:
#   id: MLGIT-RES-002
#   severity: deny
#   remediation: >-
#     Set `serving.device` and `serving.gpus` in mlgit.yaml (with `serving.tolerations`/`serving.node_selector` for GPU nodes) and `mlgit render`.
package mlgit.gpu

import data.mlgit.lib

gpu_count(c) := to_number(object.get(object.get(object.get(c, "resources", {}), "limits", {}), "nvidia.com/gpu", 0))

gpu_requested(c) if object.get(object.get(c, "resources", {}), "requests", {})["nvidia.com/gpu"]

gpu_requested(c) if gpu_count(c) > 0

targets_gpu_nodes(spec) if lib.tolerates_gpu(spec)

targets_gpu_nodes(spec) if count(object.get(spec, "nodeSelector", {})) > 0

targets_gpu_nodes(spec) if spec.affinity.nodeAffinity

deny contains result if {
	lib.gpu_model
	some w in lib.pods
	count(w.server) > 0
	total := sum([gpu_count(c) | some c in w.all_containers])
	total != lib.model.gpus
	result := lib.finding(w, sprintf(
		"pods ask for %v nvidia.com/gpu but the model is configured for %v; set the server container's nvidia.com/gpu limit",
		[total, lib.model.gpus],
	))
}

deny contains result if {
	lib.gpu_model
	some w in lib.pods
	count(w.server) > 0
	not targets_gpu_nodes(w.spec)
	result := lib.finding(w, "GPU pods neither tolerate the nvidia.com/gpu taint nor select GPU nodes; add a toleration or a nodeSelector")
}

deny contains result if {
	not lib.gpu_model
	some w in lib.pods
	some c in w.all_containers
	gpu_requested(c)
	result := lib.finding(w, sprintf("container %s asks for nvidia.com/gpu but the model runs on CPU; remove the GPU request", [c.name]))
}
