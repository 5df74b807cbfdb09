"""Headless Debian Chromium for printing (the period report's PDF): never a downloaded browser."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

# No background traffic: Chromium otherwise keeps trying to reach Google's services.
ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_launch_options() -> dict[str, Any]:
    args = list(ARGS)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    return {"executable_path": settings.CHROMIUM_PATH, "headless": True, "args": args}
