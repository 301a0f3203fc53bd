"""GitLab CI: the model repository's .gitlab-ci.yml, mlgit's CI/CD component, and the jobs' helpers."""
