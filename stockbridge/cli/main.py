"""The command line. The only place that turns errors into text and exit codes.

Exit codes: 0 done; 1 some job failed (or a connection check failed); 2 bad configuration or usage.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from loguru import logger

from stockbridge import __version__
from stockbridge.cli.service import service as service_commands
from stockbridge.config.loading import (
    find_config_path,
    insecure_config_problem,
    load_config,
    no_platform_problem,
    watch_folder_problem,
)
from stockbridge.config.models import Config
from stockbridge.delivery.connection import transport_settings
from stockbridge.errors import ConfigError, StockbridgeError
from stockbridge.ledger.states import STATES
from stockbridge.log import setup_logging

if TYPE_CHECKING:
    from stockbridge.metadata.exiftool import ExifTool

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])


def common_options(function: F) -> F:
    @click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Configuration file (default: $STOCKBRIDGE_CONFIG, else the user config dir).",
    )
    @click.option("-v", "--verbose", count=True, help="More detail (-v: debug).")
    @click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
    @click.option("--log-json", is_flag=True, help="Log one JSON object per line (for machines).")
    @click.option(
        "--log-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also log to this file (rotated at 10 MB, 5 old files kept).",
    )
    @functools.wraps(function)
    def wrapper(
        config_path: Path | None,
        verbose: int,
        quiet: bool,
        log_json: bool,
        log_file: Path | None,
        **kwargs: Any,
    ) -> Any:
        setup_logging(-1 if quiet else verbose, json=log_json, log_file=log_file)
        try:
            return function(config_path=config_path, **kwargs)
        except ConfigError as exc:
            _print_config_error(exc)
            sys.exit(EXIT_USAGE)
        except StockbridgeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


def _print_config_error(exc: ConfigError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    for problem in exc.problems:
        if problem != exc.message:
            click.echo(f"  {problem}", err=True)
    if exc.hint:
        click.echo(f"  hint: {exc.hint}", err=True)


def _load(
    config_path: Path | None, *, resolve_secrets: bool = True, uploads: bool = False, service: bool = False
) -> Config:
    """The configuration, its warnings logged. ``uploads``: the caller is about to send passwords
    (``run``, ``once``), so a file holding one that others can read is refused (exit 2).
    ``resolve_secrets``: the caller is about to work (``check``, ``run``, ``once``), so passwords
    are resolved and the watch folder must exist (``service``: ``run`` waits for it instead, an
    export drive may be mounted after the service starts)."""
    path = find_config_path(config_path)
    config = load_config(path, resolve_secrets=resolve_secrets)
    if uploads and (problem := insecure_config_problem(config)) is not None:
        raise problem
    if resolve_secrets and not service and (problem := watch_folder_problem(config)) is not None:
        raise problem  # check, run, once; status and history work with the export drive unplugged
    if resolve_secrets and (problem := no_platform_problem(config)) is not None:
        raise problem  # check, run, once: with nowhere to send, "valid" and exit 0 would mislead
    for warning in config.warnings:
        logger.warning("{}", warning)
    return config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stockbridge")
def main() -> None:
    """stockbridge: from one export folder to every stock agency, each file once, verified."""


@main.command()
@common_options
def run(config_path: Path | None) -> None:
    """Run the service: watch the folder, upload in batches, until SIGTERM."""
    from stockbridge.service.daemon import Service

    config = _load(config_path, uploads=True, service=True)
    service = Service(config)
    service.install_signal_handlers()
    service.run()


@main.command()
@common_options
def once(config_path: Path | None) -> None:
    """Take what is in the folder now, upload everything, exit (0 ok, 1 some failed)."""
    config = _load(config_path, uploads=True)
    exiftool = _spawn_exiftool(config)  # Perl loads ExifTool while the rest is imported
    from stockbridge.cli.progress import once_progress
    from stockbridge.service.once import run_once

    progress = once_progress()  # bars on a terminal only; logs and pipes get nothing extra
    if progress is None:
        report = run_once(config, exiftool=exiftool)
    else:
        with progress:
            report = run_once(config, progress=progress, exiftool=exiftool)
    counts = (
        ", ".join(f"{count} {state}" for state, count in sorted(report.counts.items())) or "nothing to do"
    )
    logger.info("done: {} file(s) looked at; jobs: {}", len(report.seen), counts)
    sys.exit(EXIT_FAILED if report.failed else EXIT_OK)


@main.command()
@common_options
@click.option(
    "--connect", is_flag=True, help="Also log in to each enabled platform and prove the folder is writable."
)
def check(config_path: Path | None, connect: bool) -> None:
    """Validate the configuration (exit 2 on any problem)."""
    from stockbridge.transports import open_transport

    config = _load(config_path)
    _check_exiftool(config)
    click.echo(f"{config.source}: valid; {len(config.enabled_platforms())} enabled platform(s)")
    if not connect:
        return
    failures = 0
    for name, platform in config.enabled_platforms().items():
        started = time.monotonic()
        try:
            with open_transport(transport_settings(name, platform)) as transport:
                transport.mkdirs()
                transport.check_writable()
        except StockbridgeError as exc:
            failures += 1
            click.echo(f"  {name}: FAILED: {exc}")
        else:
            if platform.protocol == "folder":  # nothing to log in to: say what was proved
                checked = f"folder {platform.path} exists and is writable"
            else:
                checked = f"logged in to {platform.host} and wrote to {platform.remote_dir}"
            click.echo(f"  {name}: ok, {checked} ({time.monotonic() - started:.1f} s)")
    sys.exit(EXIT_FAILED if failures else EXIT_OK)


def _spawn_exiftool(config: Config) -> ExifTool | None:
    """The run's ExifTool, started without waiting for it: ~60 ms of Perl start-up on the other
    core while stockbridge imports the rest (issue 14). None when it cannot be started here: the
    pipeline then starts its own and says why, as it always has."""
    from stockbridge.metadata.exiftool import ExifTool

    try:
        config.state.dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # its working directory
        exiftool = ExifTool(cwd=config.state.dir)
        exiftool.spawn()
    except (OSError, StockbridgeError):
        return None
    return exiftool


def _check_exiftool(config: Config) -> None:
    """Every file's metadata is read by ExifTool: without it nothing could be taken."""
    from stockbridge.metadata.exiftool import ExifTool

    try:
        with ExifTool(cwd=None):
            pass
    except StockbridgeError as exc:
        problem = f"ExifTool: {exc.message}"
        raise ConfigError(
            f"{config.source}: valid, but stockbridge cannot work on this machine",
            problems=[problem],
            hint=exc.hint,
        ) from None


