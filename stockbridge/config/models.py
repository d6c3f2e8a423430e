"""The configuration: one TOML file, validated at load, every problem reported at once.

The pydantic models below are the one source of truth for what a key means; ``check`` and every
other command call :func:`load_config`, which either returns a complete :class:`Config` or raises a
:class:`~stockbridge.errors.ConfigError` listing every problem with its key path, e.g.
``platforms.adobe.rules.keywords.max: expected an integer, got "fifty"``.
"""

from __future__ import annotations

import difflib
import os
import stat
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stockbridge.config.secrets import resolve_password, resolve_secret
from stockbridge.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

APP_NAME = "stockbridge"
ENV_CONFIG = "STOCKBRIDGE_CONFIG"

Protocol = Literal["ftp", "ftps", "sftp", "folder"]
#: File types stockbridge can take as an asset today (content-sniffed names, see filetype.py).
KNOWN_FORMATS = ("jpeg", "png", "tiff")
DEFAULT_PORTS = {"ftp": 21, "ftps": 21, "sftp": 22}


class _Model(BaseModel):
    # Unknown keys are errors (with a "did you mean"), never silently ignored: a typo in
    # `max_file_mb` must not quietly switch a limit off.
    # Strict: TOML has real types, so "yes" for a boolean or "10" for a number is a mistake to
    # report, not to guess at. Paths are the exception (TOML has no path type).
    # No inf/nan: TOML has them, but an infinite timeout overflows the socket layer at connect time.
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, strict=True, allow_inf_nan=False
    )


#: Longest DNS name (RFC 1035, 2.3.4).
_MAX_HOST_CHARS = 253


def _check_host(value: str | None) -> str | None:
    """A bare server name or IP address: what people paste from a browser or an agency's mail is not."""
    import ipaddress

    if value is None:
        return None
    if any(char.isspace() or ord(char) < 32 for char in value):
        raise ValueError("must not contain spaces or line breaks; give only the server name")
    if "://" in value:
        raise ValueError(
            'give only the server name, without "ftp://" or a path, e.g. host = "ftp.example.com"'
        )
    try:
        ipaddress.IPv6Address(value.strip("[]"))
    except ValueError:
        pass
    else:
        return value.strip("[]")
    if any(char in value for char in "@:/\\"):
        # Never echo the value: "user:password@host" is a common paste.
        raise ValueError(
            'give only the server name, e.g. host = "ftp.example.com"; the login goes in username,'
            " the password in password, the port in port"
        )
    return value


def _check_remote_dir(value: str | None) -> str | None:
    if value is None:
        return None
    if any(char in value for char in "\r\n\0"):
        raise ValueError("must not contain line breaks or NUL")
    if ".." in value.replace("\\", "/").split("/"):
        # A folder platform would write outside its path; a server folder outside the upload area.
        raise ValueError(
            'must not contain ".."; give the upload folder from the login folder or the root, e.g. "/uploads"'
        )
    return value


