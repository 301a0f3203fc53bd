from __future__ import annotations

import json

import typer


def schema() -> None:
    """Print the JSON Schema of mlgit.yaml (for editors: yaml-language-server, IDEs)."""
    from mlgit.config.schema import MlgitConfig

    document = {"$schema": "https://json-schema.org/draft/2020-12/schema", **MlgitConfig.model_json_schema()}
    typer.echo(json.dumps(document, indent=2))
