"""Install stockbridge as a service: a systemd unit (user or system) or a macOS LaunchAgent.

The templates are the files in the repository's ``service/`` folder, shipped in the package as
``stockbridge/service/templates/``. ``install`` fills in the real executable, the absolute config
path, the environment file next to it and every path the service writes (the state directory,
each ``folder`` platform's path), and stamps the file with the SHA-256 of what it wrote, so a later
``install`` can tell an untouched unit (safe to replace) from one you edited (kept unless
``force``). It warns about what would keep the service from starting that it cannot fix itself:
an environment variable the config reads that the unit will not have, a config the service user
cannot read. Nothing here starts or enables the service: ``install`` returns the commands to run.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import platformdirs

from stockbridge.config.loading import find_config_path, load_config
from stockbridge.config.models import APP_NAME, Config, PasswordSource
from stockbridge.errors import StockbridgeError

Kind = Literal["systemd-user", "systemd-system", "launchd"]

UNIT_NAME = "stockbridge.service"
LAUNCHD_LABEL = "com.stockbridge.agent"
SYSTEM_CONFIG = Path("/etc/stockbridge/config.toml")
SYSTEM_STATE_DIR = Path("/var/lib/stockbridge")
SYSTEM_USER = "stockbridge"
#: Next to the config: the NAME=value lines the unit's EnvironmentFile= gives the service.
ENV_FILE_NAME = "stockbridge.env"
#: Where home directories live: a system service's user cannot enter them (mode 0700/0750).
HOME_ROOTS = (Path("/home"), Path("/root"))
_TEMPLATES = {
    "systemd-user": "stockbridge.service",
    "systemd-system": "stockbridge-system.service",
    "launchd": "com.stockbridge.agent.plist",
}
_STAMP = "stockbridge-install-sha256"
_STAMP_LINE = re.compile(rf"^.*{_STAMP}: ([0-9a-f]{{64}}).*\n", re.MULTILINE)


class ServiceError(StockbridgeError):
    pass


@dataclass(frozen=True, slots=True)
class Installed:
    """What ``install`` did (or would do, with ``dry_run``)."""

    kind: Kind
    path: Path
    content: str
    command: list[str]
    config: Path
    changed: bool  # False: the same file was already there
    next_steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Status:
    kind: Kind
    path: Path
    installed: bool
    modified: bool  # edited since `install` wrote it (or not written by it)
    active: str | None  # systemctl is-active / launchctl answer; None where it cannot be asked


def choose_kind(system: bool) -> Kind:
    if sys.platform == "darwin":
        if system:
            raise ServiceError(
                "--system is not supported on macOS",
                hint="a LaunchAgent (the default) runs as you, which is what reading your export folder needs",
            )
        return "launchd"
    if sys.platform.startswith("win"):
        raise ServiceError(
            "on Windows, run stockbridge from Task Scheduler",
            hint='see "Run it as a service" in the README',
        )
    return "systemd-system" if system else "systemd-user"


def unit_path(kind: Kind) -> Path:
    """Where the unit lives; ``$XDG_CONFIG_HOME`` and ``$HOME`` are honoured (tests point them away)."""
    if kind == "systemd-system":
        return Path("/etc/systemd/system") / UNIT_NAME
    home = Path(os.environ.get("HOME") or Path.home())
    if kind == "launchd":
        return home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return Path(config_home) / "systemd" / "user" / UNIT_NAME


def template(kind: Kind) -> str:
    return (
        resources.files("stockbridge.service")
        .joinpath("templates")
        .joinpath(_TEMPLATES[kind])
        .read_text("utf-8")
    )


def service_command() -> list[str]:
    """How to start *this* stockbridge: its console script, else ``python -m stockbridge``."""
    argv0 = Path(sys.argv[0])
    candidates = [argv0] if argv0.name in ("stockbridge", "stockbridge.exe") else []
    candidates.append(Path(sys.executable).parent / "stockbridge")  # the same environment as us
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [os.path.abspath(candidate)]
    found = shutil.which("stockbridge")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "stockbridge"]


def render(
    kind: Kind,
    command: list[str],
    config: Path,
    state_dir: Path,
    home: Path,
    folders: tuple[Path, ...] = (),
) -> str:
    """The file ``install`` writes, stamped. ``folders``: the ``folder`` platforms' paths."""
    if kind == "launchd":
        data = plistlib.loads(template(kind).encode("utf-8"))
        data["ProgramArguments"] = [*command, "run", "--config", str(config)]
        log = str(home / "Library" / "Logs" / "stockbridge.log")
        data["StandardOutPath"] = data["StandardErrorPath"] = log
        body = plistlib.dumps(data).decode("utf-8")
        return _stamp(body, lambda digest: f"<!-- {_STAMP}: {digest} -->")
    exec_start = " ".join(_systemd_quote(arg) for arg in [*command, "run", "--config", str(config)])
    body = _replace_line(template(kind), "ExecStart=", f"ExecStart={exec_start}")
    env_file = _systemd_quote(str(config.parent / ENV_FILE_NAME), dollar=False)
    body = _replace_line(body, "EnvironmentFile=", f"EnvironmentFile=-{env_file}")
    # "-": a folder platform's path (a NAS share) that is missing at start is skipped, not fatal.
    writable = [_systemd_quote(str(state_dir), dollar=False)]
    writable += [f"-{_systemd_quote(str(folder), dollar=False)}" for folder in dict.fromkeys(folders)]
    body = _replace_line(body, "ReadWritePaths=", f"ReadWritePaths={' '.join(writable)}")
    return _stamp(body, lambda digest: f"# {_STAMP}: {digest} (written by `stockbridge service install`)")