class PasswordSource(_Model):
    """Where a password comes from when it is not written in the file itself."""

    env: str | None = Field(None, description="Name of an environment variable holding the password.")
    file: Path | None = Field(
        None, strict=False, description="Path of a file holding the password (first line)."
    )
    credential: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Name of a systemd credential (LoadCredential=NAME:...), read from $CREDENTIALS_DIRECTORY.",
    )
    keyring: str | None = Field(
        None,
        pattern=r"^[^/]+/.+$",
        description='"SERVICE/USER" in the OS keyring (needs the keyring package: pip install keyring).',
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> PasswordSource:
        given = [name for name in _SOURCE_KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                'give exactly one of { env = "NAME" }, { file = "PATH" }, { credential = "NAME" }'
                ' or { keyring = "SERVICE/USER" }'
            )
        return self


_SOURCE_KINDS = ("env", "file", "credential", "keyring")


class WatchConfig(_Model):
    folder: Path = Field(strict=False, description="The export folder to watch.")
    recursive: bool = Field(True, description="Watch sub-folders too.")
    settle_seconds: float = Field(
        10.0, ge=0, description="A file is taken once size, mtime and inode are unchanged this long."
    )
    ignore: list[str] = Field(
        default_factory=list, description="Extra file-name patterns to ignore (fnmatch), besides junk names."
    )
    observer: Literal["auto", "native", "polling"] = Field(
        "auto",
        description='How changes are noticed: "native" OS events, "polling" (needed on network shares, where'
        ' events from other machines never arrive), or "auto": polling on nfs/smb/sshfs/9p, native elsewhere.',
    )
    poll_interval_seconds: float = Field(
        2.0, gt=0, description="Seconds between folder snapshots when polling."
    )
    rescan_seconds: float = Field(
        600.0,
        ge=0,
        description="A full scan of the folder this often catches files no event announced; 0 turns it off.",
    )
    max_settle_seconds: float = Field(
        600.0,
        ge=0,
        description="A file still changing after this long is reported once as unstable and not uploaded"
        " until it changes again and then stays unchanged for settle_seconds.",
    )
    allow_hardlinks: bool = Field(
        False,
        description="Take files that have more than one hard link. Off by default: a hard link in the"
        " export folder can be another name for any of your files on that disk (an SSH key), which would"
        ' then be uploaded; such files are listed under "Not taken" in `stockbridge status`.',
    )

    @field_validator("rescan_seconds")
    @classmethod
    def _rescan_not_too_often(cls, value: float) -> float:
        if 0 < value < 10:
            raise ValueError("must be 0 (off) or at least 10 seconds")
        return value

    @model_validator(mode="after")
    def _max_settle_covers_settle(self) -> WatchConfig:
        if self.max_settle_seconds < self.settle_seconds:
            raise ValueError(
                f"max_settle_seconds ({self.max_settle_seconds:g}) is shorter than settle_seconds"
                f" ({self.settle_seconds:g})"
            )
        return self


class StateConfig(_Model):
    dir: Path = Field(
        strict=False,
        default_factory=lambda: Path(platformdirs.user_state_dir(APP_NAME)),
        description="Where the ledger and derived copies live. Must be on a local disk.",
    )


class PrepareConfig(_Model):
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Files read and prepared at once (hash, metadata, resize), each with its own"
        " ExifTool process; 0: one per CPU core. They run at a lower priority than uploads.",
    )


class KeywordRule(_Model):
    min: int = Field(0, ge=0, description="Fewer keywords than this: the file is held.")
    max: int | None = Field(None, ge=1, description="More than this: see over_max.")
    over_max: Literal["truncate", "hold"] = Field(
        "truncate",
        description='"truncate": this platform\'s copy keeps the first `max`, in order; "hold": wait for you.',
    )

    @model_validator(mode="after")
    def _ordered(self) -> KeywordRule:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self


class TextRule(_Model):
    required: bool = Field(False, description="Missing: the file is held.")
    max_chars: int | None = Field(None, ge=1, description="Longer: see over_max.")
    over_max: Literal["shorten", "hold"] = Field(
        "hold", description='"shorten": cut at a word boundary for this platform; "hold": wait for you.'
    )


class TitleRule(TextRule):
    from_description: bool = Field(
        False, description="An empty title is filled from the description (shortened to max_chars)."
    )


class FilenameRule(_Model):
    allowed: str = Field(
        "A-Za-z0-9_-",
        description='Characters allowed in the remote name, as a regex class body ("A-Za-z0-9_"); others become "_".',
    )
    max_chars: int | None = Field(None, ge=8, description="Longest remote name, extension included.")

    @field_validator("allowed")
    @classmethod
    def _valid_class(cls, value: str) -> str:
        import re

        try:
            re.compile(f"[{value}]")
        except re.error as exc:
            raise ValueError(f"not a valid character class: {exc}") from None
        if any(char in value for char in "/\\\r\n\0") or value.startswith("^"):
            raise ValueError("must not allow path separators or line breaks, nor start with ^")
        return value


