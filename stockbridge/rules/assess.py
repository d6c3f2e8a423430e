"""What planning knows about an asset (metadata, pixels, editorial, releases, routes), and
``explain``: each platform's verdict on a file, decided exactly as ``run`` decides it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from loguru import logger

from stockbridge.assets import mediatypes
from stockbridge.assets.ingest import Ingested, inspect
from stockbridge.assets.vector import vector_beside, with_preview
from stockbridge.config.models import Config
from stockbridge.errors import InputError
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.pixels import image_props
from stockbridge.rules.ai import ai_signal
from stockbridge.rules.categories import extra_tags, file_categories, has_flag
from stockbridge.rules.plan import AssetFacts, Verdict, evaluate
from stockbridge.rules.releases import (
    find_releases,
    is_editorial,
    release_hint,
    release_needs,
    route_platforms,
)


def assess(item: Ingested, config: Config, exiftool: ExifTool | None = None) -> AssetFacts:
    """Everything planning needs about ``item``: metadata, pixel facts, editorial, releases; for
    a vector, its preview beside it too (read with ``exiftool`` when given)."""
    assert item.object_path is not None and item.metadata is not None and item.file_type is not None
    root = config.watch.folder
    metadata = item.metadata
    props = None
    try:
        # A clip's facts are ffprobe's (item.clip); a vector's come from assets/vector.py.
        if item.clip is None and not mediatypes.is_vector(item.file_type):
            props = image_props(item.object_path, item.file_type)
    except InputError as exc:
        logger.debug("{}: no pixel facts ({})", item.path.name, exc)
    needs = release_needs(metadata, config.releases)
    found = find_releases(item.path, root, metadata, config.releases) if needs else {}
    hints = {
        kind: release_hint(kind, item.path, metadata, config.releases)
        for kind in needs
        if not found.get(kind)
    }
    categories, category_source = file_categories(item.path, root, metadata.extra, config.categories)
    facts = item.facts()
    if facts.vector is not None:
        facts = with_preview(facts, item.path, exiftool)
    return replace(
        facts,
        props=props,
        editorial=is_editorial(item.path, root, metadata, config.editorial),
        release_needs=needs,
        releases=found,
        release_hints=hints,
        ai=ai_signal(metadata.keywords, metadata.extra, config.ai),
        categories=categories,
        category_source=category_source,
        # A vector is an illustration whatever its metadata says (agencies file it so themselves).
        illustration=facts.vector is not None
        or has_flag(item.path, root, metadata.keywords, metadata.extra, config.illustration),
        mature=has_flag(item.path, root, metadata.keywords, metadata.extra, config.mature),
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
    return explain_details(path, config, exiftool)[1]


def explain_details(
    path: Path, config: Config, exiftool: ExifTool
) -> tuple[AssetFacts | None, dict[str, Verdict]]:
    """``explain_file``, with the facts the verdicts came from (None: the file was not readable)."""
    platforms = config.enabled_platforms()
    vector = vector_beside(path)
    if vector is not None:
        reason = f"the preview of {vector.name}: it travels with the vector, never as a photo of its own"
        return None, {name: Verdict(name, "reject", (reason,)) for name in platforms}
    try:
        item = inspect(
            path,
            exiftool,
            extra_tags=extra_tags(config),
            allow_hardlinks=config.watch.allow_hardlinks,
            decode=config.watch.verify == "decode",
        )
    except (InputError, OSError) as exc:
        return None, {name: Verdict(name, "reject", (str(exc),)) for name in platforms}  # with its hint
    if item.problem is not None:
        return None, {name: Verdict(name, "reject", (item.problem,)) for name in platforms}
    facts = assess(item, config, exiftool)
    routed = routed_platforms(item, config)
    verdicts = {}
    for name, platform in platforms.items():
        if routed is not None and name not in routed:
            reason = f"not for {name}: a route sends this file only to {', '.join(sorted(routed)) or 'no platform'}"
            verdicts[name] = Verdict(name, "reject", (reason,))
        else:
            verdicts[name] = evaluate(name, facts, platform.rules)
    return facts, verdicts


def vector_facts(facts: AssetFacts) -> list[str]:
    """``explain``'s lines about a vector: format and level, drawing size, preview."""
    probe = facts.vector
    assert probe is not None
    level = f", {probe.level}" if probe.level else ""
    lines = [f"vector: {mediatypes.label(facts.file_type)}{level}, Illustrator level {probe.version_text}"]
    if probe.megapixels is not None:
        header = ""
        if probe.header_bbox is not None:
            header = "; header bounding box " + " ".join(f"{value:g}" for value in probe.header_bbox)
        lines.append(
            f"size: {probe.width}×{probe.height} pt = {probe.megapixels:.1f} MP at 1 pt = 1 px"
            f" ({probe.size_from}{header})"
        )
    preview = facts.preview
    if preview is None:
        lines.append(f"preview: none beside it (expected {facts.preview_expected})")
    elif preview.problem is not None:
        lines.append(f"preview: {preview.problem}")
    else:
        lines.append(
            f"preview: {preview.path.name}, {mediatypes.label(preview.file_type)} {preview.width}×{preview.height}"
            f" ({preview.megapixels or 0:.1f} MP)"
        )
    return lines