def install(
    kind: Kind, config: Path | None = None, *, force: bool = False, dry_run: bool = False
) -> Installed:
    path = unit_path(kind)
    config = Path(
        os.path.abspath(config or (SYSTEM_CONFIG if kind == "systemd-system" else find_config_path()))
    )
    warnings: list[str] = []
    loaded = _read_config(config, warnings)
    default_state = (
        SYSTEM_STATE_DIR if kind == "systemd-system" else Path(platformdirs.user_state_dir(APP_NAME))
    )
    state_dir = loaded.state.dir if loaded is not None else default_state
    folders = tuple(
        platform.path
        for platform in (loaded.enabled_platforms().values() if loaded is not None else ())
        if platform.protocol == "folder" and platform.path is not None
    )
    command = service_command()
    if kind == "systemd-system":
        _refuse_home_executable(command)
        warnings.extend(_unreadable_config_warnings(config))
    if loaded is not None and kind != "launchd":
        warnings.extend(_environment_warnings(kind, loaded, config.parent / ENV_FILE_NAME))
    home = Path(os.environ.get("HOME") or Path.home())
    content = render(kind, command, config, state_dir, home, folders)
    existing = _read(path)
    if existing is not None and existing != content and _modified(existing) and not force:
        raise ServiceError(
            f"{path} exists and was changed since stockbridge wrote it (or not written by stockbridge)",
            hint="keep your edits, or pass --force to replace it",
        )
    changed = existing != content
    if changed and not dry_run:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
        if kind != "systemd-system":
            # The sandbox makes only this directory writable, and it must exist to be mounted.
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Installed(kind, path, content, command, config, changed, _next_steps(kind, path, config), warnings)


def uninstall(kind: Kind, *, force: bool = False, dry_run: bool = False) -> tuple[Path | None, list[str]]:
    """Stop and disable (where the service manager answers), then remove the file install wrote.

    Returns the path removed (None if nothing was installed) and the commands still to run.
    """
    path = unit_path(kind)
    existing = _read(path)
    if existing is None:
        return None, []
    if _recorded_digest(existing) is None and not force:
        raise ServiceError(
            f"{path} was not written by `stockbridge service install`",
            hint="pass --force to remove it anyway",
        )
    if dry_run:
        return path, []
    manager = _manager_reachable(kind)
    if manager:
        _run_manager(kind, "stop")
    path.unlink()
    if manager:
        _run_manager(kind, "reload")
        return path, []
    if kind == "launchd":
        return path, [f"launchctl bootout gui/{os.getuid()}/{LAUNCHD_LABEL}"]
    scope = "--user " if kind == "systemd-user" else ""
    return path, [f"systemctl {scope}disable --now stockbridge; systemctl {scope}daemon-reload"]


def status(kind: Kind) -> Status:
    path = unit_path(kind)
    existing = _read(path)
    active = _ask_manager(kind) if existing is not None else None
    return Status(kind, path, existing is not None, existing is not None and _modified(existing), active)


# ---------------------------------------------------------------------- helpers


