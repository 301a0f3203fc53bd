"""Kubernetes manifests: the kustomize tree under deploy/ (render), its image pins, and building it."""

# mlgit.render registers this package's renderer and the renderer imports mlgit.render's modules:
# loading mlgit.render first keeps `import mlgit.manifests.render` from meeting a half-loaded module.
import mlgit.render  # noqa: F401
