"""The pipeline: ingest → plan → ledger → batch → upload → verify.

``Pipeline.accept_file`` turns one settled source file into jobs (one per enabled platform, each
with its verdict); ``PlatformUploader`` sends one platform's pending jobs in batches over one
connection. ``once`` (in this module) and ``daemon.run`` drive them. Whatever goes wrong with one
file or one platform is recorded in the ledger with its reason and never stops the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from loguru import logger

from stockbridge.assets.ingest import Ingested, SourceChanged, ingest, inspect, refusal, stage_release
from stockbridge.config.models import Config, PlatformConfig, transport_settings
from stockbridge.delivery.manifests import ManifestRow, write_manifest
from stockbridge.delivery.pace import Clock, admit
from stockbridge.errors import (
    AuthError,
    ConfigError,
    InputError,
    MetadataError,
    QuotaError,
    RemoteRejectedError,
    RemoteSetupError,
    StockbridgeError,
    TransportError,
    TrustError,
)
from stockbridge.intake.notices import REFUSED
from stockbridge.ledger import states
from stockbridge.ledger.store import Job, Ledger
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.images import RenderError, UndecodableError, render
from stockbridge.render.pixels import check_decodable, image_props
from stockbridge.rules.naming import EXTENSIONS, remote_name
from stockbridge.rules.plan import ACCEPT, HOLD, AssetFacts, Verdict, evaluate
from stockbridge.rules.releases import (
    find_releases,
    is_editorial,
    is_release_file,
    release_hint,
    release_needs,
    release_remote_names,
    route_platforms,
)
from stockbridge.service.alerts import (
    BATCH,
    FAILED,
    PAUSED,
    Notifier,
    batch_message,
    failed_message,
    paused_message,
)
from stockbridge.transports import TEMP_SUFFIX, Transport, TransportSettings, open_transport


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Job-level retries of transient transfer errors: exponential backoff with full jitter."""

    base_seconds: float
    cap_seconds: float
    max_attempts: int

    def delay(self, attempt: int) -> float:
        return random.uniform(0.5, 1.0) * min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1))


#: ``once`` should finish in minutes; the service can wait hours for a server to come back.
ONCE_RETRY = RetryPolicy(base_seconds=1.0, cap_seconds=8.0, max_attempts=4)
SERVICE_RETRY = RetryPolicy(base_seconds=30.0, cap_seconds=3600.0, max_attempts=8)
#: Pause kind of a server that could not be reached: lifted at every start (a new try).
UNREACHABLE = "unreachable"
#: Errors that stop a platform rather than one file (see ``_pause_for``).
_PAUSING = (AuthError, TrustError, QuotaError, RemoteSetupError)

#: How long a full server / used-up quota pauses a platform before we look again.
QUOTA_PAUSE_SECONDS = 1800.0


#: Reconnects to send the same file again within a batch after a transient error (decisions.md F-6),
#: before the file waits its backoff (``RetryPolicy``) outside the batch.
LOW_LEVEL_RETRIES = 2


