# METADATA
# title: Review environments stop by themselves
# description: |-
#   A job deploying a review app (an environment named review/...) sets environment.auto_stop_in, so a
#   forgotten merge request does not keep a model server, and maybe a GPU, running for ever.
# custom:
#   id: MLGIT-CI-003
#   severity: deny
#   remediation: >-
#     Set `review.auto_stop_in` in mlgit.yaml (default 3 days) and `mlgit render`.
package mlgit.ci_review_auto_stop

import data.mlgit.lib

deny contains result if {
	some name, env in lib.deploy_jobs
	startswith(env.name, "review/")
	not env.auto_stop_in
	result := lib.job_finding(name, sprintf("review environment %s has no auto_stop_in; add one (e.g. 3 days)", [env.name]))
}
