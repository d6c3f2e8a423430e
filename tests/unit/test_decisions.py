"""Comments that give a reason by name (``decisions.md W-3``) point to an entry of docs/decisions.md.

A name like W-3 or X-10 outside such a reference is an error too: it would point to nothing a reader
can open (the research these names come from is not part of the repository).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DECISIONS = ROOT / "docs" / "decisions.md"
THIS = Path(__file__).resolve()
SCANNED = ("stockbridge", "tests", "bench")
#: W-3, X-10 ...: the families of docs/decisions.md. (MR-77, PR-5 in the tests are release IDs.)
NAME = r"\b[WFSEPRXCVD]-\d+\b"
#: ``decisions.md W-1, W-2 and W-16`` (a line break may fall anywhere in it).
REFERENCE = re.compile(rf"decisions\.md\s+{NAME}(?:(?:,\s*|\s+and\s+|/){NAME})*")


def defined() -> set[str]:
    return set(re.findall(rf"^\*\*({NAME})\.", DECISIONS.read_text(encoding="utf-8"), re.MULTILINE))


def references() -> list[tuple[str, int, str, bool]]:
    """(file, line, name, whether it stands in a decisions.md reference) for every name found."""
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", ".md") or not path.is_file() or path == THIS:
                continue
            text = path.read_text(encoding="utf-8")
            covered = [match.span() for match in REFERENCE.finditer(text)]
            for match in re.finditer(NAME, text):
                inside = any(start <= match.start() < end for start, end in covered)
                line = text.count("\n", 0, match.start()) + 1
                found.append((str(path.relative_to(ROOT)), line, match.group(), inside))
    return found


def test_every_decision_a_comment_names_is_defined_in_docs_decisions_md():
    names = defined()
    assert {"W-1", "X-10"} <= names, "the parser of docs/decisions.md found no entries"
    unknown = [
        f"{file}:{line}: {name}" for file, line, name, inside in references() if inside and name not in names
    ]
    assert unknown == [], "named in a comment but not defined in docs/decisions.md:\n" + "\n".join(unknown)


def test_a_decision_is_named_only_as_a_decisions_md_reference():
    bare = [f"{file}:{line}: {name}" for file, line, name, inside in references() if not inside]
    assert bare == [], (
        "write `(decisions.md W-3)` so a reader knows where to look, or drop the name:\n" + "\n".join(bare)
    )


def test_every_entry_in_docs_decisions_md_is_used_somewhere():
    used = {name for _, _, name, inside in references() if inside}
    assert sorted(defined() - used) == [], "entries no comment refers to: drop them or refer to them"
