from __future__ import annotations

import json

from mlgit.config.schema import MlgitConfig
from mlgit.console import out


def schema() -> None:
    """Print the JSON Schema of mlgit.yaml (for editors: yaml-language-server, IDEs)."""
    document = {"$schema": "https://json-schema.org/draft/2020-12/schema", **MlgitConfig.model_json_schema()}
    out.print_json(json.dumps(document))