class ReleaseRule(_Model):
    required_for: list[Literal["people", "property"]] = Field(
        default_factory=list, description="Which releases this platform needs: people (model), property."
    )
    delivery: Literal["folder", "suffix", "manual"] = Field(
        "manual",
        description='"folder": upload into remote_dir; "suffix": name it after the image + suffix; "manual": list it in the batch report.',
    )
    remote_dir: str | None = Field(
        None, description='delivery = "folder": the remote folder, e.g. "modelrelease".'
    )
    suffix: str = Field("_MR", description='delivery = "suffix": e.g. IMG_1.jpg → IMG_1_MR.pdf.')

    _remote_dir_safe = field_validator("remote_dir")(_check_remote_dir)


class EditorialRoute(_Model):
    remote_dir: str = Field(description="Editorial files go into this remote folder.")

    _remote_dir_safe = field_validator("remote_dir")(_check_remote_dir)


class RulesConfig(_Model):
    formats: list[str] | None = Field(
        None,
        description='File types the platform accepts ("jpeg", "png", "tiff"); others are converted or rejected.',
    )
    convert_to: Literal["jpeg"] | None = Field(
        None,
        description="Convert files in other formats (or 16-bit, CMYK) to this format; unset: reject them.",
    )
    jpeg_quality: int = Field(92, ge=50, le=100, description="JPEG quality of converted or resized copies.")
    color_space: Literal["sRGB"] | None = Field(
        None, description="Convert other colour spaces to this one through the embedded ICC profile."
    )
    min_megapixels: float | None = Field(
        None, gt=0, description="Smaller images are rejected (never upscaled)."
    )
    max_megapixels: float | None = Field(None, gt=0, description="Larger images are downscaled to fit.")
    max_long_edge: int | None = Field(
        None, ge=100, description="Longer edges are downscaled to fit (pixels)."
    )
    max_file_mb: float | None = Field(
        None, gt=0, description="Larger files are re-encoded to fit, else rejected (MB = 10^6 bytes)."
    )
    keywords: KeywordRule = Field(
        default_factory=KeywordRule, description="How many keywords, and what to do with too many."
    )
    title: TitleRule = Field(
        default_factory=TitleRule, description="Whether a title is required, and its length."
    )
    description: TextRule = Field(
        default_factory=TextRule, description="Whether a description is required, and its length."
    )
    filename: FilenameRule = Field(
        default_factory=FilenameRule, description="Characters and length of the remote file name."
    )
    releases: ReleaseRule = Field(
        default_factory=ReleaseRule, description="Which releases the platform needs and how they travel."
    )
    editorial: Literal["accept", "reject"] | EditorialRoute = Field(
        "accept", description='Editorial files: "accept", "reject", or { remote_dir = "..." }.'
    )

    @field_validator("formats")
    @classmethod
    def _known_formats(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        normal = [{"jpg": "jpeg", "tif": "tiff"}.get(item.lower(), item.lower()) for item in value]
        unknown = [item for item in normal if item not in KNOWN_FORMATS]
        if unknown:
            raise ValueError(f"unknown format {unknown[0]!r}; known: {', '.join(KNOWN_FORMATS)}")
        return normal


class CsvConfig(_Model):
    columns: list[str] = Field(
        description="Header row, in order. Known headers are filled from each file (Filename, Title, "
        "Description, Keywords, Editorial, Releases, ...); others come from `values`."
    )
    values: dict[str, str] = Field(default_factory=dict, description="Fixed values for other headers.")
    delimiter: str = Field(",", min_length=1, max_length=1, description="Cell separator.")
    path: str = Field(
        "{platform}-{batch}.csv", description="File name of each batch's CSV, in the state dir's csv/ folder."
    )
    upload: bool = Field(False, description="Upload the CSV with the batch (agencies that take it by FTP).")


class BatchConfig(_Model):
    max_files: int = Field(50, ge=1, description="A batch closes when it holds this many files ...")
    max_wait_seconds: float = Field(
        60.0, ge=0, description="... or when its oldest file has waited this long."
    )


_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]"


