"""Workers on duty: the duty switch and batched location pings (last position + a track kept
``settings.WORKER_TRACK_RETENTION_DAYS`` days)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.features import worker_feature
from command.geometry import check_geometry
from command.models import LocationPing, Worker

PINGS_PER_BATCH = 100
# A phone's clock may run a little ahead of the server's.
CLOCK_SKEW = timedelta(minutes=5)


class NotOnDuty(Exception):
    """Pings are taken only from workers on duty (HTTP 409)."""


@dataclass(frozen=True)
class Ping:
    location: Point
    recorded_at: datetime
    accuracy_m: float | None = None


@dataclass(frozen=True)
class PingResult:
    accepted: int  # points of the track now held for this batch (a re-sent ping is stored once)
    worker: Worker


def track_retention() -> timedelta:
    return timedelta(days=int(getattr(settings, "WORKER_TRACK_RETENTION_DAYS", 30)))


@transaction.atomic
def worker_duty_set(*, worker: Worker, on_duty: bool) -> Worker:
    worker = Worker.objects.select_for_update().get(pk=worker.pk)
    if worker.on_duty != on_duty:
        worker.on_duty = on_duty
        worker.save(update_fields=["on_duty"])
        event_append(
            kind="worker.updated",
            layer="workers",
            object_id=worker.pk,
            actor_id=worker.user_id,
            payload=worker_feature(worker),
        )
    return worker


def worker_pings_record(*, worker: Worker, pings: Sequence[Ping], now: datetime | None = None) -> PingResult:
    """Store a batch of pings; the newest becomes the last position (one ``worker.moved``
    event per batch that moved it). Pings older than the retention are refused, as are those
    from the future; the track of this worker past the retention is pruned."""
    now = now or timezone.now()
    if not pings:
        raise ValidationError({"pings": _("Send at least one ping.")})
    if len(pings) > PINGS_PER_BATCH:
        raise ValidationError({"pings": _("At most %(n)s pings per batch.") % {"n": PINGS_PER_BATCH}})
    oldest = now - track_retention()
    for index, ping in enumerate(pings):
        check_geometry(ping.location, expected="Point")
        if ping.accuracy_m is not None and not (0 <= ping.accuracy_m <= 100_000):
            raise ValidationError({"pings": _("Ping %(n)s: accuracy out of range.") % {"n": index + 1}})
        if ping.recorded_at > now + CLOCK_SKEW:
            raise ValidationError({"pings": _("Ping %(n)s is from the future.") % {"n": index + 1}})
        if ping.recorded_at < oldest:
            raise ValidationError({"pings": _("Ping %(n)s is older than the track is kept.") % {"n": index + 1}})
    with transaction.atomic():
        worker = Worker.objects.select_for_update().get(pk=worker.pk)
        if not worker.on_duty:
            raise NotOnDuty(_("You are not on duty: switch duty on to share your position."))
        LocationPing.objects.bulk_create(
            [
                LocationPing(worker=worker, location=p.location, accuracy_m=p.accuracy_m, recorded_at=p.recorded_at)
                for p in pings
            ],
            ignore_conflicts=True,
        )
        LocationPing.objects.filter(worker=worker, recorded_at__lt=oldest).delete()
        newest = max(pings, key=lambda p: p.recorded_at)
        if worker.last_position_at is None or newest.recorded_at > worker.last_position_at:
            worker.last_position = newest.location
            worker.last_position_at = newest.recorded_at
            worker.save(update_fields=["last_position", "last_position_at"])
            event_append(
                kind="worker.moved",
                layer="workers",
                object_id=worker.pk,
                actor_id=worker.user_id,
                payload=worker_feature(worker),
            )
    return PingResult(accepted=len({p.recorded_at for p in pings}), worker=worker)
