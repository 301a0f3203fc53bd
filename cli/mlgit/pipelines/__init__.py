"""GitLab CI: the model repository's .gitlab-ci.yml, mlgit's CI/CD component, and the jobs' helpers."""

# The render entry point imports this package's renderer, which imports mlgit.render.files: load the
# entry point first, so that importing mlgit.pipelines.render on its own cannot meet a half-built cycle.
import mlgit.render  # noqa: F401
