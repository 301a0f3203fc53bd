"""The model image under OpenShift's restricted SCC: an arbitrary uid in group 0, a read-only root filesystem
and a tmpfs /tmp (`docker run --user 1234567:0 --read-only --tmpfs /tmp`), on the real Docker engine.

The model repository's files are written 0600, as an exporter that saves through mkstemp + rename leaves
them: the image must still be readable by a uid it has never heard of."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tritonclient.http as triton

from mlgit.build.run import wait_ready
from mlgit.config.load import load_project
from mlgit.samples.tensors import OIP_TO_NUMPY, compare_outputs
from tests.build.fixtures import mlgit_ok
from tests.conftest import free_port

pytestmark = pytest.mark.integration
RANDOM_UID = "1234567:0"  # what OpenShift's restricted-v2 SCC picks from the namespace's range, with gid 0


@pytest.fixture
def private_files_image(docker_client: Any, cpu_runtime_image: str, example: Callable[[str], Path]) -> Iterator[str]:
    """The iris model image built from a repository whose model, sample and settings are mode 0600."""
    repo = example("iris-classifier")
    project = load_project(repo)
    for path in (
        repo / project.config.model.path,
        repo / project.config.model.sample.path,
        repo / "model-settings.json",
    ):
        path.chmod(0o600)
    reference = f"mlgit-test/random-uid:{uuid.uuid4().hex[:12]}"
    mlgit_ok("build", repo, "--runtime-image", cpu_runtime_image, "--tag", reference)
    yield reference
    import docker.errors

    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(reference, force=True)


def test_the_model_image_serves_under_a_random_uid_in_group_0_with_a_read_only_root(
    docker_client: Any, private_files_image: str, iris_repo: Path
) -> None:
    project = load_project(iris_repo)
    port = free_port()
    container = docker_client.containers.run(
        private_files_image,
        detach=True,
        user=RANDOM_UID,
        read_only=True,
        tmpfs={"/tmp": "rw,nosuid,nodev,mode=1777"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        ports={"8080/tcp": ("127.0.0.1", port)},
    )
    try:
        wait_ready(container, f"http://127.0.0.1:{port}", timeout=120)
        assert container.exec_run(["id", "-u"]).output.decode().strip() == RANDOM_UID.split(":")[0]
        # HOME is usable without a passwd entry; nothing outside /tmp is.
        assert container.exec_run(["sh", "-c", 'touch "$HOME/x"']).exit_code == 0
        assert container.exec_run(["sh", "-c", "touch /models/x"]).exit_code != 0

        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        inputs = []
        for tensor in project.sample["inputs"]:
            item = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
            data = OIP_TO_NUMPY[tensor["datatype"]](tensor["data"]).reshape(tensor["shape"])
            item.set_data_from_numpy(data)
            inputs.append(item)
        result = client.infer(project.config.name, inputs)
        actual = {t["name"]: result.as_numpy(t["name"]) for t in project.sample["expected_outputs"]}
        sample = project.config.model.sample
        assert compare_outputs(project.sample["expected_outputs"], actual, sample.rtol, sample.atol) == []
    finally:
        container.remove(force=True)
