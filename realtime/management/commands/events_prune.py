"""``manage.py events_prune``: drop events older than EVENT_RETENTION_HOURS (run it daily)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from command.eventlog import events_prune


class Command(BaseCommand):
    help = "Delete events older than EVENT_RETENTION_HOURS; clients resuming from before then get resync."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = events_prune()
        self.stdout.write(f"events_prune: {deleted} events deleted")
