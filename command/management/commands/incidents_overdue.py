"""``manage.py incidents_overdue``: run the SLA job once (the Daphne processes run it every
SLA_CHECK_SECONDS while a screen is open; this is for cron when none is)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from command.eventlog import wakes_flush
from command.services.incidents import OVERDUE_BATCH, incidents_overdue_mark


class Command(BaseCommand):
    help = "Announce open incidents past their due time (event incident.overdue), once each."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        while True:
            marked = incidents_overdue_mark()
            total += marked
            if marked < OVERDUE_BATCH:
                break
        wakes_flush()
        self.stdout.write(f"{total} incidents announced overdue")