class ScheduleConfig(_Model):
    """Pace: how much may go per day, and when (local time). See stockbridge/schedule.py."""

    daily_max_files: int | None = Field(
        None, ge=1, description="At most this many files a day (local calendar day); the rest wait."
    )
    daily_max_mb: float | None = Field(
        None, gt=0, description="At most this many MB a day (MB = 10^6 bytes), e.g. 4000 for a 4 GB quota."
    )
    windows: list[str] = Field(
        default_factory=list,
        description='Upload only inside these local-time windows, "HH:MM-HH:MM"; "22:00-06:00" crosses '
        "midnight. Empty: any time.",
    )

    @field_validator("windows")
    @classmethod
    def _window_shape(cls, value: list[str]) -> list[str]:
        import re

        for window in value:
            if not re.fullmatch(f"{_CLOCK}-{_CLOCK}", window):
                raise ValueError(f'expected "HH:MM-HH:MM" (24-hour clock), got "{window}"')
        return value


class PlatformConfig(_Model):
    preset: str | None = Field(
        None,
        description="Start from a built-in agency preset (stockbridge/presets/NAME.toml); any key overrides it.",
    )
    enabled: bool = Field(True, description="A disabled platform is ignored (kept for later).")
    protocol: Protocol = Field(description="ftp | ftps | sftp | folder")
    host: str | None = Field(None, max_length=_MAX_HOST_CHARS, description="Server name (ftp, ftps, sftp).")
    port: int | None = Field(
        None, ge=1, le=65535, description="Server port; default 21 (ftp/ftps), 22 (sftp)."
    )
    username: str | None = Field(None, description="Login name.")
    password: str | PasswordSource | None = Field(
        None,
        description='The password: a string, { env = "NAME" }, { file = "PATH" }, { credential = "NAME" }'
        ' or { keyring = "SERVICE/USER" }.',
    )
    key_file: Path | None = Field(
        None, strict=False, description="sftp: private key file for public-key login."
    )
    remote_dir: str = Field("/", description="Folder on the server to upload into.")
    ca_file: Path | None = Field(
        None, strict=False, description="ftps: CA bundle to verify the server certificate."
    )
    host_key: str | list[str] | None = Field(
        None,
        description='sftp: the server\'s host key fingerprint, "SHA256:..." as `ssh-keygen -lf` prints it'
        " (the whole line is fine too), of any key type the server holds; or a list of them.",
    )
    known_hosts: Path | None = Field(
        None, strict=False, description="sftp: a known_hosts file holding the server's key."
    )
    path: Path | None = Field(None, strict=False, description="folder: the directory to copy into.")
    sftp_request_size: int | None = Field(
        None,
        ge=1024,
        le=256 * 1024,
        description="sftp: bytes per write request. Default: what the server says it takes (OpenSSH:"
        " 261120, the fastest), else 32768, which every server takes. Set it only for a server that"
        " refuses the writes it advertises.",
    )
    atomic_rename: bool | None = Field(
        None,
        description="Upload to a temporary name, then rename. Default: on for folder and sftp, off for ftp/ftps.",
    )
    timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Network timeout for every connect, read and write (at most an hour).",
    )
    rules: RulesConfig = Field(
        default_factory=RulesConfig, description="What the platform accepts, and the copy it gets."
    )
    connections: int = Field(
        1,
        ge=1,
        le=8,
        description="Files sent to this platform at once, each over its own connection and login."
        " Agencies throttle and some lock accounts that open many: raise it only where the agency"
        " allows parallel uploads.",
    )
    batch: BatchConfig = Field(default_factory=BatchConfig, description="When a batch closes.")
    schedule: ScheduleConfig | None = Field(
        None, description="Pace uploads: daily caps and time windows; what waits shows as scheduled."
    )
    csv: CsvConfig | None = Field(None, description="Write (and optionally upload) a CSV manifest per batch.")

    @field_validator("host_key")
    @classmethod
    def _fingerprint_shape(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is None:
            return value
        values = [value] if isinstance(value, str) else value
        if not values:
            raise ValueError('expected a "SHA256:..." fingerprint, or a list of them; got an empty list')
        for text in values:
            if not any(token[:7] == "SHA256:" for token in text.split()):
                raise ValueError(
                    f'expected a "SHA256:..." fingerprint as printed by `ssh-keygen -lf`, got {text!r}'
                )
        return value

    _remote_dir_safe = field_validator("remote_dir")(_check_remote_dir)
    _host_shape = field_validator("host")(_check_host)

    @model_validator(mode="after")
    def _protocol_needs(self) -> PlatformConfig:
        missing = []
        if self.protocol == "folder":
            if self.path is None:
                missing.append("path")
        else:
            for key in ("host", "username"):
                if getattr(self, key) in (None, ""):
                    missing.append(key)
        if missing:
            raise ValueError(f"protocol {self.protocol!r} needs {' and '.join(missing)}")
        if self.protocol == "sftp" and not (self.host_key or self.known_hosts):
            raise ValueError(
                "sftp needs host_key or known_hosts, so the server is verified before the password is "
                f"sent; get the fingerprint with: ssh-keyscan -p {self.port or 22} {self.host} | ssh-keygen -lf -"
            )
        if self.protocol == "sftp" and self.password is None and self.key_file is None:
            raise ValueError("sftp needs password or key_file")
        if self.protocol in ("ftp", "ftps") and self.password is None:
            raise ValueError(f"{self.protocol} needs password")
        return self

    @property
    def effective_port(self) -> int | None:
        return self.port or DEFAULT_PORTS.get(self.protocol)

    @property
    def effective_atomic_rename(self) -> bool:
        if self.atomic_rename is not None:
            return self.atomic_rename
        return self.protocol in ("folder", "sftp")


PlatformName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]


