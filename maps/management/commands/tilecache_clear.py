"""``manage.py tilecache_clear [--older-than-days N]``: drop cached vector tiles.

Stale tiles are never served (the event log decides freshness, maps/tiles.py); this only frees
space, e.g. from a nightly timer, or after changing the layer SQL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from maps.models import TileCache


class Command(BaseCommand):
    help = "Drop cached vector tiles (all, or those built more than N days ago)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["older_than_days"]
        tiles = TileCache.objects.all()
        if days is not None:
            if days < 0:
                raise CommandError("--older-than-days must not be negative")
            tiles = tiles.filter(built_at__lt=timezone.now() - timedelta(days=days))
        deleted, _by_model = tiles.delete()
        self.stdout.write(f"tilecache_clear: {deleted} tiles dropped")
