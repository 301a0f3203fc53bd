"""The gRPC exposure of an environment (serving.grpc_port): overlays/<env>/grpc-exposure.yaml.

Beside the HTTP exposure, never inside it: an Ingress <name>-grpc on the same host and certificate, or a
GRPCRoute <name> on the same Gateway under grpc.<host> (Target.grpc_host says why), and a NetworkPolicy
admitting the same namespaces to the pods' grpc port. Probes stay HTTP. In a canary environment the GRPCRoute
has the canary's backendRef too, and ingress-nginx a canary Ingress <name>-grpc-canary: the weights are the
pin file's, copied in by the overlay's replacements (mlgit.manifests.canary).
"""

from __future__ import annotations

from mlgit.config.schema import MlgitConfig
from mlgit.manifests.canary import canary_route
from mlgit.targets import Target
from mlgit.templating import render_template

# The Open Inference Protocol v2 gRPC service: the only one exposed (no reflection, no grpc.health).
GRPC_SERVICE = "inference.GRPCInferenceService"
BACKEND_PROTOCOL = "nginx.ingress.kubernetes.io/backend-protocol"


def grpc_annotations(tgt: Target, http_annotations: dict[str, str]) -> dict[str, str]:
    """The HTTP route's annotations (limits, timeouts, the user's), without cert-manager's, and for ingress-nginx
    the GRPC backend protocol. The HTTP Ingress's issuer annotation already issues the shared Secret: a second
    Ingress asking cert-manager for the same Secret would contend for its Certificate."""
    annotations = {k: v for k, v in http_annotations.items() if not k.startswith("cert-manager.io/")}
    if tgt.exposure.kind == "ingress" and "nginx" in tgt.exposure.ingress_class:
        annotations[BACKEND_PROTOCOL] = "GRPC"
    return annotations


def grpc_exposure_yaml(config: MlgitConfig, tgt: Target, http_annotations: dict[str, str]) -> str:
    """The objects that expose `tgt` over gRPC (kinds ingress and gateway: config validation refuses route)."""
    assert config.serving.grpc_port is not None and tgt.exposure.kind in ("ingress", "gateway")
    annotations = grpc_annotations(tgt, http_annotations)
    return render_template(
        "manifests",
        "overlays/env/grpc-exposure.yaml.j2",
        name=tgt.name,
        model=config.name,
        service=tgt.name,
        namespace=tgt.namespace,
        host=tgt.host,
        grpc_host=tgt.grpc_host,
        grpc_port=config.serving.grpc_port,
        grpc_service=GRPC_SERVICE,
        # Ingress: the HTTP Ingress's Secret; Gateway: a certificate of its own for grpc.<host>.
        secret=tgt.tls_secret if tgt.exposure.kind == "ingress" else f"{tgt.name}-grpc-tls",
        exposure=tgt.exposure,
        tls=tgt.tls,
        annotations=annotations,
        # A canary environment splits gRPC as it splits HTTP, from the same pin-file weights (docs/canary.md);
        # ingress-nginx's canary Ingress takes its other annotations from the main one, but says GRPC itself.
        canary=canary_route(tgt),
        canary_annotations={k: v for k, v in annotations.items() if k == BACKEND_PROTOCOL},
        allowed_namespaces=tgt.allowed_namespaces,
    )
