"""Cluster operations behind `mlgit deploy`, `destroy`, `status` and `rollback`.

Everything talks to the API server through the kubernetes client's DynamicClient: the typed APIs
reject integer quantities (`nvidia.com/gpu: 1`) that kustomize emits, the dynamic one does not.
"""