class ReleasesConfig(_Model):
    """How stockbridge tells that a file needs releases, and where it finds them."""

    sidecars: list[str] = Field(
        default_factory=lambda: ["{stem}.release.*", "{stem}_MR*.*", "{stem}_PR*.*"],
        description="Release files next to the image, as patterns of its stem; _PR = property release.",
    )
    folder: str = Field(
        "releases", description="Sub-folder of the watch folder holding releases, matched by release ID."
    )
    people_keywords: list[str] = Field(
        default_factory=lambda: ["people", "person", "model"],
        description="A keyword from this list means people are in frame (a model release is needed).",
    )
    property_keywords: list[str] = Field(
        default_factory=list, description="A keyword from this list means a property release is needed."
    )


class EditorialConfig(_Model):
    """How stockbridge tells that a file is editorial."""

    folder: str = Field(
        "editorial", description="Files in this sub-folder of the watch folder are editorial."
    )
    keywords: list[str] = Field(
        default_factory=lambda: ["editorial"], description="A keyword from this list marks a file editorial."
    )
    field: str | None = Field(
        None,
        description='A metadata tag (e.g. "XMP-photoshop:Instructions") whose value marks it editorial ...',
    )
    contains: str = Field("editorial", description="... when it contains this text (any case).")

    @field_validator("field")
    @classmethod
    def _tag_name(cls, value: str | None) -> str | None:
        import re

        # Both parts start with a letter: "-g1:2" would be read by ExifTool as an option.
        if value is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*:[A-Za-z][A-Za-z0-9-]*", value):
            raise ValueError('expected a tag name like "XMP-photoshop:Instructions"')
        return value


