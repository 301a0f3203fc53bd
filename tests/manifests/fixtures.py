"""Session fixtures of the manifest cases (a pytest plugin, tests/conftest.py): each case is created, rendered
and built once per session: kustomize runs take 0.1-0.5 s each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlgit.config.load import load_project
from mlgit.manifests.build import build_env_yaml
from mlgit.manifests.kustomize import kustomize
from mlgit.manifests.render import DEPLOY
from mlgit.targets import REVIEW, known_targets
from tests.manifests.cases import Built, build_args, make_case


@pytest.fixture(scope="session")
def case_repo(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    made: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in made:
            made[case] = make_case(case, tmp_path_factory.mktemp(case))
        return made[case]

    return get


@pytest.fixture(scope="session")
def built(case_repo: Callable[[str], Path]) -> Callable[[str], Built]:
    done: dict[str, Built] = {}

    def get(case: str) -> Built:
        if case not in done:
            root = case_repo(case)
            project = load_project(root)
            # Without a slug or an image, build_env_yaml is exactly `kubectl kustomize` of the overlay.
            plain = {env: kustomize(root / DEPLOY / "overlays" / env) for env in known_targets(project.config)}
            yaml = {env: out.yaml for env, out in plain.items()}
            if REVIEW in yaml:
                yaml[REVIEW] = build_env_yaml(project, REVIEW, **build_args(root, REVIEW))
            # An environment with instances deploys them, each built from deploy/instances/<env>/<instance>.
            for env, cfg in project.config.environments.items():
                if cfg.instances:
                    yaml[env] = build_env_yaml(project, env)
            done[case] = Built(yaml=yaml, warnings={env: out.warnings for env, out in plain.items()})
        return done[case]

    return get
