"""The configuration's tables: what every key of the TOML file means.

These pydantic models are the one source of truth for what a key means: validation
(:func:`~stockbridge.config.loading.load_config`), the JSON Schema and the reference page
(``docs.py``) all come from them. Each model checks its own values; loading turns what they find
into one message per problem with its key path. A platform's rule tables
(``[platforms.NAME.rules]``) are in ``rules.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from stockbridge.config.base import _check_remote_dir, _Model
from stockbridge.config.categories import AiConfig, CategoriesConfig, FlagConfig
from stockbridge.config.rules import RulesConfig
from stockbridge.config.web import WebConfig

APP_NAME = "stockbridge"

Protocol = Literal["ftp", "ftps", "sftp", "folder"]
DEFAULT_PORTS = {"ftp": 21, "ftps": 21, "sftp": 22}


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
    verify: Literal["structure", "decode"] = Field(
        "structure",
        description="How a file that needs no new copy is checked to be whole before it goes out."
        ' "structure": its JPEG markers, PNG chunks and checksums or TIFF directories must be complete,'
        " which catches an export that was cut off at about a millisecond per file;"
        ' "decode": the image is also decoded in full (about 0.1 s per 24 MP file), which also catches'
        " damage inside the compressed data. A file that gets a resized or converted copy is always"
        " decoded in full by making that copy.",
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
        description="Files read and prepared at once (hash, metadata, resize); up to four share one"
        " ExifTool process; 0: one per CPU core. They run at a lower priority than uploads.",
    )


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
    on_reexport: Literal["hold", "send"] = Field(
        "hold",
        description="A new export of a photo already uploaded here (same XMP document ID, else the same"
        ' path in the watch folder): "hold" it with the earlier upload named (agencies penalise duplicate'
        ' submissions; `stockbridge resend FILE --platform NAME` sends it anyway), or "send" it as a new file.',
    )

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
        columns = {column.casefold() for column in self.csv.columns} if self.csv else set()
        stray = [header for header in self.rules.ai.csv if header.casefold() not in columns]
        if stray:
            raise ValueError(f"rules.ai.csv: {stray[0]!r} is not one of csv.columns; add it there")
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


#: An Apprise URL: a scheme, then "://" (https://github.com/caronc/apprise/wiki lists them).
_APPRISE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S")


def _check_notify_urls(value: list[str | PasswordSource]) -> list[str | PasswordSource]:
    for url in value:
        # Never echo the value: most Apprise URLs hold a token or a password.
        if isinstance(url, str) and not _APPRISE_URL.match(url):
            raise ValueError(
                'expected Apprise URLs such as "tgram://BOT_TOKEN/CHAT_ID" or "mailtos://user:pass@example.com",'
                " a scheme then ://, without spaces (https://github.com/caronc/apprise/wiki)"
            )
    return value


class NotifyConfig(_Model):
    on: list[NotifyEvent] = Field(
        default_factory=lambda: list(NOTIFY_EVENTS),
        description='Which events send a message: "batch" (a batch finished), "paused" (a platform '
        'stopped: login refused, quota, unreachable), "failed" (files failed for good).',
    )
    timeout_seconds: float = Field(
        10.0, gt=0, le=600, description="Per message and channel; never holds up uploads."
    )
    urls: list[str | PasswordSource] = Field(
        default_factory=list,
        description="Where messages go: one Apprise URL per target (Telegram, Discord, Slack, Pushover,"
        ' ntfy, e-mail, a JSON webhook and 100 more), e.g. "tgram://BOT_TOKEN/CHAT_ID",'
        ' "mailtos://user:pass@example.com", "ntfys://ntfy.sh/my-topic", "jsons://hooks.example.com/path";'
        " see https://github.com/caronc/apprise/wiki. Most hold a token or password, so each may also"
        ' come from { env = "NAME" }, { file = "PATH" }, { credential = "NAME" } or { keyring = "SERVICE/USER" }.',
    )
    webhook: WebhookConfig | None = Field(
        None,
        description='Deprecated, still works: a JSON POST of {event, title, text}; write a "json://" URL in urls.',
    )
    ntfy: NtfyConfig | None = Field(
        None, description='Deprecated, still works: an ntfy topic; write an "ntfy://" URL in urls.'
    )
    email: EmailConfig | None = Field(
        None, description='Deprecated, still works: e-mail through SMTP; write a "mailto://" URL in urls.'
    )

    _urls_shape = field_validator("urls")(_check_notify_urls)


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
    ai: AiConfig = Field(default_factory=AiConfig, description="How a file is known to be AI-generated.")
    categories: CategoriesConfig = Field(
        default_factory=CategoriesConfig, description="Where a file's category comes from."
    )
    illustration: FlagConfig = Field(
        default_factory=lambda: FlagConfig(folder="illustration"),
        description="Which files are illustrations (the CSV's Illustration column).",
    )
    mature: FlagConfig = Field(
        default_factory=lambda: FlagConfig(folder="mature"),
        description="Which files are mature content (the CSV's Mature Content column).",
    )
    routes: list[RouteConfig] = Field(
        default_factory=list, description="[[routes]]: send some files to some platforms."
    )
    notify: NotifyConfig | None = Field(
        None, description="Messages when a batch ends, a platform pauses, files fail."
    )
    web: WebConfig = Field(default_factory=WebConfig, description="The local web page (docs/api.md).")
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
