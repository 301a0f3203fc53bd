# The image every model-repository job runs in (MLGIT_CLI_IMAGE): mlgit, kubectl for kustomize and the
# GitLab agent's kube context, and onnxruntime + pytest for the model smoke test (`pytest tests/`).
# Built by mlgit's own pipeline from the repository root: buildah bud -f pipelines/cli.Dockerfile .
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ARG KUBECTL_VERSION=v1.32.0
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git \
 && rm -rf /var/lib/apt/lists/* \
 && curl -fsSLo /usr/local/bin/kubectl "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/amd64/kubectl" \
 && curl -fsSL "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/amd64/kubectl.sha256" \
    | sed 's#$#  /usr/local/bin/kubectl#' | sha256sum -c - \
 && chmod 0755 /usr/local/bin/kubectl
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . "onnxruntime>=1.20" "pytest>=8" && rm -rf /src
WORKDIR /
