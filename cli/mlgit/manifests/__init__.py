"""Kubernetes manifests: the kustomize tree under deploy/ (render), its image pins, and building it."""
