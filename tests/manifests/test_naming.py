"""Generated names: what two models sharing a namespace must not share, and the environment names that
would be mistaken for review apps."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mlgit.config.schema import MlgitConfig
from mlgit.targets import target


def _config(name: str, environments: dict[str, Any], **extra: Any) -> MlgitConfig:
    return MlgitConfig.model_validate(
        {"name": name, "domain": "models.acme.io", "image": {"repository": f"registry.acme.io/ml/{name}"},
         "environments": environments, **extra}
    )  # fmt: skip


def test_two_models_in_one_namespace_share_no_name_and_no_selector() -> None:
    """Model `a` environment `b-c` and model `a-b` environment `c` default to the same namespace."""
    first, second = target(_config("a", {"b-c": {}}), "b-c"), target(_config("a-b", {"c": {}}), "c")
    assert first.namespace == second.namespace == "a-b-c"
    assert first.tls_secret != second.tls_secret
    assert (first.tls_secret, second.tls_secret) == ("a-tls", "a-b-tls")
    assert first.name != second.name and first.host != second.host
    # Selectors are app.kubernetes.io/name plus the instance: the instance alone is the same for both.
    assert first.instance == second.instance
    assert (first.labels["app.kubernetes.io/name"], first.instance) != (
        second.labels["app.kubernetes.io/name"],
        second.instance,
    )


def test_in_a_namespace_every_target_has_its_own_tls_secret() -> None:
    """Environment qa shares the review namespace: it and the review apps (even slug qa) differ."""
    config = _config("m", {"dev": {}, "prod": {}, "qa": {"namespace": "m-review"}})
    targets = [target(config, env) for env in config.environments]
    targets += [target(config, "review", slug) for slug in ("x", "dev", "qa")]
    by_namespace: dict[str, list[str]] = {}
    for t in targets:
        by_namespace.setdefault(t.namespace, []).append(t.tls_secret)
    assert by_namespace["m-review"] == ["m-tls", "m-x-tls", "m-dev-tls", "m-qa-tls"]
    assert all(len(set(secrets)) == len(secrets) for secrets in by_namespace.values())


@pytest.mark.parametrize(
    "environment",
    [{"review-x": {"namespace": "m-review"}}, {"dev": {}, "review-x": {"namespace": "shared"}}],
)
def test_an_environment_named_like_a_review_app_in_the_review_namespace_is_rejected(
    environment: dict[str, Any],
) -> None:
    review = {"namespace": "shared"} if "dev" in environment else {}
    with pytest.raises(ValidationError) as error:
        _config("m", environment, review=review)
    message = str(error.value)
    assert "environments.review-x: in the review namespace" in message
    assert "review app for branch slug 'x'" in message and "rename the environment" in message


def test_review_prefixed_environment_elsewhere_or_without_review_apps_is_fine() -> None:
    assert target(_config("m", {"review-x": {}}), "review-x").namespace == "m-review-x"
    config = _config("m", {"review-x": {"namespace": "m-review"}}, review={"enabled": False})
    assert target(config, "review-x").namespace == "m-review"
