"""``stockbridge pause | resume | recheck`` and ``stockbridge web url | rotate-token``: the command-line
twins of the web page's actions (the same code: :mod:`stockbridge.service.actions`).

A running service reads the ledger at its next look at each platform (within 5 seconds); a pause
takes effect before its next file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from stockbridge.cli.main import _known_platform, _load, common_options


@click.command()
@common_options
@click.option("--platform", "platform_name", required=True, metavar="NAME", help="The platform to pause.")
def pause(config_path: Path | None, platform_name: str) -> None:
    """Stop sending to a platform until `stockbridge resume` (a file being sent finishes first)."""
    _on_platform(config_path, platform_name, "pause")


@click.command()
@common_options
@click.option("--platform", "platform_name", required=True, metavar="NAME", help="The platform to resume.")
def resume(config_path: Path | None, platform_name: str) -> None:
    """Lift a platform's pause, whatever its cause (failed files stay failed: `retry` sends them)."""
    _on_platform(config_path, platform_name, "resume")


def _on_platform(config_path: Path | None, platform_name: str, action: Literal["pause", "resume"]) -> None:
    """``actions.pause`` or ``actions.resume`` on one known platform, its message printed."""
    from stockbridge.ledger.store import Ledger
    from stockbridge.service import actions

    config = _load(config_path, resolve_secrets=False)
    _known_platform(config, platform_name)
    ledger = Ledger(config.ledger_path)
    try:
        done = getattr(actions, action)(config, ledger, platform_name)
    finally:
        ledger.close()
    click.echo(done.message)


@click.command()
@common_options
def recheck(config_path: Path | None) -> None:
    """Look at held files again (a release that arrived, changed rules): those free now are queued."""
    from stockbridge.delivery.prepare import open_pipeline
    from stockbridge.service import actions

    config = _load(config_path, resolve_secrets=False)
    with open_pipeline(config) as pipeline:
        done = actions.recheck(pipeline)
    click.echo(done.message)


@click.group("web")
def web() -> None:
    """The local web page: its address, its access token."""


@web.command("url")
@common_options
def web_url(config_path: Path | None) -> None:
    """Print the page's address with its access token (open it in a browser on this machine)."""
    from stockbridge.errors import ConfigError
    from stockbridge.web.server import page_url

    config = _load(config_path, resolve_secrets=False)
    if not config.web.enabled:
        raise ConfigError(
            "web.listen is empty: the web page is off", hint='set [web] listen = "127.0.0.1:8765"'
        )
    click.echo(page_url(config.web, config.state.dir))


@web.command("rotate-token")
@common_options
def web_rotate_token(config_path: Path | None) -> None:
    """Make a new access token: the old link stops working at once, in a running service too."""
    from stockbridge.web.server import page_url
    from stockbridge.web.token import rotate_token

    config = _load(config_path, resolve_secrets=False)
    rotate_token(config.state.dir)
    click.echo("made a new token; the old one no longer works")
    if config.web.enabled:
        click.echo(page_url(config.web, config.state.dir))


COMMANDS: tuple[click.Command, ...] = (pause, resume, recheck, web)
