"""Jobs that wait: held jobs looked at again (a release arrived, ``stockbridge resend``), and the
release files that travel with a photo, queued as jobs of their own."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from stockbridge.assets import mediatypes
from stockbridge.assets.ingest import Ingested, SourceChanged, stage_release
from stockbridge.assets.vector import probe as probe_vector
from stockbridge.assets.video import ProbeUnavailable, probe
from stockbridge.config.models import PlatformConfig
from stockbridge.delivery.connection import join_remote
from stockbridge.delivery.policy import describe_unexpected
from stockbridge.errors import InputError, MetadataError
from stockbridge.ledger import states
from stockbridge.ledger.store import Job
from stockbridge.rules.plan import ACCEPT, AssetFacts, Verdict, evaluate
from stockbridge.rules.releases import release_remote_names

if TYPE_CHECKING:
    from stockbridge.delivery.prepare import Pipeline


def reconsider_held(pipeline: Pipeline) -> None:
    """Look again at held jobs: a release that arrived lets them move on by themselves."""
    with pipeline._queue_lock:  # two releases arriving at once must not activate a job twice
        held = [job for job in pipeline.ledger.jobs(states=[states.HELD]) if job.kind == "image"]
        for sha256 in sorted({job.sha256 for job in held}):
            item = reingest(pipeline, sha256)
            if item is None:
                continue
            facts = pipeline.facts_for(item)
            for job in held:
                if job.sha256 == sha256 and job.platform in pipeline.platforms:
                    activate_held(pipeline, item, facts, job)


def reingest(pipeline: Pipeline, sha256: str) -> Ingested | None:
    """An asset taken before, from its private copy (metadata read again); None if that is gone."""
    asset = pipeline.ledger.asset(sha256)
    if asset is None or not asset.object_path or not Path(asset.object_path).is_file():
        return None
    object_path = Path(asset.object_path)
    result = pipeline.exiftool.read([object_path], extra_tags=pipeline._extra_tags())[object_path]
    if isinstance(result, MetadataError):
        return None
    clip = None
    if mediatypes.is_video(asset.file_type):
        try:
            answer = probe(object_path, asset.file_type or "")
        except ProbeUnavailable as exc:
            logger.warning("{}: {}", Path(asset.path).name, exc)
            return None
        if isinstance(answer, str):
            return None
        clip = answer
    vector = None
    if asset.file_type and mediatypes.is_vector(asset.file_type):
        try:
            vector = probe_vector(object_path, asset.file_type)
        except InputError:
            return None  # Ghostscript is missing: looked at again once it is there
    return Ingested(
        sha256,
        Path(asset.path),
        asset.size,
        object_path,
        asset.file_type,
        result,
        (0, 0, 0, 0),
        clip=clip,
        vector=vector,
    )


def activate_held(
    pipeline: Pipeline, item: Ingested, facts: AssetFacts, job: Job, resend: bool = False
) -> str | None:
    """Queue a held job whose verdict is now accept. ``resend``: even a re-export of a photo
    sent there (``stockbridge resend``). Returns why it stays held, or None: queued."""
    platform = pipeline.platforms[job.platform]
    verdict = evaluate(job.platform, facts, platform.rules)
    if verdict.verdict != ACCEPT:
        reason = "; ".join(verdict.reasons)
        if reason != job.reason:
            pipeline.ledger.set_state(job.id, states.HELD, reason)  # the rules changed: say why now
        return reason
    if not resend and pipeline._held_as_reexport(item, job.platform, platform, job):
        return pipeline.ledger.job(job.id).reason
    try:
        upload_path, output_type = pipeline._prepare(item, facts, verdict)
    except Exception as exc:  # even an unforeseen error leaves the other held jobs to go on
        # (the job stays held: the ledger has no held → failed move; the next release tries again)
        reason = f"could not prepare the copy: {describe_unexpected(exc)}"
        logger.opt(exception=exc).debug("{} for {}: traceback", item.path.name, job.platform)
        logger.bind(file=item.path.name, platform=job.platform, state=states.HELD).error(
            "{} for {}: {}", item.path.name, job.platform, reason
        )
        return reason
    logger.bind(file=item.path.name, platform=job.platform, state=states.PENDING).info(
        "{} for {}: {}", item.path.name, job.platform, "resent on request" if resend else "no longer held"
    )
    pipeline._queue(
        item, facts, job.platform, platform, verdict, upload_path, output_type, held=job, resend=resend
    )
    return None


def queue_releases(
    pipeline: Pipeline,
    item: Ingested,
    name: str,
    platform: PlatformConfig,
    verdict: Verdict,
    image_remote: str,
) -> list[str]:
    """Jobs for the releases this platform gets with the image. Returns their names for reports."""
    rule = platform.rules.releases
    if not verdict.releases:
        return []
    if rule.delivery == "manual":
        return [str(path) for path in verdict.releases]
    names = []
    remote_dir = join_remote(platform.remote_dir, rule.remote_dir if rule.delivery == "folder" else None)
    for path, remote in release_remote_names(image_remote, verdict.releases, rule):
        try:
            sha, size, staged = stage_release(
                path, pipeline.state_dir, allow_hardlinks=pipeline.config.watch.allow_hardlinks
            )
        except (SourceChanged, InputError) as exc:
            logger.bind(file=item.path.name, platform=name).warning(
                "release {} for {}: {}", path.name, name, exc
            )
            continue
        # A release shared by many photos goes once (folder); named after each photo, once per photo.
        identity = (
            sha if rule.delivery == "folder" else hashlib.sha256(f"{sha}:{remote}".encode()).hexdigest()
        )
        pipeline.ledger.record_asset(
            sha256=identity, path=str(path), size=size, file_type=None, object_path=str(staged)
        )
        pipeline.ledger.create_job(
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
