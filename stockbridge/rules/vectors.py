"""A vector's verdict on one platform: format, Illustrator level, size, preview, travel (issue 15).

Pure, like the rest of planning: :func:`plan_vector` reads the probe (``assets.vector``) and the
preview found beside the vector, both in :class:`~stockbridge.rules.plan.AssetFacts`, and the
platform's ``[rules.vector]`` table. What a user can fix without a new export (a preview that is
missing or too small: put one beside it) holds the vector, and it moves on by itself when the
preview arrives (``delivery.held``), as a missing release does. What needs a new export of the
vector (too small, too new an Illustrator level, a format the agency does not take) rejects it.
Nothing is ever scaled, rasterised or converted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stockbridge.assets import mediatypes
from stockbridge.config.vector import VectorRules
from stockbridge.rules.measures import against

if TYPE_CHECKING:
    from stockbridge.rules.plan import AssetFacts

#: Which of the vector types Illustrator-level checks apply to (SVG has no Illustrator header).
_LEVELLED = ("eps", "ai")


@dataclass(slots=True)
class VectorPlan:
    rejects: list[str] = field(default_factory=list)
    holds: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    #: The preview that travels with the vector, None: the vector goes alone.
    preview: Path | None = None


def plan_vector(platform: str, facts: AssetFacts, rules: VectorRules) -> VectorPlan:
    """What ``platform`` makes of this vector and its preview."""
    plan = VectorPlan()
    probe = facts.vector
    assert probe is not None
    label = mediatypes.label(facts.file_type)
    if not rules.formats:
        plan.rejects.append(
            f"{label} vector, {platform} is set to take no vectors"
            f" (its [platforms.{platform}.rules.vector] table lists no formats)"
        )
        return plan
    if facts.file_type not in rules.formats:
        plan.rejects.append(f"{label} vector, {platform} takes only {mediatypes.labels(rules.formats)}")
    _plan_level(platform, facts, rules, plan)
    _plan_size(platform, facts, rules, plan)
    _plan_preview(platform, facts, rules, plan)
    if facts.preview_fields:
        plan.changes.append(
            f"{', '.join(facts.preview_fields)} from the preview {facts.preview.path.name if facts.preview else ''}"
            " (the vector has none)"
        )
    if rules.travel == "zip":
        inside = " and its preview" if plan.preview is not None else " alone"
        plan.changes.append(f"sent as one zip named after the stem: the {label}{inside}")
    return plan


def _plan_level(platform: str, facts: AssetFacts, rules: VectorRules, plan: VectorPlan) -> None:
    probe = facts.vector
    assert probe is not None
    limit = rules.max_illustrator_version
    if limit is None or facts.file_type not in _LEVELLED:
        return
    wanted = f"Illustrator {limit:g} or older"
    if probe.illustrator_version is None and probe.saved_by is not None and probe.saved_by <= limit:
        return  # saved by an Illustrator no newer than the limit: its level is no newer either
    if probe.illustrator_version is None:
        text = f"Illustrator level {probe.version_text}, {platform} asks for {wanted}"
        if rules.unknown_version == "hold":
            plan.holds.append(f"{text}; save it as Illustrator {limit:g} EPS and export again")
        else:
            plan.changes.append(f'{text}: sent anyway (unknown_version = "send")')
    elif probe.illustrator_version > limit:
        plan.rejects.append(
            f"saved as Illustrator {probe.illustrator_version:g}, {platform} takes {wanted};"
            f" save it as Illustrator {limit:g} EPS and export again"
        )


def _plan_size(platform: str, facts: AssetFacts, rules: VectorRules, plan: VectorPlan) -> None:
    probe = facts.vector
    assert probe is not None
    megapixels = probe.megapixels
    limited = rules.megapixel_formats is None or facts.file_type in rules.megapixel_formats
    measured = f"({probe.width}×{probe.height} pt, {probe.size_from})"
    if not limited:
        pass  # this format has no size limit on this platform
    elif megapixels is None and (rules.min_megapixels or rules.max_megapixels):
        plan.rejects.append(f"drawing size unknown, {platform} needs to know its megapixels")
    elif megapixels is not None:
        if rules.min_megapixels is not None and megapixels < rules.min_megapixels:
            shown, needed = against(megapixels, rules.min_megapixels, limit_decimals=1)
            plan.rejects.append(
                f"{shown} MP {measured}, {platform} needs at least {needed} MP; enlarge the artboard and export again"
            )
        if rules.max_megapixels is not None and megapixels > rules.max_megapixels:
            shown, cap = against(megapixels, rules.max_megapixels, limit_decimals=1)
            plan.rejects.append(
                f"{shown} MP {measured}, {platform} takes at most {cap} MP; shrink the artboard and export again"
            )
    if rules.max_file_mb is not None and facts.size_bytes > rules.max_file_mb * 1_000_000:
        shown, cap = against(facts.size_bytes / 1_000_000, rules.max_file_mb)
        plan.rejects.append(f"{shown} MB, {platform} takes vectors of at most {cap} MB")


def _plan_preview(platform: str, facts: AssetFacts, rules: VectorRules, plan: VectorPlan) -> None:
    if not rules.takes_preview:
        return
    required = rules.preview == "required"
    found = facts.preview
    if found is None:
        if required:
            plan.holds.append(
                f"waiting for {facts.preview_expected or 'a JPEG preview of the same name'}:"
                f" {platform} needs a preview beside the vector; it goes by itself once the preview is there"
            )
        return
    problem = found.problem or _too_small(platform, found.width, found.height, found.megapixels, rules)
    if problem is None:
        plan.preview = found.path
        return
    if required:
        plan.holds.append(f"{problem}; put a good preview beside the vector and it goes by itself")
    else:
        plan.changes.append(f"{problem}: the vector goes without it")


def _too_small(
    platform: str, width: int | None, height: int | None, megapixels: float | None, rules: VectorRules
) -> str | None:
    if rules.preview_min_megapixels is not None and (megapixels or 0) < rules.preview_min_megapixels:
        shown, needed = against(megapixels or 0, rules.preview_min_megapixels, limit_decimals=1)
        return f"preview is {shown} MP ({width}×{height}), {platform} needs at least {needed} MP"
    if rules.preview_min_edge is not None and min(width or 0, height or 0) < rules.preview_min_edge:
        edge = rules.preview_min_edge
        return f"preview is {width}×{height}, {platform} needs at least {edge}×{edge}"
    return None


def vector_note(platform: str, file_type: str | None, metadata_changed: bool) -> str | None:
    """What cannot be done to this platform's copy: ExifTool writes XMP into EPS and AI, not SVG."""
    media = mediatypes.get(file_type)
    if metadata_changed and media is not None and media.name == "svg":
        return f"SVG metadata cannot be written: {platform} gets the file as exported (the CSV and the preview carry the changes)"
    return None
