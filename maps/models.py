"""The vector-tile cache: one row per (layer, tile, field profile), shared by every Daphne
process and invalidated by the event log (maps/tiles.py)."""

from __future__ import annotations

from django.db import models


class TileCache(models.Model):
    key = models.CharField(max_length=200, unique=True)  # layer/z/x/y/profile
    layer = models.CharField(max_length=32)
    seq = models.BigIntegerField()  # the event-log seq the tile is known fresh at
    etag = models.CharField(max_length=64)
    data = models.BinaryField()
    built_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["layer"])]

    def __str__(self) -> str:
        return self.key
