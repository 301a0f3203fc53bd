# METADATA
# title: Production deploys are manual and only from the default branch
# description: |-
#   A job deploying a production-tier environment runs only when a person starts it (when: manual)
#   and only on the default branch: every rule that can run it tests
#   `$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH` (never a hard-coded branch name, never with ||).
# custom:
#   id: MLGIT-CI-002
#   severity: deny
#   remediation: >-
#     Keep `environments.<prod>.deploy: manual` and the rules mlgit renders; do not add rules that run it elsewhere.
package mlgit.ci_prod_deploy

import data.mlgit.lib

production_jobs[name] := lib.jobs[name] if {
	some name, env in lib.deploy_jobs
	lib.environment_tier(env) == "production"
}

# Rules that can start the job.
live_rules(job) := [rule | some rule in job.rules; object.get(rule, "when", "on_success") != "never"]

default_branch_only(rule) if {
	regex.match(`\$CI_COMMIT_(BRANCH|REF_NAME)\s*==\s*\$CI_DEFAULT_BRANCH|\$CI_DEFAULT_BRANCH\s*==\s*\$CI_COMMIT_(BRANCH|REF_NAME)`, rule["if"])
	not contains(rule["if"], "||")
}

manual(job) if {
	not job.rules
	job.when == "manual"
}

manual(job) if {
	job.rules
	count(live_rules(job)) > 0
	every rule in live_rules(job) {
		rule.when == "manual"
	}
}

deny contains result if {
	some name, job in production_jobs
	not manual(job)
	result := lib.job_finding(name, "deploys production automatically; every rule that runs it must say when: manual")
}

deny contains result if {
	some name, job in production_jobs
	not job.rules
	result := lib.job_finding(name, "deploys production without rules:; run it only `if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH`")
}

deny contains result if {
	some name, job in production_jobs
	some i, rule in job.rules
	object.get(rule, "when", "on_success") != "never"
	not default_branch_only(rule)
	# The rule is named by its position, not quoted: an `if:` usually holds `"` (a regex `\`), which
	# regopy hands back from concat/sprintf wrapped in stray quotes (policies/README.md).
	result := lib.job_finding(name, concat("", [
		"rules[", format_int(i, 10), "] can deploy production from another branch; ",
		"its if: must be `$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH` alone",
	]))
}
