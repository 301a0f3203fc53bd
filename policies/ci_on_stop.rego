# METADATA
# title: Every deploy job has an on_stop job
# description: |-
#   Every pipeline job that deploys an environment names, in environment.on_stop, a job that exists
#   and stops that same environment (environment.action: stop), so GitLab can tear it down: by hand,
#   when a merge request closes, or when auto_stop_in expires.
# custom:
#   id: MLGIT-CI-001
#   severity: deny
#   remediation: >-
#     Regenerate the pipeline with `mlgit render`; a hand-written deploy job needs a matching destroy job.
package mlgit.ci_on_stop

import data.mlgit.lib

deny contains result if {
	some name, env in lib.deploy_jobs
	not env.on_stop
	result := lib.job_finding(name, sprintf("deploys environment %s without environment.on_stop; add a stop job and name it there", [env.name]))
}

deny contains result if {
	some name, env in lib.deploy_jobs
	not lib.jobs[env.on_stop]
	result := lib.job_finding(name, sprintf("environment.on_stop names %s, which is not a job of this pipeline", [env.on_stop]))
}

deny contains result if {
	some name, env in lib.deploy_jobs
	stop := lib.job_environment(lib.jobs[env.on_stop])
	not stop_matches(stop, env)
	result := lib.job_finding(name, sprintf(
		"its on_stop job %s must set environment name %s with action: stop",
		[env.on_stop, env.name],
	))
}

stop_matches(stop, env) if {
	stop.name == env.name
	stop.action == "stop"
}