def _read_config(config: Path, warnings: list[str]) -> Config | None:
    if not config.is_file():
        warnings.append(
            f"{config} does not exist yet; the service will exit with code 2 until it does"
            " (systemd does not restart it for that); run `service install` again once it does"
        )
        return None
    try:
        return load_config(config, resolve_secrets=False)
    except StockbridgeError as exc:
        warnings.append(f"{config} is not valid yet ({exc.message}); run `stockbridge check` before starting")
    except OSError:
        pass  # e.g. /etc/stockbridge/config.toml is readable only by root and the service user
    return None


def _environment_variables(config: Config) -> dict[str, str]:
    """Every environment variable the config reads: NAME → the key that reads it."""
    sources: list[tuple[str, object]] = [
        (f"platforms.{name}.password", platform.password)
        for name, platform in config.enabled_platforms().items()
    ]
    notify = config.notify
    if notify is not None:
        sources.append(("notify.ntfy.token", notify.ntfy.token if notify.ntfy else None))
        sources.append(("notify.email.password", notify.email.password if notify.email else None))
    return {
        source.env: where
        for where, source in sources
        if isinstance(source, PasswordSource) and source.env is not None
    }


def _environment_warnings(kind: Kind, config: Config, env_file: Path) -> list[str]:
    """The service does not inherit the shell's variables: only the unit's EnvironmentFile= has them."""
    wanted = _environment_variables(config)
    if not wanted:
        return []
    given = _read_env_file(env_file)
    if given is None and env_file.exists():
        return [f"cannot read {env_file} to see whether it sets {', '.join(wanted)}"]
    missing = [name for name in wanted if name not in (given or {})]
    owner = "root's, " if kind == "systemd-system" else ""
    found = [
        f"the config reads ${name} ({wanted[name]}), which the service will not have (it does not see"
        f" your shell's variables): put the line {name}=... in {env_file} ({owner}chmod 600)"
        for name in missing
    ]
    if given is not None and env_file.stat().st_mode & 0o077:
        found.append(f"{env_file} holds passwords and other users can read it: chmod 600 {env_file}")
    return found


def _read_env_file(path: Path) -> dict[str, str] | None:
    """NAME=value lines as systemd reads them (comments and blank lines skipped); None: unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name = name.strip().removeprefix("export ").strip()
        found[name] = value.strip().strip("'\"")
    return found


def _refuse_home_executable(command: list[str]) -> None:
    """The system service runs as user stockbridge, which cannot enter anyone's home directory."""
    import stockbridge

    # The script, the venv, the interpreter it links to (pyenv keeps it in ~/.pyenv), this package.
    used = [Path(command[0]), Path(os.path.realpath(command[0])), Path(sys.prefix)]
    used += [Path(os.path.realpath(sys.executable)), Path(sys.base_prefix)]
    used.append(Path(stockbridge.__file__).resolve().parent)
    roots = {*HOME_ROOTS, *(_user_homes())}
    for path in used:
        inside = next((root for root in roots if path.is_relative_to(root)), None)
        if inside is not None:
            raise ServiceError(
                f"{command[0]} runs from inside a home directory ({path} is under {inside}), which the"
                f" system service's user {SYSTEM_USER} cannot enter",
                hint="install stockbridge for the whole machine and run install with that one:"
                " `sudo pipx install --global stockbridge` (pipx 1.5 or newer; /usr/local/bin/stockbridge),"
                " or a venv outside /home: `sudo python3 -m venv /opt/stockbridge &&"
                " sudo /opt/stockbridge/bin/pip install stockbridge`, then"
                " `sudo /opt/stockbridge/bin/stockbridge service install --system`;"
                " or use a user service: stockbridge service install --user",
            )


def _user_homes() -> list[Path]:
    homes = [os.environ.get("HOME"), os.environ.get("SUDO_HOME")]
    try:
        import pwd

        homes.append(pwd.getpwuid(os.getuid()).pw_dir)
        if sudo_user := os.environ.get("SUDO_USER"):
            homes.append(pwd.getpwnam(sudo_user).pw_dir)
    except (ImportError, KeyError):
        pass
    # "/" is the home of root in some containers, and nobody's private folder.
    return [Path(home) for home in homes if home and Path(home) != Path("/")]


