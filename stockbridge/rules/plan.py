"""Planning: what each platform will get, as a pure function of (asset facts, rules).

``evaluate`` never touches a file or the network, so ``explain`` can print exactly what ``run`` will do
and the rules can be tested table by table. A verdict is data, not an exception:

- ``accept``: send it, possibly with ``changes`` (a downscaled or converted copy, keywords trimmed, a
  title shortened, a release delivered with it);
- ``hold``: the user can fix it (add keywords, set a title, add a release) and export again — or, for
  a missing release, just add the release: the job moves on by itself;
- ``reject``: no change stockbridge may make fixes it (too few pixels, a format it may not convert).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from stockbridge.assets import mediatypes
from stockbridge.config.rules import EditorialRoute, RulesConfig, TextRule
from stockbridge.metadata.boilerplate import boilerplate
from stockbridge.rules.ai import plan_ai
from stockbridge.rules.categories import plan_categories
from stockbridge.rules.measures import against, limit_text

if TYPE_CHECKING:
    from stockbridge.assets.vector import PreviewCheck, VectorProbe
    from stockbridge.assets.video import ClipFacts
    from stockbridge.render.images import RenderSpec
    from stockbridge.render.pixels import ImageProps

ACCEPT: Literal["accept"] = "accept"
HOLD: Literal["hold"] = "hold"
REJECT: Literal["reject"] = "reject"

#: ExifTool's IPTC table: Keywords are string[0,64] bytes (html/TagNames/IPTC.html).
IPTC_KEYWORD_MAX_BYTES = 64

_RELEASE_NAMES = {"people": "model release", "property": "property release"}
_RELEASE_SIGNALS = {"people": "people in frame", "property": "property in frame"}


@dataclass(frozen=True, slots=True)
class AssetFacts:
    """What planning needs to know about one source file."""

    file_type: str | None  # sniffed from content: "jpeg", "png", "tiff" or None
    size_bytes: int
    width: int | None = None
    height: int | None = None
    title: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()
    #: Title/description text passed over as camera or software boilerplate (metadata/boilerplate.py).
    placeholders: tuple[str, ...] = ()
    props: ImageProps | None = None  # pixel facts from the file's header (mode, bits, ICC, orientation)
    clip: ClipFacts | None = None  # a video's facts (ffprobe): planned by rules/video.py
    editorial: bool = False
    release_needs: frozenset[str] = frozenset()  # "people", "property"
    releases: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)  # found, by kind
    release_hints: Mapping[str, str] = field(default_factory=dict)  # kind → where it was looked for
    #: What marks it AI-generated ("IPTC DigitalSourceType trainedAlgorithmicMedia"); None: nothing.
    ai: str | None = None
    #: The file's own categories and where they came from (rules/categories.py).
    categories: tuple[str, ...] = ()
    category_source: str | None = None
    illustration: bool = False
    mature: bool = False
    #: A vector's facts (assets/vector.py), its preview as found beside it (None: none there),
    #: the preview's expected name, and the fields taken from the preview (the vector had none).
    vector: VectorProbe | None = None
    preview: PreviewCheck | None = None
    preview_expected: str = ""
    preview_fields: tuple[str, ...] = ()

    @property
    def megapixels(self) -> float | None:
        if not self.width or not self.height:
            return None
        return self.width * self.height / 1_000_000


@dataclass(frozen=True, slots=True)
class Verdict:
    platform: str
    verdict: Literal["accept", "hold", "reject"]
    reasons: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    #: New metadata for this platform's copy; None = as in the source.
    keywords: tuple[str, ...] | None = None
    title: str | None = None
    description: str | None = None
    #: Pixel work for this platform's copy; None = the source's pixels, byte for byte.
    render: RenderSpec | None = None
    #: Where this file goes on the server when not the platform's remote_dir (editorial).
    remote_dir: str | None = None
    #: Release files to deliver with it.
    releases: tuple[Path, ...] = ()
    #: This platform's category values for the file (its CSV's Categories/Category cell).
    categories: tuple[str, ...] = ()
    #: Steps the user must take on the agency's website for this file (listed in `status`).
    manual: tuple[str, ...] = ()
    #: CSV cells for this file only (header → value), e.g. an AI flag column.
    csv: tuple[tuple[str, str], ...] = ()
    #: A vector's preview that travels with it (``[rules.vector] travel``), None: none goes.
    preview: Path | None = None
    #: Sent as the source, whatever else changes (a clip): new metadata goes to the CSV only.
    native: bool = False

    @property
    def metadata_changes(self) -> dict[str, str | tuple[str, ...]]:
        """``{"title"|"description"|"keywords": new value}`` for the fields this copy changes."""
        changed: dict[str, str | tuple[str, ...]] = {}
        if self.title is not None:
            changed["title"] = self.title
        if self.description is not None:
            changed["description"] = self.description
        if self.keywords is not None:
            changed["keywords"] = self.keywords
        return changed

    @property
    def needs_copy(self) -> bool:
        """True when the file sent must differ from the source (a derived copy)."""
        return not self.native and (self.render is not None or bool(self.metadata_changes))


def evaluate(platform: str, facts: AssetFacts, rules: RulesConfig) -> Verdict:
    """A clip (``facts.clip``) is checked against ``rules.video`` (rules/video.py)."""
    rejects: list[str] = []
    holds: list[str] = []
    changes: list[str] = []
    render_spec = None

    preview = None
    if facts.clip is not None:
        from stockbridge.rules.video import clip_rejects

        rejects.extend(clip_rejects(platform, facts.clip, rules.video))
    elif facts.vector is not None:
        from stockbridge.rules.vectors import plan_vector

        vector = plan_vector(platform, facts, rules.vector)
        rejects.extend(vector.rejects)
        holds.extend(vector.holds)
        changes.extend(vector.changes)
        preview = vector.preview
    elif facts.props is not None and facts.file_type is not None:
        from stockbridge.render.images import plan_render

        rendered = plan_render(platform, facts.props, facts.file_type, facts.size_bytes, rules)
        rejects.extend(rendered.reject)
        changes.extend(rendered.changes)
        render_spec = rendered.spec
    else:
        rejects.extend(_format_and_size(platform, facts, rules))

    # A clip's and a vector's own limits are above.
    if rules.min_megapixels is not None and facts.clip is None and facts.vector is None:
        megapixels = facts.megapixels
        if megapixels is None:
            needed = limit_text(rules.min_megapixels, 1)
            rejects.append(f"pixel size unknown, {platform} needs at least {needed} MP")
        elif megapixels < rules.min_megapixels:
            shown, needed = against(megapixels, rules.min_megapixels, limit_decimals=1)
            rejects.append(
                f"{shown} MP ({facts.width}×{facts.height}), {platform} needs at least "
                f"{needed} MP; stockbridge never upscales"
            )

    remote_dir = None
    if facts.editorial:
        if rules.editorial == "reject":
            rejects.append(f"editorial file, {platform} is set to take no editorial work")
        elif isinstance(rules.editorial, EditorialRoute):
            remote_dir = rules.editorial.remote_dir
            changes.append(f"editorial: uploaded into {remote_dir}/")

    # The title as the agency will read it (an empty one filled from the description).
    shown_title = facts.title if (facts.title or "").strip() else None
    if shown_title is None and rules.title.from_description:
        shown_title = facts.description
    ai = plan_ai(platform, facts.ai, facts.keywords, {"title": shown_title}, rules.ai)
    rejects.extend(ai.rejects)
    changes.extend(ai.changes)
    categories = plan_categories(platform, facts.categories, facts.category_source, rules.categories)
    holds.extend(categories.holds)
    changes.extend(categories.changes)

    source_keywords = ai.keywords if ai.keywords is not None else facts.keywords
    keywords = _plan_keywords(platform, source_keywords, rules, holds, changes)
    if keywords is None and ai.keywords is not None:
        keywords = ai.keywords

    filled = bool(
        not (facts.title or "").strip() and rules.title.from_description and (facts.description or "").strip()
    )
    if filled:
        changes.append("title filled from the description")
    title = _plan_text(
        platform,
        "title",
        facts.description if filled else facts.title,
        rules.title,
        holds,
        changes,
        facts.placeholders,
        filled=filled,
    )
    description = _plan_text(
        platform, "description", facts.description, rules.description, holds, changes, facts.placeholders
    )

    releases = _plan_releases(platform, facts, rules, holds, changes)
    # A clip goes native, byte for byte: metadata changes go only into the CSV (decisions.md V-1).
    video = rules.video
    if facts.clip is not None and video is not None and video.remote_dir and remote_dir is None:
        remote_dir = video.remote_dir
        changes.append(f"clip: uploaded into {remote_dir}/")
    if facts.clip is not None and (keywords is not None or title is not None or description is not None):
        changes.append("the clip goes as exported: the changed metadata is in the CSV manifest only")

    if keywords is not None or title is not None or description is not None:
        for keyword in keywords if keywords is not None else facts.keywords:
            size = len(keyword.encode("utf-8"))
            if size > IPTC_KEYWORD_MAX_BYTES:
                changes.append(
                    f'keyword "{keyword}" is {size} bytes: IPTC keeps the first {IPTC_KEYWORD_MAX_BYTES}, XMP all of it'
                )

    if facts.vector is not None:
        from stockbridge.rules.vectors import vector_note

        changed = keywords is not None or title is not None or description is not None
        note = vector_note(platform, facts.file_type, changed)
        if note:
            changes.append(note)
    if rejects:
        return Verdict(platform, REJECT, tuple(rejects + holds))
    if holds:
        return Verdict(platform, HOLD, tuple(holds), tuple(changes))
    return Verdict(
        platform,
        ACCEPT,
        (),
        tuple(changes),
        keywords=keywords,
        title=title,
        description=description,
        render=render_spec,
        remote_dir=remote_dir,
        releases=releases,
        categories=categories.values,
        manual=ai.manual + categories.manual,
        csv=ai.csv,
        preview=preview,
        native=facts.clip is not None,
    )


def evaluate_all(facts: AssetFacts, rules_by_platform: dict[str, RulesConfig]) -> list[Verdict]:
    return [evaluate(name, facts, rules) for name, rules in rules_by_platform.items()]


# ---------------------------------------------------------------------------------------------


def _format_and_size(platform: str, facts: AssetFacts, rules: RulesConfig) -> list[str]:
    """Without pixel facts (the header could not be read) only what the file itself shows."""
    rejects = []
    type_name = mediatypes.label(facts.file_type)
    if rules.formats is not None and facts.file_type not in rules.formats:
        accepted = mediatypes.labels(rules.formats)
        rejects.append(f"{type_name} file, {platform} takes only {accepted}")
    if rules.max_file_mb is not None and facts.size_bytes > rules.max_file_mb * 1_000_000:
        shown, cap = against(facts.size_bytes / 1_000_000, rules.max_file_mb)
        rejects.append(f"{shown} MB, {platform} takes at most {cap} MB")
    return rejects


def _plan_keywords(
    platform: str, keywords: tuple[str, ...], rules: RulesConfig, holds: list[str], changes: list[str]
) -> tuple[str, ...] | None:
    count = len(keywords)
    limit = rules.keywords
    if count < limit.min:
        holds.append(
            f"{_plural(count, 'keyword')}, {platform} needs at least {limit.min}; "
            "add keywords in your editor and export again"
        )
    if limit.max is not None and count > limit.max:
        if limit.over_max == "hold":
            holds.append(
                f"{count} keywords, {platform} takes at most {limit.max}; remove some and export again "
                '(or set keywords.over_max = "truncate")'
            )
            return None
        changes.append(f"keywords {count} → {limit.max} (first {limit.max} kept)")
        return tuple(keywords[: limit.max])
    return None


def _plan_text(
    platform: str,
    what: str,
    value: str | None,
    rule: TextRule,
    holds: list[str],
    changes: list[str],
    placeholders: Sequence[str] = (),
    *,
    filled: bool = False,
) -> str | None:
    """The new value for this platform's copy, or None when the source's value stands.

    ``filled``: ``value`` is another field's text (the description, for an empty title): it is
    always the new value, cut to ``max_chars`` whatever ``over_max`` says. Forbidden characters
    go (or hold the file) before the length is measured.
    """
    text = (value or "").strip()
    if rule.required and not text:
        holds.append(
            f"no {what}, {platform} requires one; set the {what} in your editor and export again"
            + _placeholder_note(what, placeholders)
        )
        return None
    changed = filled
    found = [char for char in dict.fromkeys(text) if char in rule.forbidden]
    if found:
        names = _character_names(found)
        if rule.on_forbidden == "hold":
            holds.append(
                f"{what} contains {names}, which {platform} does not allow; remove them in your editor and "
                f'export again (or set {what}.on_forbidden = "replace")'
            )
            return None
        text = _collapse(text.translate({ord(char): rule.replace_with for char in found}))
        if not text:
            holds.append(
                f"{what} is only {names}, which {platform} does not allow; set a {what} and export again"
            )
            return None
        changes.append(f"{what}: {names} replaced")
        changed = True
    if rule.max_chars is not None and len(text) > rule.max_chars:
        if filled or rule.over_max == "shorten":
            short = shorten(text, rule.max_chars)
            if not filled:
                changes.append(f"{what} {len(text)} → {len(short)} characters (cut at a word boundary)")
            return short
        holds.append(
            f"{what} is {len(text)} characters, {platform} allows {rule.max_chars}; shorten it and export again"
        )
        return None
    return _collapse(text) if changed else None


#: How reasons name a forbidden character; any other is quoted: '"#" characters'.
_CHARACTER_NAMES = {
    ",": "commas",
    ";": "semicolons",
    ":": "colons",
    '"': "double quotes",
    "'": "apostrophes",
    "|": "vertical bars",
    "\t": "tabs",
    "\n": "line breaks",
    "\r": "line breaks",
    " ": "spaces",
}


def _character_names(characters: Sequence[str]) -> str:
    """ "commas", "commas and semicolons", '"#" characters' — in the order they appear."""
    names = list(dict.fromkeys(_CHARACTER_NAMES.get(char, f'"{char}" characters') for char in characters))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _placeholder_note(what: str, placeholders: Sequence[str]) -> str:
    """Why a file that shows text has "no title": the text is what a camera writes by itself."""
    for text in placeholders:
        entry = boilerplate(text)
        if entry is not None:
            return f' ("{text}" is a placeholder written by {entry.origin}, not a {what})'
    return ""


def _plan_releases(
    platform: str, facts: AssetFacts, rules: RulesConfig, holds: list[str], changes: list[str]
) -> tuple[Path, ...]:
    wanted = [kind for kind in rules.releases.required_for if kind in facts.release_needs]
    deliver: list[Path] = []
    for kind in wanted:
        found = facts.releases.get(kind, ())
        if not found:
            hint = f"; {facts.release_hints[kind]}" if facts.release_hints.get(kind) else ""
            holds.append(f"{_RELEASE_SIGNALS[kind]}, no {_RELEASE_NAMES[kind]} found{hint}")
            continue
        delivery = rules.releases.delivery
        for path in found:
            if delivery == "folder":
                changes.append(f"release {path.name} → /{(rules.releases.remote_dir or '').strip('/')}/")
            elif delivery == "suffix":
                changes.append(f"release {path.name} → named after the image ({rules.releases.suffix})")
            else:
                changes.append(f"release {path.name}: attach it on the website (listed in the batch report)")
            deliver.append(path)
    return tuple(deliver)


def shorten(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` at a word boundary, without trailing punctuation."""
    text = _collapse(text)
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars + 1]
    space = cut.rfind(" ")
    # A single long word: cut it (rather than send nothing).
    short = cut[:space] if space > max_chars // 2 else text[:max_chars]
    return short.rstrip(" ,;:-–—")


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def describe(verdicts: Sequence[Verdict]) -> str:
    """One line per platform, for logs."""
    return "; ".join(
        f"{v.platform}: {v.verdict}" + (f" ({', '.join(v.reasons)})" if v.reasons else "") for v in verdicts
    )
