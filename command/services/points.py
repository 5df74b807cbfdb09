"""Volunteer points and yearly stars.

Completed orders (a request resolved by its taker), campaign visits (a campaign mark "visited")
and activity check-ins earn points by the rules of ``VOLUNTEER_POINTS`` (kind=points), each
once (``PointEntry`` is unique per worker and source), written with a ``points.awarded`` event
on the ``points`` event layer. A volunteer's stars for a year: 1, plus one per threshold of
``VOLUNTEER_STAR_THRESHOLDS`` their points of that year reach (at most 5).

Orders earn on resolve (``request_resolve`` calls ``points_award`` in its transaction), check-ins
on check-in; campaign visits are written by the registry's services, so the periodic job
``points_sync_visits`` awards them (idempotent)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.models import Activity, ActivityCheckIn, PointEntry, Worker

MANAGE_PERMISSION = "command.dispatch_incident"  # the operators run activities


def points_award(*, worker: Worker, kind: str, source: str, at: datetime) -> PointEntry | None:
    """Inside the caller's transaction: the points of ``kind`` for ``source``, once (None when
    ``source`` earned them before)."""
    points = settings.VOLUNTEER_POINTS[kind]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO command_pointentry (worker_id, kind, source, points, earned_at) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (worker_id, source) DO NOTHING RETURNING id",
            [worker.pk, kind, source, points, at],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    entry = PointEntry(id=row[0], worker=worker, kind=kind, source=source, points=points, earned_at=at)
    event_append(
        kind="points.awarded",
        layer="points",
        object_id=entry.pk,
        actor_id=None,
        payload={"id": str(entry.pk), "properties": {"worker_id": worker.pk, "kind": kind, "points": points}},
    )
    return entry


def activity_create(*, actor: Any, title: str, starts_at: datetime, ends_at: datetime) -> Activity:
    if actor is None or not actor.is_active or not actor.has_perm(MANAGE_PERMISSION):
        raise PermissionDenied(_("Only operators create activities."))
    title = (title or "").strip()
    if not title or len(title) > 100:
        raise ValidationError({"title": _("Give a title of at most 100 characters.")})
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": _("The activity must end after it starts.")})
    return Activity.objects.create(
        title=title, token=secrets.token_urlsafe(18), starts_at=starts_at, ends_at=ends_at, created_by=actor
    )


class CheckInRefused(Exception):
    """Not a live activity's code, or outside its hours (HTTP 400/404); ``str()`` says why."""


def activity_check_in(*, worker: Worker, token: str, at: datetime | None = None) -> ActivityCheckIn:
    """The worker scanned the activity's QR code: checked in once, with the activity's points."""
    now = at or timezone.now()
    activity = Activity.objects.filter(token=(token or "")[:32]).first()
    if activity is None:
        raise Activity.DoesNotExist(token)
    if not activity.starts_at <= now <= activity.ends_at:
        raise CheckInRefused(_("Check-in is open only while the activity runs."))
    with transaction.atomic():
        check_in, created = ActivityCheckIn.objects.get_or_create(
            activity=activity, worker=worker, defaults={"at": now}
        )
        if created:
            points_award(worker=worker, kind="activity", source=f"activity:{activity.pk}", at=now)
    return check_in


def points_sync_visits() -> int:
    """Award the campaign visits not awarded yet (the periodic job); returns how many."""
    from command.models import CampaignMark  # the registry's model

    awarded = 0
    workers = {w.user_id: w for w in Worker.objects.all()}
    done = set(PointEntry.objects.filter(kind="visit").values_list("source", flat=True))
    for mark in CampaignMark.objects.filter(outcome="visited", user__isnull=False).order_by("pk").iterator():
        worker = workers.get(mark.user_id or 0)
        if worker is None or f"mark:{mark.pk}" in done:
            continue
        with transaction.atomic():
            if points_award(worker=worker, kind="visit", source=f"mark:{mark.pk}", at=mark.marked_at):
                awarded += 1
    return awarded


def volunteer_stars(points: int) -> int:
    return 1 + sum(1 for threshold in settings.VOLUNTEER_STAR_THRESHOLDS if points >= threshold)


@dataclass(frozen=True)
class YearRecord:
    worker: Worker
    points: int
    stars: int
    orders: int
    visits: int
    activities: int


def points_for_year(year: int, *, worker_ids: list[int] | None = None) -> list[YearRecord]:
    """Each volunteer's points, stars and counts for ``year`` (UTC), most points first."""
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    entries = PointEntry.objects.filter(earned_at__gte=start, earned_at__lt=end)
    if worker_ids is not None:
        entries = entries.filter(worker_id__in=worker_ids)
    totals: dict[int, dict[str, int]] = {}
    for row in entries.values("worker_id", "kind").annotate(points=Sum("points"), n=Sum(1)):
        t = totals.setdefault(row["worker_id"], {"points": 0, "order": 0, "visit": 0, "activity": 0})
        t["points"] += row["points"]
        t[row["kind"]] += row["n"]
    workers = Worker.objects.in_bulk(list(totals))
    records = [
        YearRecord(workers[wid], t["points"], volunteer_stars(t["points"]), t["order"], t["visit"], t["activity"])
        for wid, t in totals.items()
    ]
    return sorted(records, key=lambda r: (-r.points, r.worker.display_name))
