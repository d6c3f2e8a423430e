"""Numbers in reasons: a measured value and the limit it broke, printed so that they never agree.

"1.9 MP, needs at least 1.9 MP" (1.912 against 1.92) or "0.0 MP (100×100)" contradict the verdict
they explain (issue 13, item 6). The limit is printed as configured (1.92, 45, 5.95); the value with
as many decimals as the limit has (at least ``decimals``), then more until the printed value is on
the same side of the printed limit as the real one and not a misleading zero: 1.91 MP against
1.92 MP, 3.996 MP against 4.0 MP, 0.01 MP for 100×100, 45.04 MB against 45 MB.
"""

from __future__ import annotations

from decimal import Decimal

#: One pixel in megapixels, one byte in MB: more decimals than this never tell two sizes apart.
MAX_DECIMALS = 6


def limit_text(limit: float, decimals: int = 0) -> str:
    """``limit`` as written in the config (shortest form), with at least ``decimals`` decimals."""
    written = format(Decimal(repr(float(limit))).normalize(), "f")  # 1e-05 → "0.00001", 100 → "100"
    places = max(decimals, len(written.partition(".")[2]))
    return f"{float(limit):.{places}f}"


def against(value: float, limit: float, *, decimals: int = 1, limit_decimals: int = 0) -> tuple[str, str]:
    """``(value, limit)`` as text that shows which is larger, ``value`` never printed as ``limit``.

    >>> against(1.912, 1.92)
    ('1.91', '1.92')
    >>> against(3.996001, 4.0, limit_decimals=1)
    ('3.996', '4.0')
    >>> against(0.01, 4.0, limit_decimals=1)
    ('0.01', '4.0')
    >>> against(45.04, 45)
    ('45.04', '45')
    """
    shown_limit = limit_text(limit, limit_decimals)
    places = max(decimals, len(shown_limit.partition(".")[2]))
    while True:
        shown = f"{value:.{places}f}"
        printed = float(shown)
        same_side = (printed < float(shown_limit)) if value < limit else (printed > float(shown_limit))
        if value == limit or places >= MAX_DECIMALS or (same_side and (printed != 0 or value == 0)):
            return shown, shown_limit
        places += 1


def megapixels(width: int, height: int) -> float:
    return width * height / 1_000_000
