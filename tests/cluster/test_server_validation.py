"""Every example and golden variant, every environment, as the real API server sees it: a server-side
dry run (`kubectl apply --server-side --dry-run=server`, strict field validation) against the control
plane, whose CRDs (cert-manager, Gateway API, prometheus-operator) come from those projects' own Go types
(tests/cluster/crds.sh). The offline schema tests check the same files without a server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from ruamel.yaml import YAML

from tests.cluster.kube import Kube
from tests.manifests.cases import CASES, Built

ENVIRONMENTS = ("dev", "staging", "prod", "review")


def _namespaces(text: str) -> set[str]:
    documents = YAML(typ="safe", pure=True).load_all(text)
    return {d["metadata"]["namespace"] for d in documents if d and d["metadata"].get("namespace")}


@pytest.fixture(scope="module")
def namespaces(kube: Kube) -> Iterator[Callable[[set[str]], None]]:
    """Creates the namespaces a build names (a dry run cannot create them), and removes them afterwards."""
    made: set[str] = set()

    def ensure(wanted: set[str]) -> None:
        for namespace in sorted(wanted - made):
            if kube.get("namespace", namespace) is None:
                kube.create_namespace(namespace)
                made.add(namespace)

    yield ensure
    if made:
        kube.run("delete", "namespace", *sorted(made), "--wait=false", "--ignore-not-found")


@pytest.mark.parametrize("case", CASES)
def test_the_api_server_accepts_every_environment(
    case: str, built: Callable[[str], Built], kube: Kube, namespaces: Callable[[set[str]], None]
) -> None:
    for env, text in built(case).yaml.items():
        assert env in ENVIRONMENTS
        namespaces(_namespaces(text))
        result = kube.run(
            "apply", "--server-side", "--dry-run=server", "--validate=strict", "--field-manager", "mlgit",
            "-f", "-", stdin=text, check=False,
        )  # fmt: skip
        assert result.returncode == 0, f"{case}/{env}: {result.stderr}"
        assert "(server dry run)" in result.stdout
