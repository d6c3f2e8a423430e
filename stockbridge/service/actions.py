"""What a user can ask of stockbridge, in one place for the command line and the web page.

Each action works on the ledger, under the same rules as everything else: a job uploaded is never
sent again (only ``failed`` jobs are queued again, by :meth:`Ledger.requeue_failed`), a held file
goes only through :func:`~stockbridge.delivery.held.activate_held` (the rules, its releases, a
verified upload), a re-export only through :func:`~stockbridge.delivery.reexport.resend`.

``wake(platform)``: the running service's hook that wakes that platform's upload threads at once
(None: all of them). The command line has none: a running service sees the ledger at its next look,
within a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stockbridge.config.models import Config
from stockbridge.delivery.policy import PauseKind
from stockbridge.errors import StockbridgeError
from stockbridge.ledger import states
from stockbridge.ledger.store import Ledger

if TYPE_CHECKING:
    from stockbridge.delivery.prepare import Pipeline

Wake = Callable[[str | None], None]

MANUAL_REASON = "paused by you"


class ActionError(StockbridgeError):
    """An action that cannot be done: ``status`` is the HTTP answer the page gets (400, 404, 409)."""

    def __init__(self, message: str, status: int = 409, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


@dataclass(frozen=True, slots=True)
class Done:
    message: str
    platforms: tuple[str, ...] = ()


def _nowake(_platform: str | None) -> None:
    return None


def check_platform(config: Config, name: str) -> None:
    if name not in config.platforms:
        configured = ", ".join(config.platforms) or "none"
        raise ActionError(f"no platform named {name!r} (configured: {configured})", status=404)


def retry(
    config: Config,
    ledger: Ledger,
    *,
    platform: str | None = None,
    sha256s: Sequence[str] | None = None,
    job_id: int | None = None,
    resume: bool = True,
    wake: Wake = _nowake,
) -> Done:
    """``stockbridge retry``: lift the platform's pause (all pauses without ``platform``; not with
    ``resume=False``) and queue its failed jobs (of ``sha256s``) again. With ``job_id``: that one
    job, which must be failed."""
    if platform is not None:
        check_platform(config, platform)
    if job_id is not None:
        try:
            job = ledger.job(job_id)
        except StockbridgeError:
            raise ActionError(f"no job {job_id}", status=404) from None
        if job.state != states.FAILED:
            raise ActionError(
                f"{Path(job.path).name} is {job.state} for {job.platform}, not failed: nothing to retry"
            )
        ledger.requeue_failed(job.platform, [job.sha256])
        wake(job.platform)
        return Done(f"{Path(job.path).name} goes to {job.platform} again", (job.platform,))
    resumed = ledger.resume(platform) if resume else []
    requeued = ledger.requeue_failed(platform, sha256s)
    wake(platform)
    what = f"resumed {', '.join(resumed)}" if resumed else "no paused platform"
    return Done(f"{what}; {requeued} failed job(s) queued again", tuple(resumed))


def resume(config: Config, ledger: Ledger, platform: str, *, wake: Wake = _nowake) -> Done:
    """Lift ``platform``'s pause, whatever its kind; its files go at its next look."""
    check_platform(config, platform)
    resumed = ledger.resume(platform)
    wake(platform)
    if not resumed:
        return Done(f"{platform} was not paused")
    return Done(f"{platform} resumed", (platform,))


def pause(config: Config, ledger: Ledger, platform: str, *, wake: Wake = _nowake) -> Done:
    """Pause ``platform`` until resumed: nothing more is sent to it after the file going now (an
    upload under way is finished and verified, never cut)."""
    check_platform(config, platform)
    ledger.pause(platform, MANUAL_REASON, None, str(PauseKind.MANUAL))
    wake(platform)
    return Done(f"{platform} paused: nothing more goes there until you resume it", (platform,))


def recheck(pipeline: Pipeline, *, wake: Wake = _nowake) -> Done:
    """Look at every held file again (its release arrived, the rules changed): those free now go."""
    ledger = pipeline.ledger
    before = {job.id for job in ledger.jobs(states=[states.HELD])}
    pipeline.reconsider_held()
    still = {job.id for job in ledger.jobs(states=[states.HELD])}
    freed = len(before - still)
    wake(None)
    return Done(f"looked at {len(before)} held file(s) again: {freed} go now, {len(still)} still held")


def resend(
    pipeline: Pipeline, sha256: str, platforms: Sequence[str] | None = None, *, wake: Wake = _nowake
) -> Done:
    """Send a held re-export on purpose (``stockbridge resend``), to ``platforms`` or to every one
    where it is held."""
    from stockbridge.delivery.reexport import resend as resend_file

    ledger = pipeline.ledger
    asset = ledger.asset(sha256)
    if asset is None:
        raise ActionError("no such file", status=404)
    if platforms is None:
        platforms = [job.platform for job in ledger.jobs(sha256=sha256, states=[states.HELD])]
        if not platforms:
            raise ActionError(f"{Path(asset.path).name} is held nowhere: nothing to resend")
    sent = []
    for name in platforms:
        if name not in pipeline.platforms:
            raise ActionError(f"no enabled platform named {name!r}", status=404)
        job = resend_file(pipeline, Path(asset.path), name, sha256=sha256)
        sent.append(f"{name} as {job.remote_name}")
        wake(name)
    return Done(f"{Path(asset.path).name} queued for {', '.join(sent)}", tuple(platforms))
