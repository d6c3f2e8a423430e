"""The link emulator's arithmetic (bench/link.py, bench/link_rows.py): the bound every link row is
judged against, the profiles a user types, and the seeded workload. No network, no timing."""

from __future__ import annotations

import math

import pytest

from bench.link import PROFILES, link_bound, parse_profile
from bench.link_rows import LARGEST, SMALLEST, workload_sizes


def test_the_link_bound_is_payload_bytes_over_the_uplink_rate() -> None:
    # 50 MB at 20 Mbit/s is 20 s; the round trip does not enter the bound.
    assert link_bound(50_000_000, PROFILES["20up-200ms"]) == pytest.approx(20.0)
    assert link_bound(50_000_000, PROFILES["100-30ms"]) == pytest.approx(4.0)
    assert PROFILES["20up-200ms"].bdp_bytes == 500_000  # the window a sender needs on that line


def test_profiles_parse_by_name_or_rate_and_rtt_and_bad_ones_say_how() -> None:
    assert parse_profile("20up-200ms") is PROFILES["20up-200ms"]
    profile = parse_profile("50/10@150")
    assert (profile.up_mbit, profile.down_mbit, profile.rtt_ms) == (50, 10, 150)
    assert parse_profile("20@200").down_mbit is None
    for bad in ("fast", "20", "20@"):
        with pytest.raises(ValueError, match=r"UP\[/DOWN\]@RTT_MS"):
            parse_profile(bad)
    with pytest.raises(ValueError, match="rates must be > 0"):
        parse_profile("0@100")


def test_the_workload_is_seeded_log_uniform_and_nested() -> None:
    sizes = workload_sizes(300)
    assert sizes == workload_sizes(300)  # the same files every run
    assert workload_sizes(20) == sizes[:20]  # --link-files 20 is the first 20 of the 300
    assert all(SMALLEST <= size <= LARGEST for size in sizes)
    logs = [math.log(size) for size in sizes]
    middle = (math.log(SMALLEST) + math.log(LARGEST)) / 2
    below = sum(value < middle for value in logs)
    assert 110 < below < 190  # about half below the geometric middle (≈ 2.2 MB), not the arithmetic one
