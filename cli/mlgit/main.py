"""The `mlgit` command line: thin commands over plain modules; MlgitError is caught only here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click
import typer
from typer.core import TyperGroup, TyperOption

from mlgit import __version__
from mlgit.commands import (
    analyze,
    batch,
    batch_cluster,
    build,
    canary,
    cluster,
    init,
    manifests,
    policy,
    promote,
    render,
    sample,
    schema,
    serve,
    smoke,
    validate,
)
from mlgit.errors import MlgitError


def _blank_switch_types(params: Iterable[object]) -> None:
    """typer's rich help prints a type after every option, `--check <bool>` as if the switch took a value;
    an empty metavar leaves the type column blank for on/off switches (--help included), ours or typer's."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""


def _blank_switch_types_below(group: TyperGroup) -> None:
    for command in group.commands.values():
        _blank_switch_types([*command.params, command.get_help_option(typer.Context(command))])
        if isinstance(command, TyperGroup):
            _blank_switch_types_below(command)


class MlgitGroup(TyperGroup):
    """Turns a user mistake raised anywhere into a red message and its documented exit code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _blank_switch_types_below(self)

    def get_params(self, ctx: Any) -> list[Any]:
        # typer appends --install-completion and --show-completion after __init__.
        params = super().get_params(ctx)
        _blank_switch_types(params)
        return params

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlgitError as error:
            from mlgit.console import print_error

            print_error(error)
            raise typer.Exit(int(error.exit_code)) from None


app = typer.Typer(
    cls=MlgitGroup,
    help="From an ONNX model to production on Kubernetes with GitLab.\n\n"
    "Exit codes: 0 ok, 1 user error, 2 usage error, 3 policy violation, 4 canary analysis failed, "
    "5 canary analysis inconclusive.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlgit {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """From an ONNX model to production on Kubernetes with GitLab."""


app.command("init")(init.init)
app.command("validate")(validate.validate)
app.command("sample")(sample.sample)
app.command("render")(render.render)
app.command("schema")(schema.schema)
app.command("serve")(serve.serve)
app.command("build")(build.build)
app.command("smoke")(smoke.smoke)
app.command("deploy")(cluster.deploy)
app.command("destroy")(cluster.destroy)
app.command("status")(cluster.status)
app.command("rollback")(cluster.rollback)
app.command("promote")(promote.promote)
app.command("analyze")(analyze.analyze)
app.add_typer(canary.app, name="canary")
app.add_typer(manifests.app, name="manifests")
app.add_typer(policy.app, name="policy")
batch_cluster.app.command(batch_cluster.LOCAL)(batch.run)  # `mlgit batch DIR ...` runs locally
app.add_typer(batch_cluster.app, name="batch")


def run() -> None:
    """Console-script entry point."""
    app()
