"""What planning knows about an asset (metadata, pixels, editorial, releases, routes), and
``explain``: each platform's verdict on a file, decided exactly as ``run`` decides it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from loguru import logger

from stockbridge.assets import mediatypes
from stockbridge.assets.ingest import Ingested, inspect
from stockbridge.assets.vector import with_preview
from stockbridge.config.models import Config
from stockbridge.errors import InputError
from stockbridge.metadata.exiftool import ExifTool
from stockbridge.render.pixels import image_props
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
        if not mediatypes.is_vector(item.file_type):
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
        item = inspect(
            path,
            exiftool,
            extra_tags=extra,
            allow_hardlinks=config.watch.allow_hardlinks,
            decode=config.watch.verify == "decode",
        )
    except (InputError, OSError) as exc:
        return {name: Verdict(name, "reject", (str(exc),)) for name in platforms}  # with its hint
    if item.problem is not None:
        return {name: Verdict(name, "reject", (item.problem,)) for name in platforms}
    facts = assess(item, config, exiftool)
    routed = routed_platforms(item, config)
    verdicts = {}
    for name, platform in platforms.items():
        if routed is not None and name not in routed:
            reason = f"not for {name}: a route sends this file only to {', '.join(sorted(routed)) or 'no platform'}"
            verdicts[name] = Verdict(name, "reject", (reason,))
        else:
            verdicts[name] = evaluate(name, facts, platform.rules)
    return verdicts
