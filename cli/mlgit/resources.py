"""The one way to find what mlgit ships: templates (pipelines, manifests, scaffold), policies, examples, runtime.

In a wheel they are copied to mlgit/_templates/<kind>; in an editable install
mlgit/_templates/<kind> is a symlink to the top-level folder of the checkout. Either way the
package-relative path below is right, and no code looks at the current directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

ShippedKind = Literal["pipelines", "manifests", "policies", "examples", "scaffold", "serving_runtime"]


def shipped_dir(kind: ShippedKind) -> Path:
    """Directory holding what mlgit ships of `kind` (templates, policies, example repos)."""
    path = Path(str(resources.files("mlgit") / "_templates" / kind))
    if not path.is_dir():
        raise RuntimeError(f"mlgit is installed without its {kind} (looked in {path})")
    return path
