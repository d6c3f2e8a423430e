"""A vector and its preview on their way out: the copies, the zip, the preview's own job (issue 15).

- **Previews are never photos.** A JPEG or PNG with a vector of the same stem beside it is that
  vector's preview: ``accept_file`` passes it over (and held vectors are looked at again, as when a
  release arrives). A preview that settles *before* its vector may already have photo jobs: when
  the vector is taken, every one of them not yet begun is rejected as "the preview of NAME.eps",
  and the uploader checks again right before a photo's first byte (``is_preview``). Only a photo
  sent before its vector even existed in the folder is out of reach: that is logged, with the
  agency's name, for the user to remove (decisions.md D-3).
- **Metadata.** The vector's title, description and keywords (the preview's where the vector has
  none, ``assets.vector.with_preview``) are written into the copies sent: into the vector's copy
  when they differ from what it carries (EPS and AI; ExifTool cannot write SVG), and into the
  preview's copy whenever the preview travels, so an agency that reads either finds the same.
  The sources in the watch folder are never written.
- **Travel.** ``"vector"``: the vector's copy is the job's file. ``"pair"``: the preview goes as a
  job of its own (kind ``preview``), named after the vector's remote name, before it in the
  batch. ``"zip"``: one zip in the state folder holding both under the vector's remote stem, the
  zip is the job's file (and the size the server is checked against).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from loguru import logger

from stockbridge.assets import mediatypes
from stockbridge.assets.ingest import Ingested, SourceChanged, staged_briefly
from stockbridge.assets.vector import preview_candidates, vector_beside
from stockbridge.config.models import PlatformConfig
from stockbridge.errors import InputError
from stockbridge.ledger import states
from stockbridge.ledger.store import Job
from stockbridge.metadata.fields import metadata_tags
from stockbridge.render.images import RenderError
from stockbridge.rules.measures import against
from stockbridge.rules.naming import remote_name
from stockbridge.rules.plan import AssetFacts, Verdict

if TYPE_CHECKING:
    from stockbridge.delivery.prepare import Pipeline

#: The job kind of a preview sent beside its vector ("pair").
PREVIEW = "preview"
#: A fixed time for zip members, so one vector and preview always make the same zip.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def is_preview(path: Path) -> Path | None:
    """The vector ``path`` is the preview of, or None (a photo)."""
    return vector_beside(path)


def passed_over_as_preview(pipeline: Pipeline, path: Path) -> bool:
    """True when ``path`` is a vector's preview: it is not taken as a photo, and vectors held for
    a preview are looked at again (as when a release arrives)."""
    vector = is_preview(path)
    if vector is None:
        return False
    logger.info("{}: the preview of {}; vectors waiting for one are looked at again", path.name, vector.name)
    pipeline.reconsider_held()
    return True


def preview_came_meanwhile(pipeline: Pipeline, path: Path, facts: AssetFacts | None) -> None:
    """A preview that settled while the vector at ``path`` was being taken (the vector's own look
    found none, and the preview's arrival found no held job to free): look again now, or the
    vector would wait for the next arrival."""
    if facts is not None and facts.vector is not None and facts.preview is None and preview_candidates(path):
        pipeline.reconsider_held()


def retire_preview_photos(pipeline: Pipeline, vector: Path) -> None:
    """Jobs of photos that turn out to be ``vector``'s preview (same stem, taken before it came)."""
    stem_files = {path for path in vector.parent.glob(f"{_glob_escape(vector.stem)}.*") if path != vector}
    retired: set[str] = set()
    for path in sorted(stem_files):
        media = mediatypes.from_filename(path.name)
        if media is None or not media.preview:
            continue
        known = pipeline.known(path)  # its hash as taken, without reading it again
        for job in pipeline.ledger.jobs(sha256=known) if known else pipeline.ledger.jobs():
            if job.kind != "image" or Path(job.path) != path:
                continue
            if job.state in (states.PENDING, states.HELD, states.FAILED):
                reason = f"the preview of {vector.name}, not a photo: it goes with the vector"
                pipeline.ledger.set_state(job.id, states.REJECTED, reason, remote_name=None)
                logger.info("{} for {}: {}", path.name, job.platform, reason)
                retired.add(job.sha256)
            elif job.state in (states.UPLOADED, states.UPLOADING):
                logger.warning(
                    "{} was sent to {} as a photo before {} arrived; it is that vector's preview:"
                    " remove it on {}'s site",
                    path.name,
                    job.platform,
                    vector.name,
                    job.platform,
                )
    pipeline.release_objects(retired)  # the photo's private copy: no job of it will send it now


def _glob_escape(text: str) -> str:
    return "".join(f"[{char}]" if char in "*?[" else char for char in text)


def final_metadata(facts: AssetFacts, verdict: Verdict) -> dict[str, str | tuple[str, ...]]:
    """Title, description and keywords as this platform gets them (empty ones left out)."""
    values: dict[str, str | tuple[str, ...]] = {
        "title": verdict.title if verdict.title is not None else (facts.title or ""),
        "description": verdict.description if verdict.description is not None else (facts.description or ""),
        "keywords": verdict.keywords if verdict.keywords is not None else facts.keywords,
    }
    return {key: value for key, value in values.items() if value}


def prepare_vector(
    pipeline: Pipeline, item: Ingested, facts: AssetFacts, verdict: Verdict
) -> tuple[Path, str]:
    """The file this platform gets: the vector (or its copy with metadata), or the zip."""
    assert item.object_path is not None and item.file_type is not None
    rules = pipeline.platforms[verdict.platform].rules
    metadata = final_metadata(facts, verdict)
    vector = item.object_path
    if (verdict.metadata_changes or facts.preview_fields) and item.file_type != "svg":
        vector = _copy_with(pipeline, item.object_path, item.sha256, item.file_type, metadata)
    if rules.vector.travel != "zip":
        return vector, item.file_type
    stem = _remote_stem(item, pipeline.platforms[verdict.platform], item.file_type)
    members = [(vector, f"{stem}{mediatypes.extension(item.file_type)}")]
    if verdict.preview is not None:
        preview, preview_type = preview_copy(pipeline, verdict.preview, metadata, owner=item.sha256)
        members.append((preview, f"{stem}{mediatypes.extension(preview_type)}"))
    archive = _zip(pipeline, item.sha256, members)
    cap = rules.vector.max_file_mb
    if cap is not None and archive.stat().st_size > cap * 1_000_000:
        shown, limit = against(archive.stat().st_size / 1_000_000, cap)
        raise RenderError(f"the zip of the vector and its preview is {shown} MB, over the {limit} MB cap")
    return archive, "zip"


def preview_copy(
    pipeline: Pipeline, source: Path, metadata: dict[str, str | tuple[str, ...]], *, owner: str | None = None
) -> tuple[Path, str]:
    """The preview, copied in (links refused, as for releases) and given the vector's metadata.

    ``owner``: the vector's hash when the copy only goes into its zip; the copy is then named
    after the vector, and goes with the vector's other copies (``release_vector_copies``)."""
    media = mediatypes.from_filename(source.name)
    file_type = media.name if media is not None else "jpeg"
    with staged_briefly(
        source, pipeline.state_dir, allow_hardlinks=pipeline.config.watch.allow_hardlinks
    ) as (
        sha,
        staged,
    ):
        key = sha if owner is None else f"{owner}-{sha[:16]}"
        return _copy_with(pipeline, staged, key, file_type, metadata), file_type


def release_vector_copies(pipeline: Pipeline, sha256: str) -> None:
    """Remove a vector's copies (with metadata, its zips, its preview's copy for a zip) once no
    job still sends one: called when every job of the vector has its answer."""
    folder = pipeline.state_dir / "derived" / sha256[:2]
    for path in folder.glob(f"{_glob_escape(sha256)}-*"):
        if not pipeline.ledger.path_in_use(str(path)):
            path.unlink(missing_ok=True)


def _copy_with(
    pipeline: Pipeline, source: Path, sha256: str, file_type: str, metadata: dict[str, str | tuple[str, ...]]
) -> Path:
    """A derived copy of ``source`` carrying ``metadata`` (shared by platforms that want the same)."""
    plain = {key: list(value) if isinstance(value, tuple) else value for key, value in metadata.items()}
    spec = hashlib.sha256(json.dumps({"vector-metadata": plain}, sort_keys=True).encode()).hexdigest()[:16]
    suffix = mediatypes.extension(file_type, source.suffix)
    target = pipeline.state_dir / "derived" / sha256[:2] / f"{sha256}-{spec}{suffix}"
    # The lock photo copies take (Pipeline._prepare): two makers of one copy share a temporary name.
    with pipeline._copy_lock(target):
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp{suffix}")
        try:
            shutil.copyfile(source, tmp)
            tags = metadata_tags(metadata, file_type)
            if tags:
                for warning in pipeline.exiftool.write(tmp, tags):
                    logger.info("{}: {}", source.name, warning)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def _zip(pipeline: Pipeline, sha256: str, members: list[tuple[Path, str]]) -> Path:
    """One zip of ``members`` (stored: vectors and JPEGs are compressed already) in the state folder."""
    key = hashlib.sha256(json.dumps([[str(path), name] for path, name in members]).encode()).hexdigest()[:16]
    target = pipeline.state_dir / "derived" / sha256[:2] / f"{sha256}-{key}.zip"
    with pipeline._copy_lock(target):  # as _copy_with
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
                for path, name in members:
                    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                    info.external_attr = 0o644 << 16
                    with open(path, "rb") as source, archive.open(info, "w") as out:
                        shutil.copyfileobj(source, out, 1024 * 1024)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def _remote_stem(item: Ingested, platform: PlatformConfig, file_type: str) -> str:
    rule = platform.rules.filename
    name = remote_name(item.path.name, item.sha256, file_type, allowed=rule.allowed, max_chars=rule.max_chars)
    return name.rsplit(".", 1)[0]


def zip_remote_name(name: str, output_type: str) -> str:
    """The remote name of a zip: the vector's remote name with ``.zip`` for its ending."""
    if output_type != "zip":
        return name
    return f"{name.rsplit('.', 1)[0]}.zip"


def queue_preview(
    pipeline: Pipeline,
    item: Ingested,
    facts: AssetFacts,
    name: str,
    platform: PlatformConfig,
    verdict: Verdict,
    vector_remote: str,
) -> str | None:
    """The preview's own job for travel "pair", named after the vector's remote name. Returns how
    ``status`` names the preview (its remote name, or "NAME.jpg (in NAME.zip)"), or None."""
    if verdict.preview is None:
        return None
    if platform.rules.vector.travel != "pair":
        return f"{verdict.preview.name} (in {vector_remote})"  # inside the zip
    try:
        copy, file_type = preview_copy(pipeline, verdict.preview, final_metadata(facts, verdict))
    except (SourceChanged, InputError) as exc:
        logger.bind(file=item.path.name, platform=name).warning(
            "preview {} for {}: {}", verdict.preview.name, name, exc
        )
        return None
    remote = f"{vector_remote.rsplit('.', 1)[0]}{mediatypes.extension(file_type)}"
    # One preview job per vector, platform and name: its identity is all three.
    identity = hashlib.sha256(f"{item.sha256}:{_hash_file(copy)}:{name}:{remote}".encode()).hexdigest()
    size = copy.stat().st_size
    pipeline.ledger.record_asset(
        sha256=identity, path=str(verdict.preview), size=size, file_type=file_type, object_path=str(copy)
    )
    pipeline.ledger.create_job(
        sha256=identity,
        platform=name,
        kind=PREVIEW,
        state=states.PENDING,
        remote_name=remote,
        upload_path=str(copy),
        upload_size=size,
        meta={"vector": item.sha256},  # the vector it goes with (check_before_upload)
    )
    return remote


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def check_before_upload(pipeline: Pipeline, job: Job) -> bool:
    """False (and the job rejected) when a photo job's file is now a vector's preview, or when a
    preview's vector will not be sent (superseded by a newer export, say): a preview never goes alone."""
    if job.kind == PREVIEW and not job.attempts:
        return _vector_still_goes(pipeline, job)
    if job.kind != "image" or job.attempts:
        return True
    vector = is_preview(Path(job.path))
    if vector is None:
        return True
    reason = f"the preview of {vector.name}, not a photo: it goes with the vector"
    pipeline.ledger.set_state(job.id, states.REJECTED, reason, remote_name=None)
    logger.info("{} for {}: {}", Path(job.path).name, job.platform, reason)
    return False


def _vector_still_goes(pipeline: Pipeline, job: Job) -> bool:
    vector_sha = (job.meta or {}).get("vector")
    vector_job = pipeline.ledger.job_for(str(vector_sha), job.platform) if vector_sha else None
    if vector_job is None or vector_job.state != states.REJECTED:
        return True
    reason = f"its vector {Path(vector_job.path).name} is not sent ({vector_job.reason}): a preview never goes alone"
    pipeline.ledger.set_state(job.id, states.REJECTED, reason, remote_name=None)
    logger.info("{} for {}: {}", Path(job.path).name, job.platform, reason)
    return False