@main.command()
@common_options
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(config_path: Path | None, paths: tuple[Path, ...], as_json: bool) -> None:
    """Show what each platform would do with PATH (verdict, reasons, changes), without uploading.

    A folder stands for every file in it that the watcher would take (junk names left out)."""
    from stockbridge.cli.explain import explain_payload, print_explained
    from stockbridge.metadata.exiftool import ExifTool
    from stockbridge.rules.assess import explain_details

    config = _load(config_path, resolve_secrets=False)
    missing = [str(path) for path in paths if not path.exists() and not path.is_symlink()]
    if missing:
        click.echo(f"error: no such file: {', '.join(missing)}", err=True)
        sys.exit(EXIT_USAGE)
    files = []
    with ExifTool() as exiftool:
        for path in _explained_files(paths, config):
            files.append((path, *explain_details(path, config, exiftool)))
    if as_json:
        click.echo(json.dumps(explain_payload(files), indent=2, ensure_ascii=False))
        return
    print_explained(config, files)


def format_option(function: F) -> F:
    """``--format table|tsv|json`` (default: a table on a terminal, tab-separated lines elsewhere),
    and ``--json``, the same as ``--format json``."""
    function = click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (the same as --format json)."
    )(function)
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["table", "tsv", "json"]),
        help="table (default on a terminal), tsv (default in a pipe: one tab-separated line each), or json.",
    )(function)


def _output_format(output_format: str | None, as_json: bool) -> str:
    from stockbridge.cli.report import pick_format

    if output_format is not None and as_json and output_format != "json":
        raise click.UsageError(f"--json and --format {output_format} contradict each other")
    return pick_format(output_format, as_json=as_json, is_terminal=sys.stdout.isatty())


def _explained_files(paths: tuple[Path, ...], config: Config) -> list[Path]:
    from stockbridge.intake.scan import scan

    files: list[Path] = []
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            files.extend(scan(path, recursive=config.watch.recursive, extra_ignore=config.watch.ignore))
        else:
            files.append(path)  # a link or a pipe too: explain_file says why it is not taken
    return files


