from __future__ import annotations

import json
from pathlib import Path

import typer

from mlgit.commands.arguments import DirArg


def validate(
    directory: Path = DirArg,
    as_json: bool = typer.Option(
        False, "--json", help="Print the result as one JSON object on stdout, problems included; same exit codes."
    ),
) -> None:
    """Check mlgit.yaml, the ONNX model and its sample request; exit 1 naming file:line on a problem.

    The model is loaded and answers the sample as in the serving runtime (onnxruntime, on the CPU).
    """
    from mlgit.config.load import load_project
    from mlgit.console import out, print_warning
    from mlgit.drift_profile import drift_off_reason
    from mlgit.errors import MlgitError
    from mlgit.samples.tensors import check_answers

    try:
        project = load_project(directory)
        check_answers(project)
    except MlgitError as error:
        if not as_json:
            raise
        typer.echo(json.dumps({"ok": False, "problems": [error.as_dict()]}, indent=2))
        raise typer.Exit(int(error.exit_code)) from None
    config, model = project.config, project.model
    drift_off = drift_off_reason(project)
    monitored = any(config.monitoring_of(env).enabled for env in config.environments)
    if drift_off is not None and monitored and not as_json:
        # Not a problem, a model may be served without drift scores; said where the dashboards and alerts
        # that show them are on.
        print_warning(drift_off)
    if as_json:
        result = {
            "ok": True,
            "config": str(project.config_path),
            "name": config.name,
            "model": {
                "path": str(model.path),
                "version": config.model.version,
                "sha256": model.sha256,
                "opsets": model.opsets,
                "external_data": [d.location for d in model.external_data],
                "signature": model.signature.model_dump(),
            },
            "sample": str(project.root / config.model.sample.path),
            "environments": list(config.environments),
            "problems": [],
        }
        typer.echo(json.dumps(result, indent=2))
        return
    out.print(
        f"[green]ok[/] {project.config_path}: model {config.name} v{config.model.version}, "
        f"{len(model.signature.inputs)} input(s), {len(model.signature.outputs)} output(s), answers its sample "
        f"as expected; environments {', '.join(config.environments)}"
    )
