"""One unit of work that must never take the service down."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from loguru import logger

T = TypeVar("T")


def safely(function: Callable[..., T], *args: Any) -> T | None:
    """Run one unit of work; an unexpected error is logged with its traceback, never fatal."""
    try:
        return function(*args)
    except Exception as exc:
        logger.opt(exception=exc).error(
            "unexpected error in {}: {}", getattr(function, "__name__", function), exc
        )
        return None