class RouteConfig(_Model):
    """Send matching files only to some platforms. The first matching route wins."""

    folder: str | None = Field(None, description="Files in this sub-folder of the watch folder ...")
    keyword: str | None = Field(None, description="... or carrying this keyword ...")
    platforms: list[str] = Field(description="... go only to these platforms.")

    @model_validator(mode="after")
    def _has_condition(self) -> RouteConfig:
        if self.folder is None and self.keyword is None:
            raise ValueError("a route needs folder or keyword")
        return self


NotifyEvent = Literal["batch", "paused", "failed"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = ("batch", "paused", "failed")


class WebhookConfig(_Model):
    url: str = Field(pattern=r"^https?://", description="Receives a JSON POST: {event, title, text}.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers, e.g. an Authorization token."
    )


class NtfyConfig(_Model):
    url: str = Field(pattern=r"^https?://", description='The topic URL, e.g. "https://ntfy.sh/my-topic".')
    token: str | PasswordSource | None = Field(
        None, description='Access token (sent as "Authorization: Bearer"): a string, { env = ... }, ...'
    )


class EmailConfig(_Model):
    # `from` is a Python keyword: the attribute is `sender`, the TOML key is `from`.
    model_config = ConfigDict(populate_by_name=False)

    host: str = Field(max_length=_MAX_HOST_CHARS, description="SMTP server.")
    port: int | None = Field(
        None, ge=1, le=65535, description="Default 587 (starttls), 465 (ssl), 25 (plain)."
    )
    security: Literal["starttls", "ssl", "plain"] = Field(
        "starttls", description='"starttls", "ssl" (TLS from the first byte) or "plain" (local relays only).'
    )
    username: str | None = Field(None, description="SMTP login, if the server needs one.")
    password: str | PasswordSource | None = Field(
        None, description="SMTP password: the same sources as a platform's password."
    )
    sender: str = Field(alias="from", description="The From: address.")
    to: list[str] = Field(min_length=1, description="Recipients.")

    _host_shape = field_validator("host")(_check_host)

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "ssl": 465, "plain": 25}[self.security]


class NotifyConfig(_Model):
    on: list[NotifyEvent] = Field(
        default_factory=lambda: list(NOTIFY_EVENTS),
        description='Which events send a message: "batch" (a batch finished), "paused" (a platform '
        'stopped: login refused, quota, unreachable), "failed" (files failed for good).',
    )
    timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="Per message and channel; never holds up uploads."
    )
    webhook: WebhookConfig | None = Field(None, description="A generic webhook (JSON POST).")
    ntfy: NtfyConfig | None = Field(None, description="An ntfy-style topic (text POST, Title/Tags headers).")
    email: EmailConfig | None = Field(None, description="E-mail through an SMTP server.")


