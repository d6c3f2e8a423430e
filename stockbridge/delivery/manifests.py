"""CSV manifests: one row per uploaded file, with the header row an agency asks for.

The header comes from the platform's ``[csv]`` table. Known headers (any case) are filled from
each file; any other header takes its text from ``csv.values`` (empty if none):

    Filename, File name            the remote file name
    Title                          the title
    Description, Caption           the description, else the title (agencies with one caption
                                   field call it either)
    Keywords, Tags                 keywords joined with ", ", in order
    Editorial                      "Yes" or "No"
    Releases, Model release        release names joined with ", "
    Categories, Category           this platform's categories for the file, joined with ","
    Illustration, Mature Content   "Yes" when the file carries the flag; else csv.values, else "No"
    (also Mature content, Mature)

A known header whose value is empty also falls back to ``csv.values``, so a fixed
``csv.values.Categories`` is the default for files without a category of their own. An AI file's
cells from ``rules.ai.csv`` come before everything else. Every cell that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, TAB, CR or NUL) gets
a leading ``'`` (OWASP, CSV injection; ASVS 1.2.10). The file is UTF-8 without a BOM, written
to a temporary name and renamed, so a reader never sees half a manifest.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from stockbridge.config.models import CsvConfig

if TYPE_CHECKING:
    from stockbridge.delivery.batch import Batch
    from stockbridge.ledger.store import Ledger

#: Cells starting with one of these are read as formulas by spreadsheets (OWASP "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
#: Keywords in one cell, as the agencies that document it write them: comma-separated.
KEYWORD_SEPARATOR = ", "
#: Categories in one cell: Shutterstock's help shows them comma-separated (the cell is quoted).
CATEGORY_SEPARATOR = ","


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One file of a batch, as the manifest describes it."""

    filename: str  # the remote name
    title: str | None
    description: str | None
    keywords: tuple[str, ...]
    editorial: bool
    releases: tuple[str, ...]
    categories: tuple[str, ...] = ()
    illustration: bool = False
    mature: bool = False
    #: Cells for this file only, header → value (an AI file's ``rules.ai.csv``).
    cells: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_meta(cls, filename: str, meta: Mapping[str, object]) -> ManifestRow:
        """The row of a job sent as ``filename``, from the metadata its ledger entry recorded."""
        return cls(
            filename=filename,
            title=None if meta.get("title") is None else str(meta.get("title")),
            description=None if meta.get("description") is None else str(meta.get("description")),
            keywords=_texts(meta.get("keywords")),
            editorial=bool(meta.get("editorial")),
            releases=_texts(meta.get("releases")),
            categories=_texts(meta.get("categories")),
            illustration=bool(meta.get("illustration")),
            mature=bool(meta.get("mature")),
            cells=cells_from(meta.get("csv")),
        )


def _texts(value: object) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def cells_from(value: object) -> dict[str, str]:
    """A job's recorded ``csv`` cells (JSON from the ledger) as header → text; anything else: none."""
    if not isinstance(value, dict):
        return {}
    return {str(header): str(text) for header, text in value.items() if isinstance(text, str)}


def _description(row: ManifestRow) -> str:
    return row.description or row.title or ""


_KNOWN: dict[str, Callable[[ManifestRow], str]] = {
    "filename": lambda row: row.filename,
    "file name": lambda row: row.filename,
    "title": lambda row: row.title or "",
    "description": _description,
    "caption": _description,
    "keywords": lambda row: KEYWORD_SEPARATOR.join(row.keywords),
    "tags": lambda row: KEYWORD_SEPARATOR.join(row.keywords),
    "editorial": lambda row: "Yes" if row.editorial else "No",
    "releases": lambda row: KEYWORD_SEPARATOR.join(row.releases),
    "model release": lambda row: KEYWORD_SEPARATOR.join(row.releases),
    # Shutterstock: "one or two from the list, comma-separated" (submit.shutterstock.com/help/en/articles/10617486).
    "categories": lambda row: CATEGORY_SEPARATOR.join(row.categories),
    "category": lambda row: CATEGORY_SEPARATOR.join(row.categories),
}
#: Yes/No flags: "Yes" for a flagged file; otherwise csv.values (a fixed default), else "No".
_FLAGS: dict[str, Callable[[ManifestRow], bool]] = {
    "illustration": lambda row: row.illustration,
    "mature content": lambda row: row.mature,
    "mature": lambda row: row.mature,
}


def neutralise(cell: str) -> str:
    """``cell`` without the leading characters that make a spreadsheet run it as a formula.

    Stripped, not quoted with ``'``: agencies import the cell as the title or keywords, and a quote
    would end up in the published text (decisions.md X-7; ``'`` is for human reports).
    """
    while cell.startswith(FORMULA_STARTS):
        cell = cell.lstrip("".join(FORMULA_STARTS)).lstrip()
    return cell


def render_manifest(csv_config: CsvConfig, rows: Sequence[ManifestRow]) -> str:
    """The manifest's text: the header row, then one row per file."""
    values_by_header = {header.casefold(): value for header, value in csv_config.values.items()}
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=csv_config.delimiter, lineterminator="\r\n")
    writer.writerow(csv_config.columns)  # the user's own text, matched exactly by the agency
    for row in rows:
        writer.writerow(
            [neutralise(_cell(header, row, csv_config, values_by_header)) for header in csv_config.columns]
        )
    return buffer.getvalue()


def write_manifest(path: Path, csv_config: CsvConfig, rows: Sequence[ManifestRow]) -> Path:
    """Write the manifest to ``path`` (through a temporary file in the same folder) and return it."""
    text = render_manifest(csv_config, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _cell(header: str, row: ManifestRow, csv_config: CsvConfig, values_by_header: dict[str, str]) -> str:
    key = " ".join(header.split()).casefold()
    own = {name.casefold(): value for name, value in row.cells.items()}
    if header.casefold() in own:
        return own[header.casefold()]
    fill = _KNOWN.get(key)
    value = fill(row) if fill is not None else ""
    flag = _FLAGS.get(key)
    if flag is not None and flag(row):
        value = "Yes"
    if value:
        return value
    if header in csv_config.values:
        return csv_config.values[header]
    fixed = values_by_header.get(header.casefold(), "")
    return fixed or ("No" if flag is not None else "")


def write_release_report(
    ledger: Ledger, state_dir: Path, platform: str, batch: Batch
) -> tuple[Path | None, int]:
    """For web-form agencies: which release to attach to which uploaded file of ``batch``.
    Returns the report's path (None: no file needed one) and how many files it lists."""
    lines = []
    for job in batch.uploaded:
        fresh = ledger.job(job.id)
        listed = (fresh.meta or {}).get("releases")
        releases = [str(name) for name in listed] if isinstance(listed, list) else []
        if fresh.kind == "image" and releases:
            lines.append(f"{fresh.remote_name}: {', '.join(releases)}")
    if not lines:
        return None, 0
    path = state_dir / "reports" / f"{platform}-batch{batch.id}-releases.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"Releases to attach on {platform}'s website (batch {batch.id}), file: release(s)\n"
    path.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    return path, len(lines)
