"""Loading the configuration: one TOML file, validated at load, every problem reported at once.

``check`` and every other command call :func:`load_config`, which either returns a complete
:class:`~stockbridge.config.models.Config` or raises a :class:`~stockbridge.errors.ConfigError`
listing every problem with its key path, e.g.
``platforms.adobe.rules.keywords.max: expected an integer, got "fifty"``.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import ValidationError

from stockbridge.config.messages import describe, key_path, merge_union_problems, printable
from stockbridge.config.models import APP_NAME, Config, PasswordSource
from stockbridge.config.renames import apply_renames
from stockbridge.config.secrets import resolve_password, resolve_secret
from stockbridge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ENV_CONFIG = "STOCKBRIDGE_CONFIG"


# --------------------------------------------------------------------------------------------
# Finding and loading


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config``, else ``$STOCKBRIDGE_CONFIG``, else the user config dir."""
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(ENV_CONFIG)
    if from_env:
        return Path(from_env).expanduser()
    return default_config_path()


def load_config(path: Path, *, resolve_secrets: bool = True) -> Config:
    """Read, parse and validate ``path``. Raises ConfigError listing every problem."""
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no configuration file here",
            hint=f"write one with: stockbridge init {path}  (`stockbridge config example` prints every key),"
            f" or pass --config FILE / set ${ENV_CONFIG}",
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror})") from None
    try:
        # A UTF-8 byte order mark (Notepad and some Windows editors write one) is not content.
        text = raw_bytes.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw_bytes[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (line {line}, byte {exc.start})",
            hint="is this the configuration file? Save it as UTF-8 text (your editor's encoding setting)",
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries "(at line L, column C)"; keep it whole.
        raise ConfigError(
            f"{path}: TOML syntax error: {_plain_toml_error(str(exc))}",
            hint="fix the file at that line and column (TOML syntax: https://toml.io/en/v1.0.0)",
        ) from None
    except RecursionError:
        # tomllib recurses once per nested [ or {: thousands of them must not become a traceback.
        raise ConfigError(
            f"{path}: nested too deeply to read (around line {_deepest_line(text)})",
            hint=f"no setting nests more than {_MAX_DEPTH} levels of tables and lists; look for a run of [ or {{",
        ) from None
    if not data:
        raise ConfigError(
            f"{path}: the file is empty (no settings, only blank lines or comments)",
            hint=f"remove it and run: stockbridge init {path}  (`stockbridge config example` prints every key)",
        )
    if (too_deep := _too_deep(data)) is not None:
        raise ConfigError(
            f"{path}: {key_path(too_deep)}: nested more than {_MAX_DEPTH} levels deep",
            hint="no setting nests that deep; remove the extra [ or { levels",
        )
    return validate_config(data, source=path, resolve_secrets=resolve_secrets)


#: Deeper than any real setting (platforms.NAME.rules.keywords.max is 5): refuse before anything
#: recursive (pydantic, the placeholder scan) walks a hostile file's nesting.
_MAX_DEPTH = 16


def _too_deep(data: dict[str, Any]) -> list[Any] | None:
    """The key path of the first value nested more than _MAX_DEPTH levels deep, else None."""
    pending: list[tuple[object, list[Any]]] = [(data, [])]
    while pending:  # iterative: the point is not to recurse
        value, where = pending.pop()
        if len(where) > _MAX_DEPTH:
            return where
        if isinstance(value, dict):
            pending.extend((item, [*where, key]) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((item, [*where, index]) for index, item in enumerate(value))
    return None


def _deepest_line(text: str) -> int:
    lines = text.splitlines() or [""]
    counts = [line.count("[") + line.count("{") for line in lines]
    return counts.index(max(counts)) + 1


#: tomllib's wording for duplicates, in the user's terms.
_TOML_WORDING = (
    ("Cannot overwrite a value", "this key is already set above in the same table; keep one"),
    ("Cannot declare", "a table is declared twice; merge the two into one"),
)


def _plain_toml_error(message: str) -> str:
    for tomllib_words, ours in _TOML_WORDING:
        if message.startswith(tomllib_words):
            return f"{ours} ({message})"
    return message


def validate_config(
    data: dict[str, Any], *, source: Path | None = None, resolve_secrets: bool = True
) -> Config:
    base = source.parent if source else Path.cwd()
    from stockbridge.config.presets import expand_presets

    # A key under a name it had in an earlier release is read under its new name, with a warning.
    data, renamed, rename_problems = apply_renames(data)
    data, preset_problems = expand_presets(data)
    # A platform whose preset is unknown or incomplete would also fail validation for the same
    # reason; say it once, the preset's way (it knows where to find the missing value).
    named = {problem.split(".")[1] for problem in preset_problems if problem.startswith("platforms.")}
    # `stockbridge init` writes FILL-IN where only the user knows the value; never send it anywhere.
    preset_problems = rename_problems + _placeholder_problems(data) + preset_problems
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        found = merge_union_problems([printable(describe(error, data)) for error in exc.errors()])
        found = preset_problems + [p for p in found if not any(p.startswith(f"platforms.{n}") for n in named)]
        raise ConfigError(_summary(source, found), problems=found) from None
    if preset_problems:
        preset_problems = [printable(problem) for problem in preset_problems]
        raise ConfigError(_summary(source, preset_problems), problems=preset_problems)
    config = _resolve_paths(config, base)
    problems: list[str] = _overlap_problems(config)
    warnings = [
        f"{source}: {warning}" if source else warning for warning in [*renamed, *_notify_warnings(config)]
    ]
    if source is not None:
        warnings.extend(_permission_warnings(config, source))
    if resolve_secrets:
        for name, platform in config.enabled_platforms().items():
            try:
                resolve_password(platform)
            except ConfigError as exc:
                problems.append(f"platforms.{name}.password: {exc.message}")
        notify = config.notify
        for where, secret_source in (
            ("notify.ntfy.token", notify.ntfy.token if notify and notify.ntfy else None),
            ("notify.email.password", notify.email.password if notify and notify.email else None),
        ):
            try:
                resolve_secret(secret_source)
            except ConfigError as exc:
                problems.append(f"{where}: {exc.message}")
        for index, url_source in enumerate(notify.urls if notify else []):
            try:
                url = resolve_secret(url_source)
            except ConfigError as exc:
                problems.append(f"notify.urls[{index}]: {exc.message}")
            else:
                if url is not None and (problem := _apprise_problem(url.reveal())) is not None:
                    problems.append(f"notify.urls[{index}]: {problem}")
    if problems:
        problems = [printable(problem) for problem in problems]
        raise ConfigError(_summary(source, problems), problems=problems)
    return config.model_copy(update={"source": source, "warnings": tuple(warnings)})


def _apprise_problem(url: str) -> str | None:
    """Why Apprise cannot send to ``url``, or None. Never names more of the URL than its scheme."""
    import apprise  # only where the service is about to work (check, run, once)

    if apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None:
        return None
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return (
        f'Apprise cannot send to this "{scheme}://" URL: an unknown scheme or a part missing'
        " (see https://github.com/caronc/apprise/wiki for its shape)"
    )


def _notify_warnings(config: Config) -> list[str]:
    """The [notify] channels of 0.1.0 still work (sent through Apprise); say what to write instead."""
    notify = config.notify
    if notify is None:
        return []
    instead = {
        "webhook": '"json://HOST/PATH" ("jsons://" for https; headers as "?+Name=value")',
        "ntfy": '"ntfys://HOST/TOPIC" (a token as "?token=...")',
        "email": '"mailtos://USER:PASSWORD@SMTP_HOST?from=ADDRESS&to=ADDRESS"',
    }
    return [
        f"notify.{key}: still works, but [notify] now sends through Apprise: write it as notify.urls ="
        f" [{url}], the URL (with its secret) from an env/file/credential source if you like"
        for key, url in instead.items()
        if getattr(notify, key) is not None
    ]


def _overlap_problems(config: Config) -> list[str]:
    """stockbridge never writes into the watch folder: its own files there would come back as new
    exports (and a state dir in a synced export folder spreads the ledger and staged copies)."""
    watch = config.watch.folder.resolve()
    problems = []
    state = config.state.dir.resolve()
    if state == watch or state.is_relative_to(watch):
        problems.append(
            f"state.dir: {state} is {'the watch folder' if state == watch else 'inside the watch folder'};"
            " stockbridge never writes into the watch folder: put it elsewhere (or remove the key for the"
            " default, the user state folder)"
        )
    for name, platform in config.platforms.items():
        if platform.protocol == "folder" and platform.path is not None:
            target = platform.path.resolve()
            if target == watch or target.is_relative_to(watch):
                problems.append(
                    f"platforms.{key_path([name])}.path: {target} is inside the watch folder; the copies"
                    " would be taken as new exports: choose a folder outside it"
                )
    return problems


def watch_folder_problem(config: Config) -> ConfigError | None:
    """Why ``check``/``run``/``once`` cannot start: the watch folder is missing or not a folder.

    Not part of :func:`validate_config`: ``status`` and ``history`` work while the export drive is
    unplugged.
    """
    folder = config.watch.folder
    if folder.is_dir():
        return None
    what = "is a file, not a folder" if folder.exists() else "does not exist"
    problem = f"watch.folder: {folder} {what}"
    return ConfigError(
        _summary(config.source, [problem]),
        problems=[problem],
        hint="create it (or mount the drive it is on), or point watch.folder at your export folder",
    )


def no_platform_problem(config: Config) -> ConfigError | None:
    """Why ``check``/``run``/``once`` would do nothing: no platform, or every one disabled.

    Not part of :func:`validate_config`: ``status`` and ``history`` still show what was sent to
    platforms since removed, and a starter config without presets loads.
    """
    if config.enabled_platforms():
        return None
    if config.platforms:
        problem = f"platforms: every platform is disabled ({', '.join(config.platforms)}); nothing would be uploaded"
        hint = "set enabled = true on the platform to upload to"
    else:
        problem = "platforms: no platform configured; nothing would be uploaded"
        hint = (
            "add a [platforms.NAME] table, e.g. from a preset (stockbridge init --preset NAME PATH writes one;"
            " `stockbridge config example` shows every key)"
        )
    return ConfigError(_summary(config.source, [problem]), problems=[problem], hint=hint)


#: What `stockbridge init` writes where only the user knows the value (see starter.py).
PLACEHOLDER = "FILL-IN"


def _placeholder_problems(data: object, path: str = "") -> list[str]:
    """Every value still holding the init placeholder, with its key path."""
    if isinstance(data, dict):
        return [
            problem
            for key, value in data.items()
            for problem in _placeholder_problems(value, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(data, list):
        return [problem for item in data for problem in _placeholder_problems(item, path)]
    if isinstance(data, str) and PLACEHOLDER in data:
        return [
            f"{path}: still the {PLACEHOLDER} placeholder from `stockbridge init`; put the real value here"
        ]
    return []


def _summary(source: Path | None, problems: list[str]) -> str:
    where = f"{source}: " if source else ""
    noun = "problem" if len(problems) == 1 else "problems"
    return f"{where}{len(problems)} {noun} in the configuration"


def _resolve_paths(config: Config, base: Path) -> Config:
    """Relative paths in the file are relative to the file's folder; ``~`` is expanded."""

    def fix(path: Path | None) -> Path | None:
        if path is None:
            return None
        path = path.expanduser()
        return path if path.is_absolute() else (base / path).resolve()

    platforms = {}
    for name, platform in config.platforms.items():
        update: dict[str, Any] = {
            key: fix(getattr(platform, key)) for key in ("key_file", "ca_file", "known_hosts", "path")
        }
        if isinstance(platform.password, PasswordSource) and platform.password.file is not None:
            update["password"] = platform.password.model_copy(update={"file": fix(platform.password.file)})
        platforms[name] = platform.model_copy(update=update)

    def fix_source(source: str | PasswordSource | None) -> str | PasswordSource | None:
        if isinstance(source, PasswordSource) and source.file is not None:
            return source.model_copy(update={"file": fix(source.file)})
        return source

    notify = config.notify
    if notify is not None:
        notify = notify.model_copy(
            update={
                "ntfy": notify.ntfy
                and notify.ntfy.model_copy(update={"token": fix_source(notify.ntfy.token)}),
                "email": notify.email
                and notify.email.model_copy(update={"password": fix_source(notify.email.password)}),
                "urls": [fix_source(url) for url in notify.urls],
            }
        )
    return config.model_copy(
        update={
            "watch": config.watch.model_copy(update={"folder": fix(config.watch.folder)}),
            "state": config.state.model_copy(update={"dir": fix(config.state.dir)}),
            "platforms": platforms,
            "notify": notify,
        }
    )


def insecure_config_problem(config: Config) -> ConfigError | None:
    """Why ``run``/``once`` must refuse ``config``: a literal password others can read
    (decisions.md X-1, X-12).

    None when the file is private, holds no literal password, or ``allow_insecure_config = true``.
    """
    if config.source is None or config.allow_insecure_config:
        return None
    found = _permission_warnings(config, config.source)
    if not found:
        return None
    return ConfigError(
        found[0],
        hint=f"chmod 600 {config.source}, or set allow_insecure_config = true to run anyway",
    )


def _permission_warnings(config: Config, source: Path) -> list[str]:
    literal = [name for name, platform in config.platforms.items() if isinstance(platform.password, str)]
    notify = config.notify
    if notify is not None and notify.ntfy is not None and isinstance(notify.ntfy.token, str):
        literal.append("notify.ntfy")
    if notify is not None and notify.email is not None and isinstance(notify.email.password, str):
        literal.append("notify.email")
    if notify is not None and any(isinstance(url, str) for url in notify.urls):
        literal.append("notify.urls")  # Apprise URLs hold a token or a password, nearly all of them
    if not literal:
        return []
    try:
        mode = source.stat().st_mode
    except OSError:
        return []
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return [
            f"{source} holds a password for {', '.join(literal)} and other users can read it; "
            f"run: chmod 600 {source}  (or use password = {{ env = ... }} / {{ file = ... }})"
        ]
    return []
