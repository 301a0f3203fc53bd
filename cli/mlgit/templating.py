"""Jinja2 rendering of shipped templates: strict, so a missing variable is an error, never a blank."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jinja2

from mlgit.errors import MlgitError
from mlgit.resources import ShippedKind, shipped_dir


def _to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=False)


@cache
def environment(kind: ShippedKind) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(shipped_dir(kind)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # YAML, Dockerfiles and CI files, never HTML
    )
    env.filters["tojson"] = _to_json
    return env


def render_template(kind: ShippedKind, template: str, /, **context: Any) -> str:
    """Render the shipped template `kind/name`; a missing variable names the template and variable."""
    try:
        return environment(kind).get_template(template).render(**context)
    except jinja2.UndefinedError as exc:
        raise MlgitError(
            f"template {kind}/{template}: {exc.message}", "this is a bug in mlgit; please report it"
        ) from None
    except jinja2.TemplateNotFound:
        raise MlgitError(f"template {kind}/{template} is missing from the installation") from None
