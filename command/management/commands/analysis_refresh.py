"""``manage.py analysis_refresh``: announce new and growing hotspots (run by cron; see README)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from command.services.hotspots import hotspots_refresh


class Command(BaseCommand):
    help = "Compute the current hotspots and append a hotspot.raised event for each new or growing one."

    def handle(self, *args: Any, **options: Any) -> None:
        events = hotspots_refresh()
        self.stdout.write(f"analysis_refresh: {len(events)} hotspot(s) raised")