class _Transient(Exception):
    """A transfer failed in a way a new connection may fix; carries the error for the ledger."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error
        self.message = error.message if isinstance(error, StockbridgeError) else str(error)


#: Niceness of the prepare workers (Linux: per thread), so uploads get the CPU first.
PREPARE_NICENESS = 5


class Stopped(Exception):
    """Raised from a progress callback when the service is asked to stop mid-transfer."""


#: ``more(remote_dir, room)``: up to ``room`` more jobs for that remote folder, claimed.
TopUp = Callable[[str | None, int], list[Job]]


class Pipeline:
    """Shared state of one run: config, ledger, ExifTool, state directories."""

    def __init__(self, config: Config, ledger: Ledger, exiftool: ExifTool) -> None:
        self.config = config
        self.ledger = ledger
        self._exiftool = exiftool
        self.state_dir = config.state.dir
        #: Striped locks, so memory stays bounded in a service that runs for months: one derived
        #: copy is made once (equal specs share it), different ones mostly render side by side.
        self._copy_locks = [threading.Lock() for _ in range(64)]
        #: Choosing a free remote name and recording the job is one step (two files called
        #: IMG_1.jpg prepared at once must not get the same name).
        self._queue_lock = threading.RLock()
        self._content_locks = [threading.Lock() for _ in range(64)]
        #: [notify]: messages go from a background thread; closed by whoever opened the pipeline.
        self.notifier = Notifier(config.notify)
        #: Called with the platform's name when a job is queued for it (progress bars).
        self.on_queued: Callable[[str], None] | None = None
        self._local = threading.local()
        self._workers: ThreadPoolExecutor | None = None
        self._worker_tools: list[ExifTool] = []
        self._worker_tools_lock = threading.Lock()

    @property
    def platforms(self) -> dict[str, PlatformConfig]:
        return self.config.enabled_platforms()

    @property
    def exiftool(self) -> ExifTool:
        """This thread's ExifTool: each prepare worker has its own process, so they never wait
        for each other's metadata calls."""
        tool: ExifTool | None = getattr(self._local, "exiftool", None)
        return tool if tool is not None else self._exiftool

    # ------------------------------------------------------------------ workers

    @property
    def worker_count(self) -> int:
        configured = self.config.prepare.workers
        return configured if configured > 0 else max(1, os.cpu_count() or 1)

    def submit(self, path: Path) -> Future[Ingested | None]:
        """``accept_file(path)`` on a prepare worker. Callers bound how many are in flight."""
        if self._workers is None:
            self._workers = ThreadPoolExecutor(
                max_workers=self.worker_count, thread_name_prefix="prepare", initializer=self._start_worker
            )
        return self._workers.submit(self.accept_file, path)

    def _start_worker(self) -> None:
        # Rendering yields the CPU to uploads (on Linux, niceness is per thread): an encrypting
        # upload is never starved by a backlog of resizes.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PREPARE_NICENESS)
        tool = ExifTool(cwd=self.state_dir)
        with self._worker_tools_lock:
            self._worker_tools.append(tool)
        self._local.exiftool = tool

    def close(self) -> None:
        """Stop the prepare workers (after the file each is on) and their ExifTool processes."""
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
            self._workers = None
        with self._worker_tools_lock:
            tools, self._worker_tools = self._worker_tools, []
        for tool in tools:
            tool.close()

    def _copy_lock(self, target: Path) -> threading.Lock:
        return self._copy_locks[hash(target) % len(self._copy_locks)]

    # ------------------------------------------------------------------ ingest + plan

    def known(self, path: Path) -> str | None:
        """The content hash recorded for ``path`` as it is now (same size, mtime and inode)."""
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        return self.ledger.known_source(str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def done_before(self, path: Path) -> str | None:
        """The content hash of ``path`` if it is unchanged since it was taken and every platform
        has its job: nothing to do, and no need to hash it."""
        known = self.known(path)
        if known is not None and all(self.ledger.has_job(known, name) for name in self.platforms):
            return known
        return None

    def accept_file(self, path: Path) -> Ingested | None:
        """Ingest ``path`` and create its jobs. Returns None when the file must settle again."""
        root = self.config.watch.folder
        if is_release_file(path, root, self.config.releases):
            # A release is not a photo to sell: it travels with the photos that need it.
            logger.info("{}: a release; files waiting for one are looked at again", path.name)
            self.reconsider_held()
            return None
        if not os.path.lexists(path):
            return None
        if self.done_before(path) is not None:
            logger.debug("{}: unchanged since last seen, nothing to do", path.name)
            return None
        known = self.known(path)
        try:
            item = ingest(
                path,
                self.state_dir,
                self.exiftool,
                extra_tags=self._extra_tags(),
                allow_hardlinks=self.config.watch.allow_hardlinks,
                verify_pixels=False,  # below: by a render when there is one, else by a decode
            )
        except SourceChanged as exc:
            logger.info("{}", exc.message)
            return None
        except (InputError, MetadataError) as exc:
            logger.warning("{}: {}", path.name, refusal(path, exc))
            self.ledger.note(str(path), REFUSED, refusal(path, exc))  # `status` lists it as not taken
            return None
        # One file at a time per content: the same photo exported twice and prepared side by side
        # is planned once, and the second is told it is a copy.
        with self._content_locks[int(item.sha256[:4], 16) % len(self._content_locks)]:
            self.ledger.record_asset(
                sha256=item.sha256,
                path=str(path),
                size=item.size,
                file_type=item.file_type,
                object_path=str(item.object_path) if item.object_path else None,
                fingerprint=item.fingerprint,
            )
            missing = [name for name in self.platforms if not self.ledger.has_job(item.sha256, name)]
            if not missing:
                if known is None:
                    logger.info("{}: same content as an earlier file, nothing new to send", path.name)
                self.release_objects([item.sha256])  # the private copy just made is not needed
                return item
            facts = self.facts_for(item) if item.problem is None else None
            routed = self._routed_platforms(item)
            if facts is not None and (problem := self._undecodable(item, facts, missing, routed)):
                item, facts = replace(item, problem=problem), None
            for name in missing:  # same content seen before (re-export, restart): never twice
                self._create_job(item, facts, name, self.platforms[name], routed)
            return item

    def _undecodable(
        self, item: Ingested, facts: AssetFacts, names: list[str], routed: frozenset[str] | None
    ) -> str | None:
        """Why the image does not decode in full, or None (decisions.md W-3: checked before any
        platform gets a job). When a platform gets a rendered copy, that render decodes every byte
        anyway: it is made first and stands in for the check, one decode instead of two (~70 ms
        per 24 MP file). Its copy is then there for that platform's job."""
        assert item.object_path is not None and item.file_type is not None
        for name in names:
            if routed is not None and name not in routed:
                continue
            verdict = evaluate(name, facts, self.platforms[name].rules)
            if verdict.verdict != ACCEPT or verdict.render is None:
                continue
            try:
                self._prepare(item, facts, verdict)
            except UndecodableError as exc:
                return exc.reason
            except (MetadataError, RenderError, InputError, OSError):
                break  # that platform's own trouble, recorded with its job; check the plain way
            return None
        return check_decodable(item.object_path, item.file_type)

    def _extra_tags(self) -> tuple[str, ...]:
        field = self.config.editorial.field
        return (field,) if field else ()

    def facts_for(self, item: Ingested) -> AssetFacts:
        return assess(item, self.config)

    def _routed_platforms(self, item: Ingested) -> frozenset[str] | None:
        return routed_platforms(item, self.config)

    def _create_job(
        self,
        item: Ingested,
        facts: AssetFacts | None,
        name: str,
        platform: PlatformConfig,
        routed: frozenset[str] | None,
    ) -> None:
        if item.problem is not None or facts is None:
            reason = item.problem or "cannot read this image"
            self.ledger.create_job(sha256=item.sha256, platform=name, state=states.REJECTED, reason=reason)
            logger.warning("rejected {} for {}: {}", item.path.name, name, reason)
            return
        if routed is not None and name not in routed:
            reason = f"not for {name}: a route sends this file only to {', '.join(sorted(routed)) or 'no platform'}"
            self.ledger.create_job(sha256=item.sha256, platform=name, state=states.REJECTED, reason=reason)
            logger.info("{}: {}", item.path.name, reason)
            return
        verdict = evaluate(name, facts, platform.rules)
        if verdict.verdict != ACCEPT:
            state = states.HELD if verdict.verdict == HOLD else states.REJECTED
            reason = "; ".join(verdict.reasons)
            self.ledger.create_job(
                sha256=item.sha256, platform=name, state=state, reason=reason, changes=verdict.changes
            )
            logger.warning("{} {} for {}: {}", state, item.path.name, name, reason)
            return
        try:
            upload_path, output_type = self._prepare(item, facts, verdict)
        except (MetadataError, RenderError, InputError, OSError) as exc:
            message = exc.message if isinstance(exc, StockbridgeError) else str(exc)
            state = states.REJECTED if isinstance(exc, RenderError) else states.FAILED
            reason = f"could not prepare this platform's copy: {message}"
            self.ledger.create_job(sha256=item.sha256, platform=name, state=state, reason=reason)
            logger.error("{} for {}: {}", item.path.name, name, reason)
            return
        self._queue(item, facts, name, platform, verdict, upload_path, output_type)

    def _queue(
        self,
        item: Ingested,
        facts: AssetFacts,
        name: str,
        platform: PlatformConfig,
        verdict: Verdict,
        upload_path: Path,
        output_type: str,
        held: Job | None = None,
    ) -> None:
        """Record an accepted verdict as a pending job (and its releases' jobs). Choosing a free
        remote name and recording the job is one step under the lock."""
        with self._queue_lock:
            remote_dir = _join_remote(platform.remote_dir, verdict.remote_dir)
            remote = self._free_remote_name(name, platform, item, output_type, remote_dir)
            release_jobs = self._queue_releases(item, name, platform, verdict, remote)
            changes = list(verdict.changes)
            meta: dict[str, object] = {
                "title": verdict.title if verdict.title is not None else facts.title,
                "description": verdict.description if verdict.description is not None else facts.description,
                "keywords": list(verdict.keywords if verdict.keywords is not None else facts.keywords),
                "editorial": facts.editorial,
                "releases": release_jobs,
            }
            if held is not None:
                self.ledger.activate(
                    held.id,
                    remote_name=remote,
                    upload_path=str(upload_path),
                    upload_size=upload_path.stat().st_size,
                    changes=changes,
                    remote_dir=verdict.remote_dir and remote_dir,
                    meta=meta,
                )
                created = True
            else:
                created = self.ledger.create_job(
                    sha256=item.sha256,
                    platform=name,
                    state=states.PENDING,
                    remote_name=remote,
                    remote_dir=verdict.remote_dir and remote_dir,
                    upload_path=str(upload_path),
                    upload_size=upload_path.stat().st_size,
                    changes=changes,
                    meta=meta,
                )
            if created:
                note = f" ({'; '.join(changes)})" if changes else ""
                logger.info("queued {} for {} as {}{}", item.path.name, name, remote, note)
                if self.on_queued is not None:
                    self.on_queued(name)

    def _queue_releases(
        self, item: Ingested, name: str, platform: PlatformConfig, verdict: Verdict, image_remote: str
    ) -> list[str]:
        """Jobs for the releases this platform gets with the image. Returns their names for reports."""
        rule = platform.rules.releases
        if not verdict.releases:
            return []
        if rule.delivery == "manual":
            return [str(path) for path in verdict.releases]
        names = []
        remote_dir = _join_remote(platform.remote_dir, rule.remote_dir if rule.delivery == "folder" else None)
        for path, remote in release_remote_names(image_remote, verdict.releases, rule):
            try:
                sha, size, staged = stage_release(
                    path, self.state_dir, allow_hardlinks=self.config.watch.allow_hardlinks
                )
            except (SourceChanged, InputError) as exc:
                logger.warning("release {} for {}: {}", path.name, name, exc)
                continue
            # A release shared by many photos goes once (folder); named after each photo, once per photo.
            identity = (
                sha if rule.delivery == "folder" else hashlib.sha256(f"{sha}:{remote}".encode()).hexdigest()
            )
            self.ledger.record_asset(
                sha256=identity, path=str(path), size=size, file_type=None, object_path=str(staged)
            )
            self.ledger.create_job(
                sha256=identity,
                platform=name,
                kind="release",
                state=states.PENDING,
                remote_name=remote,
                remote_dir=remote_dir if rule.delivery == "folder" else None,
                upload_path=str(staged),
                upload_size=size,
            )
            names.append(remote)
        return names

    def _free_remote_name(
        self, platform_name: str, platform: PlatformConfig, item: Ingested, output_type: str, remote_dir: str
    ) -> str:
        rule = platform.rules.filename
        name = remote_name(
            item.path.name, item.sha256, output_type, allowed=rule.allowed, max_chars=rule.max_chars
        )
        if self.ledger.remote_name_taken(platform_name, name, item.sha256, _dir_key(platform, remote_dir)):
            # A different file with the same name went (or goes) there already: keep both.
            name = remote_name(
                item.path.name,
                item.sha256,
                output_type,
                with_suffix=True,
                allowed=rule.allowed,
                max_chars=rule.max_chars,
            )
        return name

    def _prepare(self, item: Ingested, facts: AssetFacts, verdict: Verdict) -> tuple[Path, str]:
        """The exact file to send and its type: the private copy, or a derived copy."""
        assert item.object_path is not None and item.file_type is not None
        if not verdict.needs_copy:
            return item.object_path, item.file_type  # byte-identical: no decode, no re-encode
        output_type = verdict.render.output_format if verdict.render is not None else item.file_type
        spec = {
            "render": verdict.render.key() if verdict.render is not None else None,
            "metadata": {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in verdict.metadata_changes.items()
            },
        }
        spec_id = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
        suffix = EXTENSIONS.get(output_type, item.object_path.suffix)
        target = self.state_dir / "derived" / item.sha256[:2] / f"{item.sha256}-{spec_id}{suffix}"
        with self._copy_lock(target):
            if target.exists():
                return target, output_type  # two platforms with the same needs share one copy
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp{suffix}")
            try:
                if verdict.render is not None:
                    render(item.object_path, tmp, verdict.render, self.exiftool)
                else:
                    shutil.copyfile(item.object_path, tmp)
                tags = metadata_tags(verdict.metadata_changes, output_type)
                if tags:
                    for warning in self.exiftool.write(tmp, tags):
                        logger.info("{}: {}", item.path.name, warning)
                cap = verdict.render.max_file_bytes if verdict.render is not None else None
                if cap is not None and tmp.stat().st_size > cap:
                    # The metadata written after the pixels grew the copy past the platform's cap.
                    raise RenderError(
                        f"the copy is {tmp.stat().st_size / 1e6:.2f} MB with its metadata, over the "
                        f"{cap / 1e6:.2f} MB cap"
                    )
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        return target, output_type

    def reconsider_held(self) -> None:
        """Look again at held jobs: a release that arrived lets them move on by themselves."""
        with self._queue_lock:  # two releases arriving at once must not activate a job twice
            self._reconsider_held()

    def _reconsider_held(self) -> None:
        held = [job for job in self.ledger.jobs(states=[states.HELD]) if job.kind == "image"]
        for sha256 in sorted({job.sha256 for job in held}):
            asset = self.ledger.asset(sha256)
            if asset is None or not asset.object_path or not Path(asset.object_path).is_file():
                continue
            object_path = Path(asset.object_path)
            result = self.exiftool.read([object_path], extra_tags=self._extra_tags())[object_path]
            if isinstance(result, MetadataError):
                continue
            item = Ingested(
                sha256, Path(asset.path), asset.size, object_path, asset.file_type, result, (0, 0, 0, 0)
            )
            facts = self.facts_for(item)
            for job in held:
                if job.sha256 != sha256 or job.platform not in self.platforms:
                    continue
                platform = self.platforms[job.platform]
                verdict = evaluate(job.platform, facts, platform.rules)
                if verdict.verdict != ACCEPT:
                    continue
                try:
                    upload_path, output_type = self._prepare(item, facts, verdict)
                except (MetadataError, RenderError, InputError, OSError) as exc:
                    logger.error(
                        "{} for {}: could not prepare the copy: {}", item.path.name, job.platform, exc
                    )
                    continue
                logger.info("{} for {}: no longer held", item.path.name, job.platform)
                self._queue(item, facts, job.platform, platform, verdict, upload_path, output_type, held=job)

    def release_objects(self, sha256s: Iterable[str]) -> None:
        """Delete private copies no job needs any more (all uploaded or rejected)."""
        # Under the queue lock: a job being queued right now may be about to use the same staged
        # file (one release serves several platforms under different identities).
        with self._queue_lock:
            self._release_objects(sha256s)

    def _release_objects(self, sha256s: Iterable[str]) -> None:
        for sha256 in set(sha256s):
            jobs = self.ledger.jobs(sha256=sha256)
            if not jobs or any(job.state not in (states.UPLOADED, states.REJECTED) for job in jobs):
                continue
            if any(job.kind == "image" for job in jobs) and not set(self.platforms) <= {
                job.platform for job in jobs
            }:
                # Ingest has not made every platform's job yet (a render in progress, or a crash
                # between two jobs): the copy still has to serve the missing ones.
                continue
            for job in jobs:
                if job.upload_path and Path(job.upload_path).name.startswith(sha256 + "-"):
                    Path(job.upload_path).unlink(missing_ok=True)
            asset = self.ledger.asset(sha256)
            if asset and asset.object_path and not self.ledger.path_in_use(asset.object_path):
                Path(asset.object_path).unlink(missing_ok=True)


def assess(item: Ingested, config: Config) -> AssetFacts:
    """Everything planning needs about ``item``: metadata, pixel facts, editorial, releases."""
    assert item.object_path is not None and item.metadata is not None and item.file_type is not None
    root = config.watch.folder
    metadata = item.metadata
    try:
        props = image_props(item.object_path, item.file_type)
    except InputError as exc:
        logger.debug("{}: no pixel facts ({})", item.path.name, exc)
        props = None
    needs = release_needs(metadata, config.releases)
    found = find_releases(item.path, root, metadata, config.releases) if needs else {}
    hints = {
        kind: release_hint(kind, item.path, metadata, config.releases)
        for kind in needs
        if not found.get(kind)
    }
    return replace(
        item.facts(),
        props=props,
        editorial=is_editorial(item.path, root, metadata, config.editorial),
        release_needs=needs,
        releases=found,
        release_hints=hints,
    )


def routed_platforms(item: Ingested, config: Config) -> frozenset[str] | None:
    """The platforms a route sends ``item`` to, or None when no route applies."""
    if not config.routes or item.metadata is None:
        return None
    return route_platforms(
        item.path, config.watch.folder, item.metadata, config.routes, list(config.enabled_platforms())
    )


def explain_file(path: Path, config: Config, exiftool: ExifTool) -> dict[str, Verdict]:
    """What each enabled platform would get from ``path``, exactly as ``run`` decides it."""
    platforms = config.enabled_platforms()
    extra = (config.editorial.field,) if config.editorial.field else ()
    try:
        item = inspect(path, exiftool, extra_tags=extra, allow_hardlinks=config.watch.allow_hardlinks)
    except (InputError, OSError) as exc:
        return {name: Verdict(name, "reject", (str(exc),)) for name in platforms}  # with its hint
    if item.problem is not None:
        return {name: Verdict(name, "reject", (item.problem,)) for name in platforms}
    facts = assess(item, config)
    routed = routed_platforms(item, config)
    verdicts = {}
    for name, platform in platforms.items():
        if routed is not None and name not in routed:
            reason = f"not for {name}: a route sends this file only to {', '.join(sorted(routed)) or 'no platform'}"
            verdicts[name] = Verdict(name, "reject", (reason,))
        else:
            verdicts[name] = evaluate(name, facts, platform.rules)
    return verdicts


#: Where each metadata field is written, so no agency reads a stale value from another group.
_FIELD_TAGS = {
    "title": ("XMP-dc:Title", "IPTC:ObjectName", "IPTC:Headline", "XMP-photoshop:Headline"),
    "description": ("XMP-dc:Description", "IPTC:Caption-Abstract", "EXIF:ImageDescription"),
    "keywords": ("XMP-dc:Subject", "IPTC:Keywords"),
}


def metadata_tags(changes: dict[str, str | tuple[str, ...]], file_type: str) -> dict[str, str | list[str]]:
    """ExifTool assignments for changed fields, every tag of the field's group (PNG: XMP only)."""
    tags: dict[str, str | list[str]] = {}
    for field_name, value in changes.items():
        for tag in _FIELD_TAGS[field_name]:
            if file_type == "png" and not tag.startswith("XMP"):
                continue  # IPTC/EXIF in PNG are non-standard; agencies read XMP there
            tags[tag] = list(value) if isinstance(value, tuple) else value
    return tags


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _texts(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _join_remote(base: str, sub: str | None) -> str:
    if not sub:
        return base
    if sub.startswith("/"):
        return sub
    return posixpath.join(base or "/", sub)


def _dir_key(platform: PlatformConfig, remote_dir: str) -> str | None:
    return None if remote_dir == platform.remote_dir else remote_dir


class PlatformUploader:
    """Sends one platform's pending jobs in batches, one connection per batch."""

    def __init__(
        self,
        pipeline: Pipeline,
        name: str,
        platform: PlatformConfig,
        retry: RetryPolicy,
        stop: threading.Event | None = None,
        on_outcome: Callable[[Job], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.ledger = pipeline.ledger
        self.name = name
        self.platform = platform
        self.retry = retry
        self.stop = stop or threading.Event()
        self.on_outcome = on_outcome
        #: Consecutive failures to connect; reset by a successful login.
        self.connect_failures = 0
        #: Local wall-clock time for the platform's schedule (replaceable in tests).
        self.clock: Clock = datetime.now
        #: Per sending thread (``connections`` > 1 means several): the batch being sent.
        self._local = threading.local()
        #: Jobs some connection of this platform has taken: no other one takes them too.
        self._claimed: set[int] = set()
        self._claim_lock = threading.Lock()
        self._recovered = False
        self._recover_lock = threading.Lock()
        #: The kind of pause already notified (once per pause); cleared when a file goes through.
        self._pause_told: str | None = None

    @property
    def _outcomes(self) -> list[Job]:
        """Final outcomes of this thread's batch, for its notification."""
        outcomes: list[Job] = self._local.__dict__.setdefault("outcomes", [])
        return outcomes

    # ------------------------------------------------------------------ public

    def claim(self, jobs: Iterable[Job], *, share: bool = True) -> list[Job]:
        """Take ``jobs`` for one connection; those another connection has taken are left out.

        ``share``: with ``connections`` > 1, take only this connection's share of them (the
        rest is left for the others), at least one.
        """
        with self._claim_lock:
            free = [job for job in jobs if job.id not in self._claimed]
            if share and self.platform.connections > 1 and free:
                free = free[: max(1, -(-len(free) // self.platform.connections))]
            self._claimed.update(job.id for job in free)
        return free

    def unclaim(self, jobs: Iterable[Job]) -> None:
        with self._claim_lock:
            self._claimed.difference_update(job.id for job in jobs)

    def due(self, limit: int, now: float | None = None) -> list[Job]:
        """Pending jobs whose time has come, not taken by another connection, oldest first."""
        now = time.time() if now is None else now
        with self._claim_lock:
            claimed = set(self._claimed)
        jobs = self.ledger.due_jobs(self.name, now, limit + len(claimed))
        return [job for job in jobs if job.id not in claimed][:limit]

    def joining(self, remote_dir: str | None, limit: int) -> list[Job]:
        """Due jobs that may join a batch open on ``remote_dir``. A file whose releases go to a
        folder of their own waits for a batch of its own (releases go first)."""
        folder_releases = self.platform.rules.releases.delivery == "folder"
        return [
            job
            for job in self.due(limit * 4 + 8)
            if job.remote_dir == remote_dir and not (folder_releases and (job.meta or {}).get("releases"))
        ][:limit]

    def recover_once(self) -> None:
        """``recover`` for the first of this platform's connections; the others skip it."""
        with self._recover_lock:
            if self._recovered:
                return
            self._recovered = True
            self.recover()

    def recover(self) -> None:
        """At start: give an unreachable server a fresh try; settle uploads a crash cut off.

        A job a crash left ``uploading`` keeps its remote name. Before anything else the server
        is asked about it: a file already there at full size is marked uploaded and never sent
        again; a short file under the final name (direct upload, the default for FTP agencies) or
        a temporary name is deleted at once, so an agency robot cannot take half a photo while the
        job waits for its turn (a schedule window, a paused platform). Then it goes again, to the
        same name.
        """
        self.ledger.resume(self.name, kinds=[UNREACHABLE])
        interrupted = self.ledger.interrupted_uploads(self.name)
        for job in interrupted:
            logger.info(
                "{} → {}: interrupted upload of {}, will check and resume",
                job.path,
                self.name,
                job.remote_name,
            )
        if interrupted and self.ledger.pause_of(self.name) is None:
            self._tidy_interrupted(interrupted)
        for job in self.ledger.interrupted_uploads(self.name):
            self.ledger.set_state(
                job.id, states.PENDING, "interrupted; will check the server first", next_attempt_at=0
            )

    def _tidy_interrupted(self, jobs: list[Job]) -> None:
        groups: dict[str | None, list[Job]] = {}
        for job in jobs:
            groups.setdefault(job.remote_dir, []).append(job)
        for remote_dir, group in groups.items():
            settings = transport_settings(self.name, self.platform)
            if remote_dir is not None:
                settings = replace(settings, remote_dir=remote_dir)
            try:
                transport = self._connect(settings)
            except _PAUSING as exc:
                self._pause_for(exc)
                return
            except (TransportError, ConfigError) as exc:
                logger.info(
                    "{}: cannot look at interrupted uploads now ({}); the next batch will", self.name, exc
                )
                return
            try:
                for job in group:
                    self._tidy_one(transport, job, settings.atomic_rename)
            except TransportError as exc:
                logger.info(
                    "{}: cannot look at interrupted uploads now ({}); the next batch will", self.name, exc
                )
            finally:
                transport.close()

    def _tidy_one(self, transport: Transport, job: Job, atomic: bool) -> None:
        if job.remote_name is None:
            return
        if atomic:
            transport.delete(job.remote_name + TEMP_SUFFIX)
        size = transport.size(job.remote_name)
        if size is not None and size == job.upload_size:
            self.ledger.mark_uploaded(job.id, verified=True, verified_by="size")
            logger.info(
                "{} → {}: already on the server at full size (finished before a restart)", job.path, self.name
            )
            self._report(job.id)
        elif size is not None and not atomic:
            transport.delete(job.remote_name)
            logger.warning(
                "{} → {}: removed the partial {} ({} of {} bytes) an interrupted upload left; it goes again",
                Path(job.path).name,
                self.name,
                job.remote_name,
                size,
                job.upload_size,
            )

    def run_batch(self, jobs: list[Job], more: TopUp | None = None) -> None:
        """Send ``jobs``, one connection per remote folder. Every job leaves in a recorded state.

        Releases go before the photos that need them; files for another remote folder than the
        platform's (releases, editorial) go first, so the platform's folder — where a CSV manifest
        is uploaded too — comes last. ``more(remote_dir, room)``: jobs that became due while the
        batch was being sent join it on the open connection, up to ``max_files`` in all (the caller
        claims them, and may wait a little for them).
        """
        if not jobs:
            return
        batch_id = self.ledger.open_batch(self.name, len(jobs))
        self._local.outcomes = []
        self._local.sent = list(jobs)
        self._local.manifest_done = False
        groups: dict[str | None, list[Job]] = {}
        for job in sorted(jobs, key=lambda job: (job.kind != "release", job.id)):
            groups.setdefault(job.remote_dir, []).append(job)
        if more is not None:
            groups.setdefault(None, [])
        order = sorted(groups, key=lambda remote_dir: remote_dir is None)
        uploaded: list[Job] = []
        try:
            logger.info("{}: batch of {} file(s)", self.name, len(jobs))
            for remote_dir in order:
                outcome = self._send_group(
                    groups[remote_dir],
                    remote_dir,
                    batch_id,
                    uploaded,
                    last=remote_dir is None,
                    more=more if remote_dir is None else None,
                    room=self.platform.batch.max_files - len(jobs) + len(groups[remote_dir]),
                )
                if outcome < 0 or self.stop.is_set():
                    break
            else:
                if self.platform.csv is not None and not self._local.manifest_done:
                    # No file of the batch went to the platform's own folder (all editorial, say):
                    # the manifest goes there over a connection of its own. (A batch that stopped
                    # on a refused login or a lost server does not try yet another login for it.)
                    self._write_manifest(None, batch_id, uploaded)
        finally:
            sent: list[Job] = self._local.sent
            self.unclaim(sent)
            # Counted from the answers the batch gave, not from the group outcomes: a file that
            # failed for good after its last retry ends the group early but is still a failure.
            failures = sum(1 for job in self._outcomes if job.state == states.FAILED)
            self.ledger.close_batch(batch_id, len(uploaded), failures, files=len(sent))
            if self.platform.rules.releases.delivery == "manual":
                self._write_release_report(batch_id, uploaded)
            self.pipeline.release_objects(job.sha256 for job in sent)
            self._notify_batch()

    def _notify_batch(self) -> None:
        notifier = self.pipeline.notifier
        done = [job for job in self._outcomes if job.state == states.UPLOADED]
        failures = [job for job in self._outcomes if job.state == states.FAILED]
        if done or failures:
            notifier.send(BATCH, *batch_message(self.name, len(done), len(failures)))
        if failures:
            details = [(Path(job.path).name, job.reason or "failed") for job in failures]
            notifier.send(FAILED, *failed_message(self.name, details))

    def _write_release_report(self, batch_id: int, uploaded: list[Job]) -> None:
        """For web-form agencies: which release to attach to which uploaded file."""
        lines = []
        for job in uploaded:
            fresh = self.ledger.job(job.id)
            releases = _texts((fresh.meta or {}).get("releases"))
            if fresh.kind == "image" and releases:
                lines.append(f"{fresh.remote_name}: {', '.join(releases)}")
        if not lines:
            return
        path = self.pipeline.state_dir / "reports" / f"{self.name}-batch{batch_id}-releases.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"Releases to attach on {self.name}'s website (batch {batch_id}), file: release(s)\n"
        path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
        logger.warning("{}: {} file(s) need a release attached by hand; see {}", self.name, len(lines), path)

    def _send_group(
        self,
        jobs: list[Job],
        remote_dir: str | None,
        batch_id: int,
        uploaded: list[Job],
        last: bool,
        more: TopUp | None = None,
        room: int = 0,
    ) -> int:
        """Send one remote folder's jobs over one connection. Returns failures (-1: stop the batch)."""
        settings = transport_settings(self.name, self.platform)
        if remote_dir is not None:
            settings = replace(settings, remote_dir=remote_dir)
        transport: Transport | None = None
        failed = 0
        queue = list(jobs)
        if not queue and more is not None:
            queue = more(remote_dir, room)
            self._local.sent.extend(queue)
        if not queue:
            return 0
        try:
            try:
                transport = self._connect(settings)
            except TransportError as exc:
                self._connection_failed(queue, exc)
                return -1
            except ConfigError as exc:  # e.g. the password's environment variable went away
                self._pause(f"configuration problem: {exc}", until=None, kind="config")
                return -1
            taken = 0
            while queue:
                job = queue.pop(0)
                taken += 1
                outcome, transport = self._send_reconnecting(transport, settings, job, batch_id)
                if transport is None:
                    return -1
                if outcome == "uploaded":
                    uploaded.append(job)
                elif outcome == "failed":
                    failed += 1
                elif outcome == "stop-batch":
                    return -1
                if not queue and more is not None and taken < room and not self.stop.is_set():
                    # Files prepared while this batch was going join it on the open connection.
                    queue = more(remote_dir, room - taken)
                    self._local.sent.extend(queue)
            if last and self.platform.csv is not None:
                self._write_manifest(transport, batch_id, uploaded)
                self._local.manifest_done = True
            return failed
        finally:
            if transport is not None:
                transport.close()

    def _send_reconnecting(
        self, transport: Transport, settings: TransportSettings, job: Job, batch_id: int
    ) -> tuple[str, Transport | None]:
        """Send one file; after a transient error reconnect and send it again at once (decisions.md
        F-6), at most ``LOW_LEVEL_RETRIES`` times. Returns the outcome and the connection to go on
        with (None: there is none, the batch stops)."""
        tries = 0
        while True:
            if self.stop.is_set():
                return "stop-batch", transport
            try:
                return self._send(transport, job, batch_id), transport
            except _Transient as transient:
                # A 421, a reset, a cut data channel: the connection is suspect, the file is not.
                job = self.ledger.job(job.id)
                if tries >= LOW_LEVEL_RETRIES or job.attempts >= self.retry.max_attempts:
                    self._retry_later(job, transient.error)
                    return "stop-batch", transport
                tries += 1
                transport.close()
                wait = random.uniform(0.5, 1.0) * 2 ** (tries - 1)
                logger.warning(
                    "{} → {}: {}; reconnecting in {:.1f} s to send it again",
                    Path(job.path).name,
                    self.name,
                    transient.message,
                    wait,
                )
                if self.stop.wait(wait):
                    self.ledger.set_state(
                        job.id, states.PENDING, "interrupted by shutdown", next_attempt_at=0
                    )
                    return "stop-batch", None
                try:
                    transport = self._connect(settings)
                except TransportError as exc:
                    self._connection_failed([job], exc)
                    return "stop-batch", None

    def _connect(self, settings: TransportSettings) -> Transport:
        transport = open_transport(settings)
        try:
            transport.connect()
            transport.mkdirs()
        except BaseException:
            transport.close()
            raise
        self.connect_failures = 0
        return transport

    def _write_manifest(self, transport: Transport | None, batch_id: int, uploaded: list[Job]) -> None:
        """The agency's CSV for this batch (remote names, metadata as sent), uploaded if asked, over
        ``transport`` (open in the platform's folder) or, with None, a connection of its own."""
        csv_config = self.platform.csv
        assert csv_config is not None
        rows = []
        for job in uploaded:
            fresh = self.ledger.job(job.id)
            if fresh.kind != "image" or fresh.state != states.UPLOADED or fresh.remote_name is None:
                continue
            meta = fresh.meta or {}
            rows.append(
                ManifestRow(
                    filename=fresh.remote_name,
                    title=_text(meta.get("title")),
                    description=_text(meta.get("description")),
                    keywords=_texts(meta.get("keywords")),
                    editorial=bool(meta.get("editorial")),
                    releases=_texts(meta.get("releases")),
                )
            )
        if not rows:
            return
        name = csv_config.path.format(platform=self.name, batch=batch_id, date=time.strftime("%Y-%m-%d"))
        path = write_manifest(self.pipeline.state_dir / "csv" / Path(name).name, csv_config, rows)
        logger.info("{}: wrote {} ({} rows)", self.name, path, len(rows))
        if csv_config.upload:
            own = transport is None
            try:
                if transport is None:
                    transport = self._connect(transport_settings(self.name, self.platform))
                transport.put(path, path.name)
                logger.info("{}: uploaded the manifest {}", self.name, path.name)
            except (TransportError, ConfigError) as exc:
                logger.error("{}: could not upload the manifest {}: {}", self.name, path.name, exc)
            finally:
                if own and transport is not None:
                    transport.close()

    # ------------------------------------------------------------------ one file

    def _send(self, transport: Transport, job: Job, batch_id: int) -> str:
        assert job.remote_name and job.upload_path
        local = Path(job.upload_path)
        if job.attempts > 0:
            # An earlier attempt (or a crash) may have delivered it in full before we could record
            # it: look before sending again, so it is never sent twice.
            try:
                remote_size = transport.size(job.remote_name)
            except TransportError:
                remote_size = None
            if remote_size is not None and remote_size == job.upload_size:
                self.ledger.mark_uploaded(job.id, verified=True, verified_by="size")
                logger.info(
                    "{} → {}: already on the server at full size (finished before a restart)",
                    job.path,
                    self.name,
                )
                self._report(job.id)
                return "uploaded"
        if not local.is_file():
            self.ledger.set_state(
                job.id, states.FAILED, f"the prepared copy {local} is missing; run `stockbridge retry`"
            )
            self._report(job.id)
            return "failed"
        job = self.ledger.begin_upload(job.id, batch_id)  # intent is durable before the first byte
        started = time.monotonic()

        def progress(_sent: int) -> None:
            if self.stop.is_set():
                raise Stopped()

        try:
            result = transport.put(local, job.remote_name or "", progress=progress)
        except RemoteRejectedError as exc:
            self.ledger.set_state(job.id, states.FAILED, f"the server refused this file: {exc.message}")
            logger.error("{} → {}: refused by the server: {}", Path(job.path).name, self.name, exc.message)
            self._report(job.id)
            return "failed"
        except _PAUSING as exc:
            reason = self._pause_for(exc)
            self.ledger.set_state(job.id, states.PENDING, f"waiting: {self.name} is paused ({reason})")
            return "stop-batch"
        except (TransportError, OSError) as exc:
            if self.stop.is_set():
                self.ledger.set_state(job.id, states.PENDING, "interrupted by shutdown", next_attempt_at=0)
                logger.info("{} → {}: abandoned by shutdown, will resume", Path(job.path).name, self.name)
                return "stop-batch"
            raise _Transient(exc) from exc
        except Stopped:
            self.ledger.set_state(job.id, states.PENDING, "interrupted by shutdown", next_attempt_at=0)
            logger.info("{} → {}: abandoned by shutdown, will resume", Path(job.path).name, self.name)
            return "stop-batch"
        verified_by = (result.verified_by or "size") if result.verified else None
        self.ledger.mark_uploaded(job.id, verified=result.verified, verified_by=verified_by)
        seconds = time.monotonic() - started
        note = "" if result.verified else ", moved away by the server at once (not verifiable)"
        logger.info(
            "uploaded {} → {} as {} ({:.1f} MB, {:.1f} s{})",
            Path(job.path).name,
            self.name,
            result.remote_name,
            result.size / 1_000_000,
            seconds,
            note,
        )
        self._report(job.id)
        return "uploaded"

    # ------------------------------------------------------------------ failures

    def _retry_later(self, job: Job, exc: Exception) -> None:
        message = exc.message if isinstance(exc, StockbridgeError) else str(exc)
        if job.attempts >= self.retry.max_attempts:
            reason = f"gave up after {job.attempts} attempts: {message}"
            self.ledger.set_state(job.id, states.FAILED, reason)
            logger.error("{} → {}: {}", Path(job.path).name, self.name, reason)
            self._report(job.id)
            return
        delay = self.retry.delay(job.attempts)
        reason = f"attempt {job.attempts} failed ({message}); retrying in {delay:.0f} s"
        self.ledger.set_state(job.id, states.PENDING, reason, next_attempt_at=time.time() + delay)
        logger.warning("{} → {}: {}", Path(job.path).name, self.name, reason)

    def _pause_for(self, exc: TransportError) -> str:
        """Pause the platform for a problem no retry of a single file can solve. Returns the reason."""
        if isinstance(exc, AuthError):
            # One attempt only: agencies lock accounts after repeated failed logins.
            reason, until, kind = f"login refused: {exc.message}", None, "auth"
        elif isinstance(exc, TrustError):
            reason, until, kind = f"server identity not trusted: {exc}", None, "trust"
        elif not isinstance(exc, QuotaError):
            # The remote folder cannot be made or written to, the server lacks TLS, ...: a setup
            # problem that waiting will not fix. Once, with the server's words, not 4 retries.
            reason, until, kind = f"setup problem on the server: {exc.message}", None, "setup"
        else:
            reason, until, kind = (
                f"server full or quota used up: {exc.message}",
                time.time() + QUOTA_PAUSE_SECONDS,
                "quota",
            )
        self._pause(reason, until, kind)
        return reason

    def _connection_failed(self, jobs: list[Job], exc: TransportError) -> None:
        if isinstance(exc, _PAUSING) or not exc.retryable:
            reason = self._pause_for(exc)
            for job in jobs:
                self.ledger.set_state(job.id, states.PENDING, f"waiting: {self.name} is paused ({reason})")
            return
        # Could not reach the server. That says nothing about the files, so it costs them no
        # attempt: the platform waits (with growing, jittered delays) and the jobs stay pending.
        self.connect_failures += 1
        delay = self.retry.delay(self.connect_failures)
        reason = f"cannot reach the server ({exc.message})"
        for job in jobs:
            self.ledger.set_state(job.id, states.PENDING, f"waiting: {reason}")
        self._pause(reason, until=time.time() + delay, kind=UNREACHABLE)

    def _pause(self, reason: str, until: float | None, kind: str) -> None:
        self.ledger.pause(self.name, reason, until, kind)
        if self._pause_told != kind:  # once per pause, not at every retry of an unreachable server
            self._pause_told = kind
            self.pipeline.notifier.send(PAUSED, *paused_message(self.name, kind, until))
        if until is None:
            logger.error(
                "{}: paused, {}. Fix it, then run `stockbridge retry --platform {}`",
                self.name,
                reason.rstrip(". "),
                self.name,
            )
        elif kind == UNREACHABLE:
            logger.warning("{}: {}; trying again in {:.0f} s", self.name, reason, until - time.time())
        else:
            logger.error(
                "{}: paused until {}, {}", self.name, time.strftime("%H:%M", time.localtime(until)), reason
            )

    def _report(self, job_id: int) -> None:
        job = self.ledger.job(job_id)
        self._outcomes.append(job)
        if job.state == states.UPLOADED:
            self._pause_told = None  # the platform works again: a new pause is news
        if self.on_outcome is not None:
            self.on_outcome(job)


# ---------------------------------------------------------------------- once


#: ``once``: how long an open batch waits for the next file still being prepared before it closes.
ONCE_LINGER_SECONDS = 30.0


def top_up(uploader: PlatformUploader, preparing: threading.Event | None, linger: float) -> TopUp:
    """``more`` for ``run_batch``: due files join the open batch (claimed, and admitted by the
    platform's schedule). While ``preparing`` is not set (``once`` still preparing files), wait up
    to ``linger`` seconds for the next one instead of closing the connection."""

    def more(remote_dir: str | None, room: int) -> list[Job]:
        give_up = time.monotonic() + linger
        if uploader.platform.connections > 1:
            room = min(room, 1)  # one at a time: the platform's other connections take theirs
        while True:
            jobs = uploader.joining(remote_dir, room)
            if jobs:
                jobs, _later = admit(
                    uploader.ledger, uploader.name, uploader.platform.schedule, jobs, uploader.clock()
                )
                return uploader.claim(jobs)
            if preparing is None or preparing.is_set() or time.monotonic() >= give_up:
                return []
            if uploader.stop.wait(0.05):
                return []

    return more


def drain(uploader: PlatformUploader, deadline: float, ingest_done: threading.Event | None = None) -> None:
    """Send everything pending for one platform, retrying transient errors, until done or paused.

    ``ingest_done``: not set while files are still being prepared; until then an empty queue
    means "wait for the next file", not "done". Several threads may drain one platform
    (``connections``): each takes the jobs no other one has.
    """
    uploader.recover_once()
    max_files = uploader.platform.batch.max_files
    more = top_up(uploader, ingest_done, ONCE_LINGER_SECONDS)
    while not uploader.stop.is_set() and time.monotonic() < deadline:
        preparing = ingest_done is not None and not ingest_done.is_set()
        pause = uploader.ledger.pause_of(uploader.name)
        if pause is not None:
            # A refused login or a full server is not going to change within this run; a server
            # that could not be reached gets the same number of tries as a file would.
            if pause.until is None or uploader.connect_failures == 0:
                return
            if uploader.connect_failures >= uploader.retry.max_attempts:
                return
            uploader.stop.wait(max(0.05, min(pause.until - time.time(), deadline - time.monotonic())))
            continue
        # Bounded queries: a backlog of 10,000 pending jobs is never loaded at once.
        now = time.time()
        due = uploader.due(max_files, now)
        if not due:
            earliest = uploader.ledger.next_attempt(uploader.name)
            if (earliest is None or earliest <= now) and not preparing:
                return  # nothing pending, or only files another connection of this platform took
            wait = 0.1 if earliest is None or preparing else earliest - now
            uploader.stop.wait(max(0.05, min(wait, deadline - time.monotonic())))
            continue
        due, _later = admit(uploader.ledger, uploader.name, uploader.platform.schedule, due, uploader.clock())
        if not due:
            return  # the rest waits for the platform's schedule: left pending, shown as scheduled
        due = uploader.claim(due)
        if due:
            uploader.run_batch(due, more=more)
