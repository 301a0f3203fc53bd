"""Policy checks: Rego policies (mlgit's and a team's) evaluated in-process over each environment."""