@main.command()
@common_options
@format_option
@click.option(
    "--platform", "platform_names", multiple=True, metavar="NAME", help="Only this platform (repeatable)."
)
@click.option(
    "--state",
    "state_names",
    multiple=True,
    type=click.Choice([*STATES, "scheduled"]),
    help="Only jobs in this state (repeatable); scheduled = pending, waiting for the platform's schedule.",
)
@click.option(
    "--since",
    metavar="DURATION|DATE",
    help="Only jobs changed since then: 30m, 2h, 3d, 1w, or a date such as 2026-11-01.",
)
@click.option("--detail", is_flag=True, help="Reasons in full, with the servers' own replies.")
def status(
    config_path: Path | None,
    as_json: bool,
    output_format: str | None,
    platform_names: tuple[str, ...],
    state_names: tuple[str, ...],
    since: str | None,
    detail: bool,
) -> None:
    """Every file and its state on each platform, with reasons.

    On a terminal a table; in a pipe one tab-separated line per file and platform: file, platform,
    state, reason (or the remote name of an upload)."""
    from stockbridge.cli.report import parse_since, print_status_table, status_lines, status_payload

    shown_as = _output_format(output_format, as_json)
    config = _load(config_path, resolve_secrets=False)
    since_time = parse_since(since) if since is not None else None
    for name in platform_names:
        if name not in config.platforms and not _platform_in_ledger(config, name):
            raise ConfigError(
                f"--platform {name}: no such platform",
                hint=f"configured: {', '.join(config.platforms) or 'none'}",
            )
    payload = status_payload(
        config,
        platforms=set(platform_names) or None,
        states=set(state_names) or None,
        since=since_time,
        detail=detail,
    )
    if shown_as == "json":
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    elif shown_as == "tsv":
        for line in status_lines(payload):
            click.echo(line)
    else:
        print_status_table(config, payload)


def _known_platform(config: Config, name: str) -> None:
    if name not in config.platforms:
        raise ConfigError(
            f"--platform {name}: no such platform",
            hint=f"configured: {', '.join(config.platforms) or 'none'}",
        )


def _platform_in_ledger(config: Config, name: str) -> bool:
    """A platform removed from the configuration still has its history in the ledger."""
    from stockbridge.ledger.store import Ledger

    if not config.ledger_path.exists():
        return False
    ledger = Ledger(config.ledger_path)
    try:
        return bool(ledger.jobs(platform=name))
    finally:
        ledger.close()


@main.command()
@common_options
@format_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1), help="Newest N batches.")
def history(config_path: Path | None, as_json: bool, output_format: str | None, limit: int) -> None:
    """The batches sent, newest first: platform, opened, closed, files, uploaded, failed."""
    from stockbridge.cli.report import history_lines, history_payload, print_history_table

    shown_as = _output_format(output_format, as_json)
    config = _load(config_path, resolve_secrets=False)
    payload = history_payload(config, limit=limit)
    if shown_as == "json":
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    elif shown_as == "tsv":
        for line in history_lines(payload):
            click.echo(line)
    else:
        print_history_table(payload)


