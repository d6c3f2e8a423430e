"""``stockbridge service install | uninstall | status``: the command line of stockbridge.service."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from stockbridge.errors import StockbridgeError

_scope = click.option(
    "--user/--system",
    "user",
    default=True,
    help="A user service (default; runs as you) or a system service (runs as user stockbridge).",
)
_KIND_NAMES = {
    "systemd-user": "systemd user unit",
    "systemd-system": "systemd system unit",
    "launchd": "launchd agent",
}


@click.group("service")
def service() -> None:
    """Run stockbridge as a service: systemd on Linux, launchd on macOS."""


@service.command()
@_scope
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The configuration the service uses (default: $STOCKBRIDGE_CONFIG, else the user config dir;"
    " /etc/stockbridge/config.toml with --system).",
)
@click.option("--force", is_flag=True, help="Replace a unit you edited since it was installed.")
@click.option("--dry-run", is_flag=True, help="Print the file instead of writing it.")
def install(user: bool, config_path: Path | None, force: bool, dry_run: bool) -> None:
    """Write the service file with this stockbridge and this configuration (does not start it)."""
    from stockbridge.service import units as services

    try:
        kind = services.choose_kind(system=not user)
        result = services.install(kind, config_path, force=force, dry_run=dry_run)
    except StockbridgeError as exc:
        _fail(exc)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if dry_run:
        click.echo(f"# would write {result.path}", err=True)
        click.echo(result.content, nl=False)
        return
    what = _KIND_NAMES[kind]
    if result.changed:
        click.echo(f"wrote the {what} {result.path}")
    else:
        click.echo(f"the {what} {result.path} is already up to date")
    click.echo(f"  runs: {' '.join(result.command)} run --config {result.config}")
    click.echo("to start it now and at every boot/login, run:")
    for step in result.next_steps:
        click.echo(f"  {step}")


@service.command()
@_scope
@click.option("--force", is_flag=True, help="Remove the file even if stockbridge did not write it.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed.")
def uninstall(user: bool, force: bool, dry_run: bool) -> None:
    """Stop and disable the service, and remove the file `install` wrote."""
    from stockbridge.service import units as services

    try:
        kind = services.choose_kind(system=not user)
        removed, steps = services.uninstall(kind, force=force, dry_run=dry_run)
    except StockbridgeError as exc:
        _fail(exc)
    if removed is None:
        click.echo(f"no {_KIND_NAMES[kind]} installed at {services.unit_path(kind)}")
        return
    click.echo(f"{'would remove' if dry_run else 'removed'} {removed}")
    if steps:
        click.echo("the service manager could not be reached; if the service still runs, run:")
        for step in steps:
            click.echo(f"  {step}")


@service.command()
@_scope
def status(user: bool) -> None:
    """Is the service installed, and is it running?"""
    from stockbridge.service import units as services

    try:
        kind = services.choose_kind(system=not user)
    except StockbridgeError as exc:
        _fail(exc)
    state = services.status(kind)
    what = _KIND_NAMES[kind]
    if not state.installed:
        scope = "--user" if user else "--system"
        click.echo(f"{what}: not installed (stockbridge service install {scope})")
        return
    edited = " (edited since it was installed)" if state.modified else ""
    click.echo(f"{what}: installed at {state.path}{edited}")
    if state.active is not None:
        click.echo(f"  service manager says: {state.active}")
    else:
        click.echo("  service manager: not reachable from here")


def _fail(exc: StockbridgeError) -> NoReturn:
    click.echo(f"error: {exc.message}", err=True)
    if exc.hint:
        click.echo(f"  hint: {exc.hint}", err=True)
    sys.exit(1)
