"""Releases, editorial files and routes: which files need what, and where they may go.

Pure functions over an image's path, its :class:`~stockbridge.metadata.fields.ImageMetadata` and the
user's ``[releases]``, ``[editorial]`` and ``[[routes]]`` config (design.md "Metadata"):

- :func:`release_needs`: does the image need a model ("people") or property ("property") release;
- :func:`is_release_file`: is this file a release (never uploaded as a photo);
- :func:`find_releases`: the release files that belong to an image;
- :func:`missing_release_reason`: what to tell the user when one is missing;
- :func:`release_remote_names`: what the releases are called on a platform's server;
- :func:`is_editorial` and :func:`route_platforms`: where the image may go.

Folder names from the config are matched without regard to case (an export made on macOS or
Windows may spell ``Releases`` or ``EDITORIAL``). Sidecar patterns are matched as written, like
globs on Linux: ``_PR`` must not catch ``Trip_Prague.jpg``. Where a file could be either, it is
taken for a release: a signed release sent to an agency as a photo is worse than a photo held back.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from stockbridge.config.models import EditorialConfig, ReleasesConfig, RouteConfig
from stockbridge.config.rules import ReleaseRule
from stockbridge.intake.scan import is_ignored
from stockbridge.metadata.fields import ImageMetadata
from stockbridge.rules.naming import safe_stem

PEOPLE = "people"
PROPERTY = "property"
KINDS = (PEOPLE, PROPERTY)

_RELEASE_NAMES = {PEOPLE: "model release", PROPERTY: "property release"}
_ID_TAGS = {PEOPLE: "ModelReleaseID", PROPERTY: "PropertyReleaseID"}

# PLUS status values (Image/ExifTool/PLUS.pm; useplus.org LDF vocabulary). With -n ExifTool gives
# the code; a file written by hand or another tool may hold the printed name instead.
#   MR-NON "None"                                 people in frame, no release exists → needs one
#   MR-NAP "Not Applicable"                       nobody (recognisable) in frame    → no need
#   MR-UMR "Unlimited Model Releases"             released                          → needs the file
#   MR-LMR "Limited or Incomplete Model Releases" partly released                   → needs the file
# PR-* likewise for property. Any other non-empty value also counts as a need: a status we do
# not understand is no proof that nobody is in frame.
_NOT_APPLICABLE = frozenset({"mr-nap", "pr-nap", "not applicable"})
_STATUS_NAMES = {
    "mr-non": "None",
    "mr-nap": "Not Applicable",
    "mr-umr": "Unlimited Model Releases",
    "mr-lmr": "Limited or Incomplete Model Releases",
    "pr-non": "None",
    "pr-nap": "Not Applicable",
    "pr-upr": "Unlimited Property Releases",
    "pr-lpr": "Limited or Incomplete Property Releases",
}
_PLUS_VOCABULARY = "http://ns.useplus.org/ldf/vocab/"
#: A sidecar pattern holding this is a property release (config.example.toml [releases]).
_PROPERTY_MARK = "_PR"
#: A release file's extension on a server: letters and digits only.
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,10}")
_UNSAFE_SUFFIX = re.compile(r"[^A-Za-z0-9_-]+")


# ---------------------------------------------------------------------- what an image needs


def release_needs(metadata: ImageMetadata, config: ReleasesConfig) -> frozenset[str]:
    """ "people" and/or "property": the releases this image needs, from what its metadata says."""
    return frozenset(_need_signals(metadata, config))


def _need_signals(metadata: ImageMetadata, config: ReleasesConfig) -> dict[str, str]:
    """Each needed kind with the first signal that says so, for the user ("keyword 'model'")."""
    signals: dict[str, str] = {}
    checks = (
        (
            PEOPLE,
            metadata.model_release_status,
            "ModelReleaseStatus",
            metadata.persons_in_image,
            config.people_keywords,
        ),
        (PROPERTY, metadata.property_release_status, "PropertyReleaseStatus", (), config.property_keywords),
    )
    for kind, status, status_tag, persons, keywords in checks:
        code = _status_code(status)
        if code and code not in _NOT_APPLICABLE:
            signals[kind] = f"{status_tag}: {_STATUS_NAMES.get(code, (status or '').strip())}"
        elif persons:
            signals[kind] = f"PersonInImage: {', '.join(persons)}"
        else:
            keyword = _first_shared(metadata.keywords, keywords)
            if keyword is not None:
                signals[kind] = f"keyword {keyword!r}"
    return signals


def _status_code(status: str | None) -> str:
    text = (status or "").strip()
    return text.removeprefix(_PLUS_VOCABULARY).strip().casefold()


def _first_shared(keywords: Iterable[str], wanted: Iterable[str]) -> str | None:
    folded = {word.strip().casefold() for word in wanted if word.strip()}
    return next((keyword for keyword in keywords if keyword.strip().casefold() in folded), None)


# ---------------------------------------------------------------------- release files


def is_release_file(path: Path, watch_root: Path, config: ReleasesConfig) -> bool:
    """True if ``path`` is a release, never a photo to upload.

    A release lies in the releases folder (any depth), or its name fits a sidecar pattern for
    some stem: ``IMG_1.release.pdf``, ``IMG_1_MR1.jpg``, ``IMG_1_PR.jpg`` with the default
    patterns. A photo whose own name fits a pattern (say ``PORTRAIT_MRS_JONES.jpg``) is taken
    for a release too: better held back than a signed release sent to an agency as a photo.
    """
    if _under_folder(path, watch_root, config.folder):
        return True
    return any(_sidecar_regex(pattern, None).fullmatch(path.name) for pattern in config.sidecars)


def find_releases(
    image: Path, watch_root: Path, metadata: ImageMetadata, config: ReleasesConfig
) -> dict[str, tuple[Path, ...]]:
    """The release files of ``image``: {"people": (...), "property": (...)}, each sorted.

    - Sidecars next to the image named by ``config.sidecars`` for its stem (patterns with
      ``_PR`` are property releases, the others model releases);
    - files directly in ``watch_root / config.folder`` whose stem is one of the image's
      ModelReleaseID / PropertyReleaseID values (any case).

    Only regular files inside the watch folder count: a symlink (or a releases folder) that
    leads out of it is not followed, and junk names (``._x``, ``*.tmp``) are skipped.
    """
    root = _resolved(watch_root)
    found: dict[str, set[Path]] = {kind: set() for kind in KINDS}
    stem = image.stem
    patterns = [
        (PROPERTY if _PROPERTY_MARK in pattern else PEOPLE, _sidecar_regex(pattern, stem))
        for pattern in config.sidecars
    ]
    for candidate in _files_in(image.parent, root, watch_root):
        if candidate.name == image.name:
            continue
        for kind, regex in patterns:
            if regex.fullmatch(candidate.name):
                found[kind].add(candidate)
                break
    folder = _folder_path(watch_root, config.folder)
    if folder is not None:
        ids = {
            PEOPLE: {value.strip().casefold() for value in metadata.model_release_ids if value.strip()},
            PROPERTY: {value.strip().casefold() for value in metadata.property_release_ids if value.strip()},
        }
        if ids[PEOPLE] or ids[PROPERTY]:
            for candidate in _files_in(folder, root, watch_root):
                for kind in KINDS:
                    if candidate.stem.casefold() in ids[kind]:
                        found[kind].add(candidate)
    return {kind: tuple(sorted(paths, key=str)) for kind, paths in found.items()}


def release_hint(kind: str, image: Path, metadata: ImageMetadata, config: ReleasesConfig) -> str:
    """Where a release of ``kind`` would be found, e.g. ``expected IMG_1.release.*, IMG_1_MR*.*
    next to it or a release with ID MR-77 in releases/``."""
    stem = image.stem
    sidecars = [
        pattern.replace("{stem}", stem)
        for pattern in config.sidecars
        if (PROPERTY if _PROPERTY_MARK in pattern else PEOPLE) == kind
    ]
    ids = metadata.model_release_ids if kind == PEOPLE else metadata.property_release_ids
    folder = "/".join(_folder_parts(config.folder))
    if ids:
        quoted = " or ".join(ids)
        in_folder = f"a release with ID {quoted} in {folder}/"
    else:
        in_folder = f"a file in {folder}/ named after the {_ID_TAGS[kind]} written in the image"
    if not folder:
        return f"expected {', '.join(sidecars)} next to it" if sidecars else ""
    if not sidecars:
        return f"expected {in_folder}"
    return f"expected {', '.join(sidecars)} next to it or {in_folder}"


def missing_release_reason(
    platform: str,
    needs: Collection[str],
    found: Mapping[str, Sequence[Path]],
    image: Path,
    metadata: ImageMetadata,
    config: ReleasesConfig,
) -> str | None:
    """Why ``image`` is held for ``platform``, or None when every needed release was found.

    ``needs`` are the kinds both the image needs and the platform requires. For example:
    ``people in frame (keyword 'model'), no model release found for dreamstime (expected
    IMG_1.release.*, IMG_1_MR*.* next to it or a release with ID MR-77 in releases/)``.
    """
    signals = _need_signals(metadata, config)
    reasons = []
    for kind in KINDS:
        if kind not in needs or found.get(kind):
            continue
        signal = signals.get(kind)
        what = f"{kind} in frame" + (f" ({signal})" if signal else "")
        hint = release_hint(kind, image, metadata, config)
        reasons.append(
            f"{what}, no {_RELEASE_NAMES[kind]} found for {platform}" + (f" ({hint})" if hint else "")
        )
    return "; ".join(reasons) or None


def release_remote_names(
    image_remote_name: str, releases: Sequence[Path], rule: ReleaseRule, *, suffix: str | None = None
) -> list[tuple[Path, str]]:
    """Each release with the name it gets on the platform's server, in the order given.

    - ``suffix``: named after the image, ``IMG_1_MR.jpg``, then ``IMG_1_MR_2.pdf``, ... (numbered
      whatever their extensions, so each release has its own base name for the agency to match);
      ``suffix`` overrides ``rule.suffix`` (e.g. "_PR" for property releases);
    - ``folder``: the release's own name made safe (``MR 77.pdf`` → ``MR_77.pdf``), numbered
      if two would clash;
    - ``manual``: none (the batch report lists them for attaching on the website).
    """
    if rule.delivery == "manual":
        return []
    # The image's remote name is already what the platform accepts; only its extension goes.
    image_stem = image_remote_name.rsplit(".", 1)[0] if "." in image_remote_name else image_remote_name
    # The suffix comes from the config: nothing in it may reach the server as a path.
    release_suffix = _UNSAFE_SUFFIX.sub("", suffix if suffix is not None else rule.suffix)
    named: list[tuple[Path, str]] = []
    taken: set[str] = set()
    for release in releases:
        extension = _extension(release.name)
        if rule.delivery == "suffix":
            base = f"{image_stem}{release_suffix}"
        else:
            base = safe_stem(release.name) or f"{image_stem}_release"
        candidate = base
        number = 2
        while _clash_key(candidate, extension, rule.delivery) in taken:
            candidate = f"{base}_{number}"
            number += 1
        taken.add(_clash_key(candidate, extension, rule.delivery))
        named.append((release, f"{candidate}{extension}"))
    return named


def _clash_key(base: str, extension: str, delivery: str) -> str:
    # Suffix names clash on their base: to the agency, IMG_1_MR.jpg and IMG_1_MR.pdf would be one
    # release. Folder names clash only when equal (servers may be case-insensitive).
    return (base if delivery == "suffix" else base + extension).casefold()


def _extension(name: str) -> str:
    suffix = Path(name).suffix
    return suffix.lower() if _EXTENSION.fullmatch(suffix) else ""


@functools.lru_cache(maxsize=256)  # asked for every file of every scan: 10,000 files, 30,000 calls
def _sidecar_regex(pattern: str, stem: str | None) -> re.Pattern[str]:
    """``pattern`` with ``{stem}`` as ``stem`` (any name when None); ``*`` and ``?`` as in globs."""
    stem_regex = ".+" if stem is None else re.escape(stem)
    parts = [_glob_regex(part) for part in pattern.split("{stem}")]
    return re.compile(stem_regex.join(parts), re.DOTALL)


def _glob_regex(glob: str) -> str:
    return "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in glob)


def _files_in(directory: Path, resolved_root: Path | None, watch_root: Path) -> list[Path]:
    """Regular files directly in ``directory`` that resolve to a place inside the watch folder."""
    if resolved_root is None:
        return []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    files = []
    for entry in entries:
        path = Path(entry.path)
        if is_ignored(path, watch_root):
            continue
        try:
            if not entry.is_file(follow_symlinks=True):
                continue
            target = path.resolve(strict=True)
        except OSError:
            continue
        if target.is_relative_to(resolved_root):
            files.append(path)
    return files


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve(strict=True)
    except OSError:
        return None


# ---------------------------------------------------------------------- editorial and routes


def is_editorial(image: Path, watch_root: Path, metadata: ImageMetadata, config: EditorialConfig) -> bool:
    """True if ``image`` is editorial: in the editorial folder (any depth), carrying one of the
    editorial keywords, or with ``config.field`` containing ``config.contains`` (any case)."""
    if _under_folder(image, watch_root, config.folder):
        return True
    if _first_shared(metadata.keywords, config.keywords) is not None:
        return True
    if config.field and config.contains.strip():
        wanted = config.contains.strip().casefold()
        return any(wanted in value.casefold() for value in _extra(metadata, config.field))
    return False


def _extra(metadata: ImageMetadata, tag: str) -> tuple[str, ...]:
    if tag in metadata.extra:
        return metadata.extra[tag]
    lower = tag.lower()
    return next((values for key, values in metadata.extra.items() if key.lower() == lower), ())


def route_platforms(
    image: Path,
    watch_root: Path,
    metadata: ImageMetadata,
    routes: Sequence[RouteConfig],
    enabled: Collection[str],
) -> frozenset[str]:
    """The platforms ``image`` goes to: those of the first route it matches, else all ``enabled``.

    A route matches a file in its folder (any depth below ``watch_root / folder``) or carrying
    its keyword (any case). Only enabled platforms are returned, so a route naming only disabled
    platforms sends the file nowhere (it does not fall through to the next route).
    """
    for route in routes:
        in_folder = route.folder is not None and _under_folder(image, watch_root, route.folder)
        has_keyword = (
            route.keyword is not None and _first_shared(metadata.keywords, [route.keyword]) is not None
        )
        if in_folder or has_keyword:
            return frozenset(name for name in route.platforms if name in enabled)
    return frozenset(enabled)


# ---------------------------------------------------------------------- folders


def _folder_parts(folder: str) -> tuple[str, ...]:
    """A config folder ("releases", "clients/acme/") as path parts; "." and ".." are dropped."""
    return tuple(part for part in folder.replace("\\", "/").split("/") if part not in ("", ".", ".."))


def _under_folder(path: Path, watch_root: Path, folder: str) -> bool:
    """True if ``path`` lies somewhere below ``watch_root / folder`` (names compared in any case)."""
    parts = _folder_parts(folder)
    if not parts:
        return False
    try:
        relative = Path(path).relative_to(watch_root).parts
    except ValueError:
        return False
    # The last part is the file itself, so the folder must be a proper prefix.
    return len(relative) > len(parts) and all(
        have.casefold() == want.casefold() for have, want in zip(relative, parts, strict=False)
    )


def _folder_path(watch_root: Path, folder: str) -> Path | None:
    """The releases folder as it exists on disk (its spelling may differ in case), or None."""
    current = watch_root
    for part in _folder_parts(folder):
        exact = current / part
        if exact.is_dir():
            current = exact
            continue
        try:
            match = next(
                (
                    Path(entry.path)
                    for entry in sorted(os.scandir(current), key=lambda item: item.name)
                    if entry.name.casefold() == part.casefold() and entry.is_dir()
                ),
                None,
            )
        except OSError:
            return None
        if match is None:
            return None
        current = match
    return current if current != watch_root else None
