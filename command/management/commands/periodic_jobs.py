"""``manage.py periodic_jobs``: run the periodic jobs once (command/periodic.py). Daphne runs them
itself every PERIODIC_JOBS_SECONDS; use this from cron where it does not (PERIODIC_JOBS_SECONDS=0)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from command.periodic import periodic_jobs_run


class Command(BaseCommand):
    help = "Run the periodic jobs once (offline home alarms ...)"

    def handle(self, *args: Any, **options: Any) -> None:
        periodic_jobs_run()
