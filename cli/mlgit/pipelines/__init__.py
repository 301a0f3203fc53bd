"""GitLab CI: the model repository's .gitlab-ci.yml and mlgit's CI/CD component."""