def _unreadable_config_warnings(config: Path) -> list[str]:
    """systemd makes /etc/stockbridge root's; the config in it must be readable by the service user."""
    try:
        import pwd

        user = pwd.getpwnam(SYSTEM_USER)
        info = config.stat()
    except (ImportError, KeyError, OSError):
        return []  # no such user yet (the next steps add it) or no file yet (warned already)
    readable = (
        (info.st_uid == user.pw_uid and info.st_mode & 0o400)
        or (info.st_gid == user.pw_gid and info.st_mode & 0o040)
        or info.st_mode & 0o004
    )
    if readable:
        return []
    return [
        f"{config} is not readable by the service's user {SYSTEM_USER}; run:"
        f" chown {SYSTEM_USER}: {config} && chmod 600 {config}"
    ]


def _next_steps(kind: Kind, path: Path, config: Path) -> list[str]:
    if kind == "launchd":
        return [f"launchctl bootstrap gui/{os.getuid()} {shlex.quote(str(path))}"]
    if kind == "systemd-user":
        return [
            "systemctl --user daemon-reload && systemctl --user enable --now stockbridge",
            'loginctl enable-linger "$USER"   # keep it running while you are logged out',
        ]
    steps = ["systemctl daemon-reload && systemctl enable --now stockbridge"]
    try:
        import pwd

        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        steps.insert(
            0, "useradd --system --home-dir /var/lib/stockbridge --shell /usr/sbin/nologin stockbridge"
        )
        steps.insert(1, f"chown {SYSTEM_USER}: {config} && chmod 600 {config}")
    return steps


def _systemd_quote(arg: str, *, dollar: bool = True) -> str:
    """One argument for a unit file: specifiers (%) and, on command lines, variables ($) escaped."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if dollar:
        escaped = escaped.replace("$", "$$")
    if not escaped or any(c.isspace() for c in escaped) or any(c in escaped for c in "\"';"):
        return f'"{escaped}"'
    return escaped


def _replace_line(text: str, key: str, line: str) -> str:
    pattern = re.compile(rf"^{re.escape(key)}.*$", re.MULTILINE)
    if not pattern.search(text):
        raise ServiceError(f"the service template has no {key} line")
    return pattern.sub(lambda _match: line, text, count=1)


def _stamp(body: str, comment: Callable[[str], str]) -> str:
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    line = comment(digest) + "\n"
    if body.startswith("<?xml"):
        declaration, _, rest = body.partition("\n")
        return f"{declaration}\n{line}{rest}"
    return line + body


def _recorded_digest(text: str) -> str | None:
    match = _STAMP_LINE.search(text)
    return match.group(1) if match else None


def _modified(text: str) -> bool:
    """Has this file been edited since install wrote it (or did install not write it)?"""
    digest = _recorded_digest(text)
    body = _STAMP_LINE.sub("", text, count=1)
    return digest is None or hashlib.sha256(body.encode("utf-8")).hexdigest() != digest


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _manager_command(kind: Kind, *args: str) -> list[str] | None:
    tool = shutil.which("launchctl" if kind == "launchd" else "systemctl")
    if tool is None:
        return None
    if kind == "launchd":
        return [tool, *args]
    return [tool, *(["--user"] if kind == "systemd-user" else []), *args]


def _call(command: list[str] | None) -> subprocess.CompletedProcess[str] | None:
    if command is None:
        return None
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None


def _ask_manager(kind: Kind) -> str | None:
    """systemctl is-active (active, inactive, failed, ...) or launchd's loaded/not loaded."""
    if kind == "launchd":
        result = _call(_manager_command(kind, "list", LAUNCHD_LABEL))
        return None if result is None else ("loaded" if result.returncode == 0 else "not loaded")
    result = _call(_manager_command(kind, "is-active", "stockbridge"))
    answer = result.stdout.strip() if result is not None else ""
    # Without a reachable manager (a container, no user session) systemctl prints nothing useful.
    return answer if answer and " " not in answer else None


def _manager_reachable(kind: Kind) -> bool:
    return _ask_manager(kind) is not None


def _run_manager(kind: Kind, action: Literal["stop", "reload"]) -> None:
    if kind == "launchd":
        if action == "stop":
            _call(_manager_command(kind, "bootout", f"gui/{os.getuid()}/{LAUNCHD_LABEL}"))
        return
    if action == "stop":
        _call(_manager_command(kind, "disable", "--now", "stockbridge"))
    else:
        _call(_manager_command(kind, "daemon-reload"))