class Config(_Model):
    watch: WatchConfig = Field(description="The export folder and how files are taken from it.")
    state: StateConfig = Field(
        default_factory=StateConfig, description="Where stockbridge keeps its own data."
    )
    prepare: PrepareConfig = Field(
        default_factory=PrepareConfig, description="How many files are prepared at once."
    )
    platforms: dict[PlatformName, PlatformConfig] = Field(
        default_factory=dict, description="One table per agency: [platforms.NAME]."
    )
    releases: ReleasesConfig = Field(default_factory=ReleasesConfig)
    editorial: EditorialConfig = Field(default_factory=EditorialConfig)
    routes: list[RouteConfig] = Field(
        default_factory=list, description="[[routes]]: send some files to some platforms."
    )
    notify: NotifyConfig | None = Field(
        None, description="Messages when a batch ends, a platform pauses, files fail."
    )
    allow_insecure_config: bool = Field(
        False,
        description="Run even though this file holds a password that other users can read"
        " (otherwise run and once refuse: chmod 600 the file).",
    )

    @model_validator(mode="after")
    def _routes_name_platforms(self) -> Config:
        for index, route in enumerate(self.routes):
            unknown = [name for name in route.platforms if name not in self.platforms]
            if unknown:
                raise ValueError(f"routes[{index}].platforms: no platform named {unknown[0]!r}")
        return self

    #: Set by load_config: the file this came from (not a TOML key).
    source: Path | None = Field(None, exclude=True, strict=False)
    #: Set by load_config: warnings that do not stop the service (e.g. a readable literal password).
    warnings: tuple[str, ...] = Field((), exclude=True)

    def enabled_platforms(self) -> dict[str, PlatformConfig]:
        return {name: platform for name, platform in self.platforms.items() if platform.enabled}

    @property
    def ledger_path(self) -> Path:
        return self.state.dir / "ledger.sqlite3"


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
            hint=f"copy config.example.toml there, or pass --config FILE / set ${ENV_CONFIG}",
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
            hint=f"remove it and run: stockbridge init {path}  (or copy config.example.toml there)",
        )
    if (too_deep := _too_deep(data)) is not None:
        raise ConfigError(
            f"{path}: {_key_path(too_deep)}: nested more than {_MAX_DEPTH} levels deep",
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

    data, preset_problems = expand_presets(data)
    # A platform whose preset is unknown or incomplete would also fail validation for the same
    # reason; say it once, the preset's way (it knows where to find the missing value).
    named = {problem.split(".")[1] for problem in preset_problems if problem.startswith("platforms.")}
    # `stockbridge init` writes FILL-IN where only the user knows the value; never send it anywhere.
    preset_problems = _placeholder_problems(data) + preset_problems
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        found = _merge_union_problems([_printable(_describe(error, data)) for error in exc.errors()])
        found = preset_problems + [p for p in found if not any(p.startswith(f"platforms.{n}") for n in named)]
        raise ConfigError(_summary(source, found), problems=found) from None
    if preset_problems:
        preset_problems = [_printable(problem) for problem in preset_problems]
        raise ConfigError(_summary(source, preset_problems), problems=preset_problems)
    config = _resolve_paths(config, base)
    problems: list[str] = _overlap_problems(config)
    warnings: list[str] = []
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
    if problems:
        problems = [_printable(problem) for problem in problems]
        raise ConfigError(_summary(source, problems), problems=problems)
    return config.model_copy(update={"source": source, "warnings": tuple(warnings)})


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
                    f"platforms.{_key_path([name])}.path: {target} is inside the watch folder; the copies"
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


# --------------------------------------------------------------------------------------------
# Error messages a person can act on


def _describe(error: Any, data: dict[str, Any]) -> str:
    loc = [part for part in error["loc"] if not _is_union_tag(part)]
    path = _key_path(loc) or "(top level)"
    kind = error["type"]
    value = error.get("input")
    if any(part in _SECRET_KEYS for part in loc) and not isinstance(value, dict):
        value = _Hidden(value)
    if kind == "extra_forbidden":
        parent_path, key = loc[:-1], str(loc[-1])
        choices = _allowed_keys(parent_path)
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        hint = (
            f'; did you mean "{close[0]}"?'
            if close
            else (f"; known keys: {', '.join(choices)}" if choices else "")
        )
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: required key is missing"
    expected = {
        "int_parsing": "an integer",
        "int_type": "an integer",
        "int_from_float": "an integer",
        "float_parsing": "a number",
        "float_type": "a number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "dict_type": "a table",
        "model_type": "a table",
        "path_type": "a path string",
    }.get(kind)
    if expected:
        if kind in ("int_type", "float_type") and isinstance(value, str) and _is_number(value):
            return f"{path}: expected {expected}, got {_show(value)}; write the number without quotes"
        return f"{path}: expected {expected}, got {_show(value)}"
    if kind == "literal_error":
        return f"{path}: expected one of {error['ctx']['expected']}, got {_show(value)}"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than", "finite_number"):
        return f"{path}: {message[0].lower() + message[1:]}, got {_show(value)}"
    if kind == "string_too_long":
        length = f" ({len(value)})" if isinstance(value, str) else ""
        return f"{path}: longer than {error['ctx']['max_length']} characters{length}; is it the right value?"
    if kind == "string_pattern_mismatch" and loc and loc[0] == "platforms":
        return f"{path}: a platform name may hold only letters, digits, '_', '-' and '.'"
    return f"{path}: {message}"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _merge_union_problems(problems: list[str]) -> list[str]:
    """pydantic reports a value that fits no member of a union once per member; say it once.

    A table that fits the table member but for its own problems (``password = { vault = ... }``)
    is reported by those problems alone, not also as "expected a string, got a table".
    """
    paths = [problem.partition(": ")[0] for problem in problems]
    problems = [
        problem
        for index, problem in enumerate(problems)
        if not (
            problem.endswith(", got a table")
            and any(
                other == paths[index] or other.startswith(f"{paths[index]}.")
                for position, other in enumerate(paths)
                if position != index
            )
        )
    ]
    result: list[str] = []
    expected_at: dict[str, int] = {}
    for problem in problems:
        path, _, message = problem.partition(": ")
        if message.startswith("expected ") and ", got " in message and path in expected_at:
            index = expected_at[path]
            wanted, got = message.removeprefix("expected ").rsplit(", got ", 1)
            before, _, _ = result[index].rpartition(", got ")
            result[index] = f"{before} or {wanted}, got {got}"
            continue
        if message.startswith("expected ") and ", got " in message:
            expected_at[path] = len(result)
        result.append(problem)
    return result


def _is_union_tag(part: object) -> bool:
    # pydantic puts the union member's name into loc ("str", "PasswordSource", "function-after[...]").
    return isinstance(part, str) and (
        part in ("str", "int", "float", "list[str]", "[key]")
        or part in _model_names()
        or part.startswith("literal[")
        or ("[" in part and "(" in part)
    )


def _model_names() -> set[str]:
    names, pending = set(), [_Model]
    while pending:
        model = pending.pop()
        names.add(model.__name__)
        pending.extend(model.__subclasses__())
    return names


#: Keys whose values are secrets: a wrongly typed password is still a password.
_SECRET_KEYS = frozenset({"password", "token", "headers"})
#: Longer values are cut in messages (a 5 MB string must not become a 5 MB error line).
_MAX_SHOWN_CHARS = 60


class _Hidden:
    def __init__(self, value: object) -> None:
        self.kind = type(value).__name__


def _key_path(parts: list[Any]) -> str:
    """``platforms.agency.port``; a part with odd characters is quoted as in TOML: ``platforms."a b"``."""
    import json
    import re

    shown = []
    for part in parts:
        if isinstance(part, int):
            shown.append(f"[{part}]")
            continue
        text = str(part)
        shown.append(
            ("." if shown else "") + (text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text))
        )
    return "".join(shown)


def _printable(text: str) -> str:
    """``text`` with control characters escaped: a value from the file must not move the cursor,
    clear the screen or start a new log line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _show(value: object) -> str:
    if isinstance(value, _Hidden):
        return {"int": "an integer", "float": "a number", "bool": "true or false", "list": "a list"}.get(
            value.kind, "a value"
        ) + " (not shown: it is a secret)"
    if isinstance(value, str):
        if len(value) > _MAX_SHOWN_CHARS:
            value = f"{value[:_MAX_SHOWN_CHARS]}... ({len(value)} characters)"
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _allowed_keys(parent: list[Any]) -> list[str]:
    """The keys valid at ``parent`` (a loc path), by walking the models."""
    model: type[BaseModel] | None = Config
    index = 0
    while model is not None and index < len(parent):
        part = parent[index]
        if model is Config and part == "platforms":
            index += 2  # skip the platform name
            model = PlatformConfig
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return []
        model = _model_of(field.annotation)
        index += 1
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items() if not field.exclude]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
