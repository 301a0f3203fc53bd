"""mlgit.targets: the one place an environment's or review app's names, labels, selector, host, URL, tier
and Kubernetes context come from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlgit.cluster.client import _choose
from mlgit.config.schema import MlgitConfig
from mlgit.errors import MlgitError
from mlgit.targets import CI_SLUG, REVIEW, known_targets, pipeline_review_target, target


def _config(**extra: Any) -> MlgitConfig:
    return MlgitConfig.model_validate(
        {"name": "m", "domain": "models.acme.io", "image": {"repository": "registry.acme.io/ml/m"},
         "model": {"version": "3"}, **extra}
    )  # fmt: skip


def test_an_environment_names_labels_and_selects_its_objects() -> None:
    dev = target(_config(), "dev")
    assert (dev.env, dev.slug, dev.name, dev.instance, dev.environment_label) == ("dev", None, "m", "m-dev", "dev")
    assert (dev.namespace, dev.host, dev.display_name) == ("m-dev", "m.dev.models.acme.io", "dev")
    assert dev.labels == {
        "app.kubernetes.io/name": "m",
        "app.kubernetes.io/version": "3",
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "m",
        "app.kubernetes.io/managed-by": "mlgit",
        "mlgit.dev/model": "m",
        "mlgit.dev/environment": "dev",
    }
    assert dev.selector == "app.kubernetes.io/managed-by=mlgit,mlgit.dev/model=m,mlgit.dev/environment=dev"
    assert dev.tls_secret == "m-tls"


def test_a_review_app_is_named_after_its_slug() -> None:
    app = target(_config(), REVIEW, "fix-a")
    assert (app.name, app.instance, app.environment_label) == ("m-fix-a", "m-review-fix-a", "review-fix-a")
    assert (app.namespace, app.host, app.url) == ("m-review", "fix-a.m.review.models.acme.io",
                                                  "https://fix-a.m.review.models.acme.io")  # fmt: skip
    assert app.labels["mlgit.dev/environment"] == "review-fix-a"
    assert app.selector.endswith(",mlgit.dev/environment=review-fix-a")
    assert (app.display_name, app.tls_secret, app.create_namespace) == ("review (fix-a)", "m-fix-a-tls", True)
    assert (app.replicas, app.autoscaling, app.highly_available) == (1, None, False)


def test_the_review_overlay_has_no_slug_and_so_no_host() -> None:
    overlay = target(_config(), REVIEW, overlay=True)
    assert (overlay.name, overlay.instance, overlay.environment_label) == ("m", "m-review", "review")
    assert (overlay.host, overlay.url) == (None, None)


def test_the_pipeline_names_the_review_app_by_gitlabs_slug_variable() -> None:
    assert pipeline_review_target(_config()).url == "https://$CI_ENVIRONMENT_SLUG.m.review.models.acme.io"


@pytest.mark.parametrize(
    ("exposure", "tls", "url"),
    [
        ({"kind": "ingress"}, True, "https://m.dev.models.acme.io"),
        ({"kind": "ingress"}, False, "http://m.dev.models.acme.io"),
        ({"kind": "gateway", "gateway": {"name": "gw", "namespace": "gateways"}}, True, "https://m.dev.models.acme.io"),
        ({"kind": "gateway", "gateway": {"name": "gw", "namespace": "gateways"}}, False, "http://m.dev.models.acme.io"),
        ({"kind": "none"}, True, None),
    ],
)
def test_url_follows_exposure_and_tls_with_no_trailing_slash(
    exposure: dict[str, Any], tls: bool, url: str | None
) -> None:
    config = _config(exposure=exposure, tls={"enabled": tls}, review={"exposure": exposure, "tls": {"enabled": tls}})
    assert target(config, "dev").url == url
    review_url = url and url.replace("m.dev.", "x.m.review.")
    assert target(config, REVIEW, "x").url == review_url


def test_tier_comes_from_the_environment_and_review_apps_are_development() -> None:
    config = _config(environments={"dev": {}, "qa": {"tier": "testing"}, "prod": {}})
    tiers = {env: target(config, env, "x" if env == REVIEW else None).tier for env in known_targets(config)}
    assert tiers == {"dev": "development", "qa": "testing", "prod": "production", REVIEW: "development"}
    assert [env for env in ("dev", "qa", "prod") if target(config, env).production] == ["prod"]


@pytest.mark.parametrize(
    ("env", "slug", "message"),
    [
        ("qa", None, "unknown environment 'qa'"),
        ("dev", "x", "--slug is for review apps only"),
        (REVIEW, None, "needs its branch slug"),
        (REVIEW, "Not_A_Label", "not a DNS label"),
        (REVIEW, CI_SLUG, "not a DNS label"),  # only the pipeline renderer names GitLab's variable
        (REVIEW, "x" * 60, "too long for model 'm'"),
    ],
)
def test_what_names_no_target_is_refused(env: str, slug: str | None, message: str) -> None:
    with pytest.raises(MlgitError, match=message):
        target(_config(), env, slug)


def test_review_is_unknown_when_review_apps_are_off() -> None:
    config = _config(review={"enabled": False})
    assert known_targets(config) == ["dev", "staging", "prod"]
    with pytest.raises(MlgitError, match="unknown environment 'review'") as refused:
        target(config, REVIEW, "x")
    assert "and review" not in (refused.value.hint or "")


def test_context_is_the_flag_then_mlgit_yaml_then_the_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    contexts = [{"name": n, "context": {"cluster": "c", "user": "u"}} for n in ("current", "from-yaml", "flag")]
    kubeconfig.write_text(yaml.safe_dump({"contexts": contexts, "current-context": "current"}), encoding="utf-8")
    config = _config(
        environments={"dev": {"kube_context": "from-yaml"}, "staging": {}}, review={"kube_context": "from-yaml"}
    )

    def used(env: str, slug: str | None = None, flag: str | None = None) -> str:
        tgt = target(config, env, slug, context=flag)
        return _choose(tgt.context, str(kubeconfig), tgt.context_setting)

    assert (used("dev", flag="flag"), used("dev"), used("staging")) == ("flag", "from-yaml", "current")
    assert (used(REVIEW, "x", flag="flag"), used(REVIEW, "x")) == ("flag", "from-yaml")
    assert target(config, "staging").context is None
    assert target(config, "staging").context_setting == "environments.staging.kube_context"
    assert target(config, REVIEW, "x").context_setting == "review.kube_context"
