"""What a photographer can do about a file that is not uploaded, in a sentence (the page shows it
under the reason). Worded from the reason stockbridge recorded; None when there is nothing to do."""

from __future__ import annotations


def advice_for(state: str, reason: str | None, kind: str | None = None) -> str | None:
    text = (reason or "").lower()
    if state == "failed":
        if "refused this file" in text:
            return "Check the file against the agency's rules (size, name), export it again, or retry."
        return "Retry sends it again; the page and `stockbridge retry` do the same."
    if state == "held":
        if "re-export" in text:
            return "Already sent once. Resend only if the agency should get this version too."
        if "release" in text:
            return "Put the release next to the photo in the watch folder: it goes by itself."
        if any(word in text for word in ("title", "keyword", "description")):
            return "Fix the metadata in your editor and export the photo again."
        return "Fix what the reason says and export it again, or look at held files again."
    if state == "rejected":
        if "superseded" in text:
            return "A newer export of the photo replaced this one: nothing to do."
        return "This agency does not take it as it is; the reason says why."
    if state == "pending" and "paused" in text:
        return "The platform is paused: resume it when the cause is fixed."
    if state == "not_taken":
        if kind == "link":
            return "Copy the photo itself into the watch folder; links are never followed."
        if kind == "unstable":
            return "Something keeps writing it; it is taken once it stays the same."
        return "Export it again as a plain file into the watch folder."
    return None


#: What to do about a paused platform, by the kind of pause (delivery/policy.py PauseKind).
PAUSE_ADVICE = {
    "manual": "You paused it: resume it when it should go on.",
    "auth": "The login was refused: check the user name and password (`stockbridge check --connect`), then resume.",
    "trust": "The server's identity changed or cannot be verified: check its certificate or host key, then resume.",
    "config": "A configuration problem (`stockbridge check` names it): fix it, then resume.",
    "setup": "The server refused the upload folder or a setting: `stockbridge status --detail` has its words; fix it, then resume.",
    "quota": "The server is full or the quota is used up: it tries again by itself.",
    "unreachable": "The server cannot be reached now: it tries again by itself, with growing waits.",
}


def pause_advice(kind: str) -> str | None:
    return PAUSE_ADVICE.get(kind)