@main.command()
@common_options
@click.option("--platform", "platform_name", help="Only this platform.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def retry(config_path: Path | None, platform_name: str | None, paths: tuple[Path, ...]) -> None:
    """Resume paused platforms and give failed jobs another go (the next run/once sends them)."""
    from stockbridge.ledger.store import Ledger
    from stockbridge.service import actions

    config = _load(config_path, resolve_secrets=False)
    if platform_name is not None:
        _known_platform(config, platform_name)
    ledger = Ledger(config.ledger_path)
    try:
        sha256s = None
        if paths:
            by_path = {asset.path: asset.sha256 for asset in ledger.assets()}
            sha256s = [by_path[str(p.resolve())] for p in paths if str(p.resolve()) in by_path]
        done = actions.retry(config, ledger, platform=platform_name, sha256s=sha256s)
    finally:
        ledger.close()
    click.echo(done.message)


@main.command()
@common_options
@click.option(
    "--platform",
    "platform_names",
    multiple=True,
    required=True,
    metavar="NAME",
    help="Send it to this platform (repeatable).",
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def resend(config_path: Path | None, platform_names: tuple[str, ...], paths: tuple[Path, ...]) -> None:
    """Send a re-export held because an earlier version of the photo was uploaded (on purpose: agencies
    penalise duplicates). The next run/once sends it, verified as any upload."""
    from stockbridge.delivery.prepare import open_pipeline
    from stockbridge.delivery.reexport import resend as resend_file

    config = _load(config_path, resolve_secrets=False)
    for name in platform_names:
        if name not in config.enabled_platforms():
            raise ConfigError(
                f"--platform {name}: no such enabled platform",
                hint=f"enabled: {', '.join(config.enabled_platforms()) or 'none'}",
            )
    problems = 0
    with open_pipeline(config) as pipeline:
        for path in paths:
            for name in platform_names:
                try:
                    job = resend_file(pipeline, path.expanduser().resolve(), name)
                except StockbridgeError as exc:
                    problems += 1
                    click.echo(f"error: {exc}", err=True)
                    continue
                click.echo(
                    f"{path.name} → {name}: queued as {job.remote_name}; the service or `stockbridge once` sends it"
                )
    sys.exit(EXIT_FAILED if problems else EXIT_OK)


@main.command()
@click.option(
    "--keep", type=click.Path(file_okay=False, path_type=Path), help="Keep the workspace in this folder."
)
@click.option("-v", "--verbose", count=True, help="Show the service's log lines.")
@click.option("--web", is_flag=True, help="Then keep the service and its web page running until Ctrl-C.")
def demo(keep: Path | None, verbose: int, web: bool) -> None:
    """A self-contained demo: sample images, a local FTPS server, one run, a table of results."""
    from stockbridge.demo.localserver import missing_demo_packages

    missing = missing_demo_packages()
    if missing:  # before anything is created: one line that says what to install
        click.echo(
            f"error: the demo needs the [demo] extra ({', '.join(missing)} not installed):"
            " pip install 'stockbridge[demo]', or with pipx: pipx inject stockbridge pyftpdlib pyOpenSSL"
            " (or pipx install 'stockbridge[demo]')",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    from stockbridge.demo.workspace import run_demo

    setup_logging(verbose if verbose else -2)  # the table says it all; -v shows the log
    try:
        code = run_demo(keep, web=web)
    except StockbridgeError as exc:
        click.echo(f"error: {exc}", err=True)
        code = EXIT_FAILED
    sys.exit(code)


@main.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--preset",
    "presets",
    multiple=True,
    metavar="NAME",
    shell_complete=lambda _ctx, _param, incomplete: [
        name for name in _preset_names() if name.startswith(incomplete)
    ],
    help="Add a platform table from this built-in preset (repeatable).",
)
def init(path: Path | None, presets: tuple[str, ...]) -> None:
    """Write a commented starter config (default: the user config path); never overwrites a file."""
    from stockbridge.config.starter import PLACEHOLDER, write_starter_config

    target = (path or find_config_path(None)).expanduser()
    try:
        write_starter_config(target, presets)
    except ConfigError as exc:
        _print_config_error(exc)
        sys.exit(EXIT_USAGE)
    click.echo(f"wrote {target} (editors complete its keys from config.schema.json next to it)")
    click.echo(
        f"next: replace every {PLACEHOLDER} in it, then run: stockbridge check --connect --config {target}"
    )
    variables = re.findall(r'\{ env = "([^"]+)" \}', target.read_text(encoding="utf-8"))
    if variables:
        env_file = target.parent / "stockbridge.env"
        click.echo(
            f"passwords: set {', '.join('$' + name for name in variables)} in your shell for check, and"
            f" put {variables[0]}=... lines in {env_file} (chmod 600) for the service"
        )


def _preset_names() -> list[str]:
    from stockbridge.config.presets import preset_names

    return preset_names()


@main.group("config")
def config_commands() -> None:
    """The configuration's JSON Schema, reference and a commented example."""


@config_commands.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of config.toml (for editors: Taplo, Even Better TOML)."""
    from stockbridge.config.docs import schema_text

    click.echo(schema_text(), nl=False)


@config_commands.command("example")
def config_example() -> None:
    """Print an example config.toml with every key and what it does (a starting point to copy)."""
    from stockbridge.config.docs import example_text

    click.echo(example_text(), nl=False)


@config_commands.command("docs")
def config_docs() -> None:
    """Print the configuration reference (Markdown): every table and key, type, default, meaning."""
    from stockbridge.config.docs import docs_text

    click.echo(docs_text(), nl=False)


main.add_command(service_commands)

from stockbridge.cli import actions as _actions  # noqa: E402  (its commands use common_options)

for _command in _actions.COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
