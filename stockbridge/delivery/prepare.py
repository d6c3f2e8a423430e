"""Preparing: a settled source file becomes its jobs, one per enabled platform.

``Pipeline.accept_file`` ingests the file (private copy, hash, metadata), plans each platform's
verdict (``rules``), makes the copy a platform needs (``render``) and records the jobs in the
``ledger``. Whatever goes wrong with one file is recorded with its reason and never stops the
others: even an exception nobody foresaw (a bug, a Pillow surprise) becomes a ``failed`` job for the
platform it hit, with the error as its reason and the traceback in the log, so every file gets an
answer on every platform (issue 13). Sending is :mod:`stockbridge.delivery.uploader`'s job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from loguru import logger

from stockbridge.assets import mediatypes
from stockbridge.assets.ingest import Ingested, SourceChanged, ingest, refusal
from stockbridge.config.models import Config, PlatformConfig
from stockbridge.delivery import reexport, vectors
from stockbridge.delivery.connection import join_remote
from stockbridge.delivery.exiftools import WorkerTools
from stockbridge.delivery.held import activate_held, queue_releases, reconsider_held, reingest
from stockbridge.delivery.policy import describe_unexpected
from stockbridge.errors import (
    InputError,
    MetadataError,
    StockbridgeError,
)
from stockbridge.intake.notices import REFUSED
from stockbridge.ledger import states
from stockbridge.ledger.records import Writing
from stockbridge.ledger.store import Job, Ledger
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.metadata.fields import metadata_tags
from stockbridge.render.images import RenderError, UndecodableError, keep_image_memory, render
from stockbridge.render.pixels import check_decodable
from stockbridge.render.thumbnail import ThumbnailMaker
from stockbridge.rules.assess import assess, routed_platforms
from stockbridge.rules.categories import extra_tags
from stockbridge.rules.measures import against
from stockbridge.rules.naming import remote_name
from stockbridge.rules.plan import ACCEPT, HOLD, AssetFacts, Verdict, evaluate
from stockbridge.rules.releases import (
    is_release_file,
)
from stockbridge.service.alerts import (
    Notifier,
)

#: Niceness of the prepare workers (Linux: per thread), so uploads get the CPU first.
PREPARE_NICENESS = 5


class Pipeline:
    """Shared state of one run: config, ledger, ExifTool, state directories. The prepare workers
    share the run's ExifTool process, up to four to a process (delivery/exiftools.py)."""

    def __init__(self, config: Config, ledger: Ledger, exiftool: ExifTool) -> None:
        self.config = config
        self.ledger = ledger
        self.state_dir = config.state.dir
        #: Striped locks, so memory stays bounded in a service that runs for months: one derived
        #: copy is made once (equal specs share it), different ones mostly render side by side.
        self._copy_locks = [threading.Lock() for _ in range(64)]
        #: Choosing a free remote name and recording the job is one step (two files called
        #: IMG_1.jpg prepared at once must not get the same name).
        self._queue_lock = threading.RLock()
        self._content_locks = [threading.Lock() for _ in range(64)]
        #: Deciding whether a new version of a photo goes (and recording it) and the uploader's
        #: first attempt of a job are one step each under this lock: of two versions of a photo,
        #: at most one begins (delivery/reexport.py).
        self._photo_lock = threading.RLock()
        #: [notify]: messages go from a background thread; closed by whoever opened the pipeline.
        self.notifier = Notifier(config.notify)
        #: Called with the platform's name when a job is queued for it (progress bars).
        self.on_queued: Callable[[str], None] | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._tools = WorkerTools(exiftool, self.worker_count, self.state_dir, PREPARE_NICENESS)
        #: The web page's thumbnails, made off the upload path.
        self.thumbnails = ThumbnailMaker(self.state_dir)

    @property
    def platforms(self) -> dict[str, PlatformConfig]:
        return self.config.enabled_platforms()

    @property
    def exiftool(self) -> ExifTool:
        """This thread's ExifTool process (shared: its calls take turns)."""
        return self._tools.current()

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
        self._tools.assign()

    def close(self) -> None:
        """Stop the prepare workers (after the file each is on) and their extra ExifTools."""
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
            self._workers = None
        self.thumbnails.close()
        self._tools.close()

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
        if vectors.passed_over_as_preview(self, path):  # it travels with its vector, never as a photo
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
                verify_pixels=False,  # below: by a render when there is one, else as [watch] verify says
            )
        except SourceChanged as exc:
            logger.info("{}", exc.message)
            return None
        except (InputError, MetadataError) as exc:
            logger.bind(file=path.name).warning("{}: {}", path.name, refusal(path, exc))
            self.ledger.note(str(path), REFUSED, refusal(path, exc))  # `status` lists it as not taken
            return None
        if item.object_path is not None:  # the page's picture, in the background (when it is served)
            self.thumbnails.later(item.sha256, item.object_path, item.file_type)
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
                photo_id=self.photo_of(item),
            )
            if item.vector is not None:
                vectors.retire_preview_photos(self, path)  # a preview that came first was no photo
            missing = [name for name in self.platforms if not self.ledger.has_job(item.sha256, name)]
            if not missing:
                if known is None:
                    logger.info("{}: same content as an earlier file, nothing new to send", path.name)
                self.release_objects([item.sha256])  # the private copy just made is not needed
                return item
            try:
                facts = self.facts_for(item) if item.problem is None else None
                routed = self._routed_platforms(item)
                if facts is not None and (problem := self._undecodable(item, facts, missing, routed)):
                    item, facts = replace(item, problem=problem), None
            except Exception as exc:  # a bug, not the file's fault: every platform still gets an answer
                for name in missing:
                    self._record_unexpected(item, name, exc)
                return item
            for name in missing:  # same content seen before (re-export, restart): never twice
                try:
                    self._create_job(item, facts, name, self.platforms[name], routed)
                except Exception as exc:  # one platform's surprise never costs the others their answer
                    self._record_unexpected(item, name, exc)
        vectors.preview_came_meanwhile(self, path, facts)
        return item

    def _record_unexpected(self, item: Ingested, name: str, exc: Exception) -> None:
        """A ``failed`` job for ``name`` when an unforeseen error kept it from getting one (once
        it has one, the job's own state stands): the error is its reason, the traceback goes to
        the log at DEBUG."""
        reason = f"could not prepare this platform's copy: {describe_unexpected(exc)}"
        logger.opt(exception=exc).debug("{} for {}: traceback", item.path.name, name)
        if self.ledger.has_job(item.sha256, name):
            logger.error(
                "{} for {}: unexpected error after its job was recorded: {}", item.path.name, name, reason
            )
            return
        self.ledger.create_job(sha256=item.sha256, platform=name, state=states.FAILED, reason=reason)
        logger.error("{} for {}: {}", item.path.name, name, reason)

    def _undecodable(
        self, item: Ingested, facts: AssetFacts, names: list[str], routed: frozenset[str] | None
    ) -> str | None:
        """Why the image does not decode in full, or None (decisions.md W-3: checked before any
        platform gets a job). When a platform gets a rendered copy, that render decodes every byte
        anyway: it is made first and stands in for the check, one decode instead of two (~70 ms
        per 24 MP file). Its copy is then there for that platform's job."""
        assert item.object_path is not None and item.file_type is not None
        if item.clip is not None or facts.vector is not None:
            return None  # checked whole at ingest: a clip's boxes and ffprobe, a vector's probe
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
            except Exception:
                break  # that platform's own trouble, recorded with its job; check the plain way
            return None
        if self.config.watch.verify != "decode":
            return None  # ingest checked the structure in its hash pass: a cut-off file is refused there
        return check_decodable(item.object_path, item.file_type, name=item.path.name)

    def _extra_tags(self) -> tuple[str, ...]:
        return extra_tags(self.config)  # editorial, AI, categories, flags (rules/categories.py)

    def facts_for(self, item: Ingested) -> AssetFacts:
        return assess(item, self.config, self.exiftool)

    def _routed_platforms(self, item: Ingested) -> frozenset[str] | None:
        return routed_platforms(item, self.config)

    def photo_of(self, item: Ingested) -> str:
        """Which photo ``item`` is across exports (delivery/reexport.py)."""
        return reexport.photo_id(item.metadata, item.path, self.config.watch.folder)

    def _create_job(
        self,
        item: Ingested,
        facts: AssetFacts | None,
        name: str,
        platform: PlatformConfig,
        routed: frozenset[str] | None,
    ) -> None:
        with self._photo_lock:  # the newest export of a photo supersedes versions not sent (reexport.py)
            reexport.supersede_unsent(self.ledger, self.photo_of(item), item.path, item.sha256, name)
        if item.problem is not None or facts is None:
            reason = item.problem or "cannot read this image"
            self.ledger.create_job(sha256=item.sha256, platform=name, state=states.REJECTED, reason=reason)
            # A rejection is an answer, not a warning: nothing the user can change (issue 13).
            logger.bind(file=item.path.name, platform=name, state=states.REJECTED).info(
                "rejected {} for {}: {}", item.path.name, name, reason
            )
            return
        if routed is not None and name not in routed:
            reason = f"not for {name}: a route sends this file only to {', '.join(sorted(routed)) or 'no platform'}"
            self.ledger.create_job(sha256=item.sha256, platform=name, state=states.REJECTED, reason=reason)
            logger.bind(file=item.path.name, platform=name, state=states.REJECTED).info(
                "{}: {}", item.path.name, reason
            )
            return
        verdict = evaluate(name, facts, platform.rules)
        if verdict.verdict != ACCEPT:
            state = states.HELD if verdict.verdict == HOLD else states.REJECTED
            reason = "; ".join(verdict.reasons)
            self.ledger.create_job(
                sha256=item.sha256,
                platform=name,
                state=state,
                reason=reason,
                changes=verdict.changes,
                meta={"clip": facts.clip.as_meta()} if facts.clip is not None else None,  # status shows it
            )
            # Held needs the user (a title, a release): a WARNING, once per file and platform, each
            # with that platform's reason. Rejected is an answer: INFO, so -q leaves it out.
            logger.bind(file=item.path.name, platform=name, state=state).log(
                "WARNING" if state == states.HELD else "INFO",
                "{} {} for {}: {}",
                state,
                item.path.name,
                name,
                reason,
            )
            return
        if self._held_as_reexport(item, name, platform):  # before any copy is made for it
            return
        try:
            upload_path, output_type = self._prepare(item, facts, verdict)
        except (MetadataError, RenderError, InputError, OSError) as exc:
            message = exc.message if isinstance(exc, StockbridgeError) else str(exc)
            state = states.REJECTED if isinstance(exc, RenderError) else states.FAILED
            reason = f"could not prepare this platform's copy: {message}"
            self.ledger.create_job(sha256=item.sha256, platform=name, state=state, reason=reason)
            logger.bind(file=item.path.name, platform=name, state=state).log(
                "INFO" if state == states.REJECTED else "ERROR", "{} for {}: {}", item.path.name, name, reason
            )
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
        resend: bool = False,
    ) -> None:
        """Record an accepted verdict as a pending job (and its releases' jobs). Choosing a free
        remote name and recording the job is one step under the lock. A re-export of a photo sent
        to this platform is held instead, unless ``resend`` (reexport.py)."""
        with self._queue_lock, self._photo_lock:
            if not resend and self._held_as_reexport(item, name, platform, held, tell=True):
                return
            remote_dir = join_remote(platform.remote_dir, verdict.remote_dir)
            naming_type = item.file_type if output_type == "zip" and item.file_type else output_type
            remote = self._free_remote_name(name, platform, item, naming_type, remote_dir)
            remote = vectors.zip_remote_name(remote, output_type)
            release_jobs = queue_releases(self, item, name, platform, verdict, remote)
            preview = vectors.queue_preview(self, item, facts, name, platform, verdict, remote)
            changes = list(verdict.changes)
            meta: dict[str, object] = {
                "title": verdict.title if verdict.title is not None else facts.title,
                "description": verdict.description if verdict.description is not None else facts.description,
                "keywords": list(verdict.keywords if verdict.keywords is not None else facts.keywords),
                "editorial": facts.editorial,
                "releases": release_jobs,
                "categories": list(verdict.categories),
                "illustration": facts.illustration,
                "mature": facts.mature,
                "ai": facts.ai,
                "manual": list(verdict.manual),
                "csv": dict(verdict.csv),
            }
            if preview:  # status shows the pair as one asset
                meta["preview"] = preview
            if facts.clip is not None:
                meta["clip"] = facts.clip.as_meta()  # status, history, the batch's clip cap
            if facts.vector is not None:
                meta["vector"] = facts.vector.summary()  # status
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
                logger.bind(file=item.path.name, platform=name, state=states.PENDING).info(
                    "queued {} for {} as {}{}", item.path.name, name, remote, note
                )
                if self.on_queued is not None:
                    self.on_queued(name)

    def _held_as_reexport(
        self, item: Ingested, name: str, platform: PlatformConfig, held: Job | None = None, tell: bool = False
    ) -> bool:
        """Hold this new version of a photo on ``name`` when an earlier one was sent there and
        ``on_reexport`` is "hold" (reexport.py); ``held``: its job, held until now. ``tell``: log
        that a re-export goes (once, where it is queued)."""
        with self._photo_lock:
            earlier = reexport.earlier_sent(self.ledger, self.photo_of(item), item.path, item.sha256, name)
            if earlier is None:
                return False
            if platform.on_reexport == "send":
                if tell:
                    logger.info(
                        '{}: a re-export of a photo sent to {} as {}; on_reexport = "send": it goes as a new file',
                        item.path.name,
                        name,
                        earlier.remote_name,
                    )
                return False
            reason = reexport.held_reason(earlier, item.path, name)
            if held is None:
                self.ledger.create_job(sha256=item.sha256, platform=name, state=states.HELD, reason=reason)
            elif held.reason != reason:
                self.ledger.set_state(held.id, states.HELD, reason)
            else:
                return True  # held for this already
            logger.warning("held {} for {}: {}", item.path.name, name, reason)
            return True

    def begin_upload(self, job_id: int, batch_id: int, writing: Writing | None = None) -> Job | None:
        """The upload intent (``Ledger.begin_upload``), or None: a newer export of the same photo
        came before this job's first attempt, and it is rejected as superseded (reexport.py)."""
        with self._photo_lock:
            job = self.ledger.job(job_id)
            if vectors.check_before_upload(self, job):
                newer = reexport.newer_version(self.ledger, job)
                if newer is None:
                    return self.ledger.begin_upload(job_id, batch_id, writing)
                reexport.supersede(self.ledger, job, newer.path)
                return None
        # A vector came beside it: a preview, whose private copy goes once no job needs it. After
        # the photo lock: the queue lock that release takes is always taken before it (_queue).
        self.release_objects([job.sha256])
        return None

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
        if facts.vector is not None:
            return vectors.prepare_vector(self, item, facts, verdict)
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
        suffix = mediatypes.extension(output_type, item.object_path.suffix)
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
                    shown, limit = against(tmp.stat().st_size / 1e6, cap / 1e6)
                    raise RenderError(f"the copy is {shown} MB with its metadata, over the {limit} MB cap")
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        return target, output_type

    def reconsider_held(self) -> None:
        reconsider_held(self)

    def reingest(self, sha256: str) -> Ingested | None:
        return reingest(self, sha256)

    def activate_held(self, item: Ingested, facts: AssetFacts, job: Job, resend: bool = False) -> str | None:
        return activate_held(self, item, facts, job, resend)

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
            if asset and mediatypes.is_vector(asset.file_type):
                vectors.release_vector_copies(self, sha256)  # copies that went only into a zip


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _texts(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def _dir_key(platform: PlatformConfig, remote_dir: str) -> str | None:
    return None if remote_dir == platform.remote_dir else remote_dir


@contextmanager
def open_pipeline(config: Config, exiftool: ExifTool | None = None) -> Iterator[Pipeline]:
    """The run's pipeline. ``exiftool``, if given, is its ExifTool (the caller may have spawned it
    ahead, ``ExifTool.spawn``); it is waited for here and closed with the pipeline."""
    config.state.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    keep_image_memory()  # before the prepare workers start
    if exiftool is None:
        exiftool = ExifTool(cwd=config.state.dir)
    # Its reads serve the prepare workers, which yield the CPU to uploads: so does it.
    exiftool.set_niceness(PREPARE_NICENESS)
    try:
        ledger = Ledger(config.ledger_path)
    except BaseException:
        exiftool.close()
        raise
    try:
        exiftool.start()
        pipeline = Pipeline(config, ledger, exiftool)
        try:
            yield pipeline
        finally:
            pipeline.close()
            pipeline.notifier.close()  # queued messages get a bounded time to go
    finally:
        exiftool.close()
        ledger.close()
