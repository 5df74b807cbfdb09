"""One object per running event loop (Daphne runs one loop per process; tests run several)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def loop_local(
    registry: dict[asyncio.AbstractEventLoop, T],
    make: Callable[[asyncio.AbstractEventLoop], T],
    *,
    usable: Callable[[T], bool] = lambda _found: True,
) -> T:
    """The running loop's own object in ``registry``, made by ``make`` on first use (and again
    when ``usable`` says the old one is spent); entries of closed loops are dropped then."""
    loop = asyncio.get_running_loop()
    found = registry.get(loop)
    if found is None or not usable(found):
        for old in [key for key in registry if key.is_closed()]:
            del registry[old]
        found = registry[loop] = make(loop)
    return found
