"""Reads of the field workflow: who may see an incident, what they may see of its reports'
contents (notes, photos), and a worker's assignments. One helper fetches and authorises
together and answers None alike for missing and forbidden objects, so an id reveals nothing.

Seeing an incident (its category, place, status) and seeing what residents wrote or
photographed in its reports are two grants. The second is the reports layer's personal-data
field ``note`` (command.layers: the reports layer plus ``command.view_personal_data``), for
every channel that shows report contents (REST incident detail and assignments, photos,
Open311, the admin). Without it a viewer sees only what they sent themselves: being a reporter
into an incident, or the worker dispatched to it, widens nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.gis.geos import Point
from django.db.models import Exists, OuterRef, Q, QuerySet

from command.layers import LayerGrant, layer_access_log, layers_for_user
from command.models import Incident, Report, ReportPhoto, Worker

DISPATCH_PERMISSION = "command.dispatch_incident"


def worker_for_user(user: Any) -> Worker | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        worker: Worker = user.worker
    except Worker.DoesNotExist:
        return None
    return worker


def incidents_visible_to(user: Any) -> QuerySet[Incident]:
    """Incidents ``user`` may see in full (with photos and notes):

    - the incidents layer is required (command.layers, the one policy);
    - dispatchers (operators, admins) see all;
    - a worker sees those of their team, of their cells, assigned to them, or that they reported;
    - anyone else only those they reported."""
    none = Incident.objects.none()
    if "incidents" not in layers_for_user(user):
        return none
    if user.is_superuser or user.has_perm(DISPATCH_PERMISSION):
        return Incident.objects.all()
    reported = Exists(Report.objects.filter(incident=OuterRef("pk"), reporter=user))
    worker = worker_for_user(user)
    if worker is None:
        return Incident.objects.filter(reported)
    cells = Worker.cells.through.objects.filter(worker_id=worker.pk).values("gridcell_id")
    return Incident.objects.filter(
        Q(team_id=worker.team_id) | Q(worker_id=worker.pk) | Q(grid_cell_id__in=cells) | reported
    )


def incident_get_for_user(*, user: Any, incident_id: int) -> Incident | None:
    return incidents_visible_to(user).filter(pk=incident_id).first()


def report_contents_grant(user: Any) -> LayerGrant | None:
    """The reports layer's grant when it includes the reports' contents (``note``, personal
    data: each view is logged), else None."""
    grant = layers_for_user(user).get("reports")
    return grant if grant is not None and "note" in grant.fields else None


def reports_with_contents_for(user: Any) -> QuerySet[Report]:
    """Reports whose contents (note, photos) ``user`` may see: with the grant, every report of
    an incident they may see; without it, their own reports only."""
    if report_contents_grant(user) is not None:
        return Report.objects.filter(incident__in=incidents_visible_to(user))
    if not getattr(user, "is_authenticated", False):
        return Report.objects.none()
    return Report.objects.filter(reporter_id=user.pk)


def photos_visible_to(user: Any) -> QuerySet[ReportPhoto]:
    """Photos ``user`` may see: those of ``reports_with_contents_for``, and resolution photos
    of visible incidents with the grant, or of incidents they resolved as the assigned worker."""
    reports = reports_with_contents_for(user).values("pk")
    resolution = Q(report__isnull=True)
    if report_contents_grant(user) is not None:
        resolution &= Q(incident__in=incidents_visible_to(user))
    else:
        worker = worker_for_user(user)
        if worker is None:
            return ReportPhoto.objects.filter(report__in=reports)
        resolution &= Q(incident__worker_id=worker.pk)
    return ReportPhoto.objects.filter(Q(report__in=reports) | resolution)


def photo_get_for_user(*, user: Any, photo_id: int) -> ReportPhoto | None:
    photo = photos_visible_to(user).select_related("report").filter(pk=photo_id).first()
    if photo is not None and (photo.report is None or photo.report.reporter_id != user.pk):
        grant = report_contents_grant(user)
        if grant is not None:
            ids = [photo.report_id or f"incident:{photo.incident_id}"]
            layer_access_log(user=user, channel="photo", grant=grant, object_ids=ids, detail=f"photo {photo.pk}")
    return photo


@dataclass(frozen=True)
class IncidentContents:
    """What ``user`` may see of an incident's contents; None stands for a masked field."""

    note: str | None
    resolution_note: str | None
    photos: list[ReportPhoto]


def incident_contents_for_user(
    *, user: Any, incidents: list[Incident], with_photos: bool, channel: str
) -> dict[int, IncidentContents]:
    """The contents of ``incidents`` (already authorised for ``user``) as ``user`` may see them,
    logging the view when it unmasks other people's reports."""
    grant = report_contents_grant(user)
    worker = worker_for_user(user)
    photos: dict[int, list[ReportPhoto]] = {i.pk: [] for i in incidents}
    if with_photos and incidents:
        ids = [i.pk for i in incidents]
        rows = photos_visible_to(user).filter(
            Q(report__incident_id__in=ids) | Q(incident_id__in=ids, report__isnull=True)
        )
        for photo in rows.select_related("report").order_by("pk"):
            owner = photo.report.incident_id if photo.report is not None else photo.incident_id
            photos[int(owner or 0)].append(photo)
    out: dict[int, IncidentContents] = {}
    for incident in incidents:
        resolver = worker is not None and incident.worker_id == worker.pk
        out[incident.pk] = IncidentContents(
            note=incident.note if grant is not None else None,
            resolution_note=incident.resolution_note if grant is not None or resolver else None,
            photos=photos[incident.pk],
        )
    if grant is not None and incidents:
        layer_access_log(
            user=user, channel=channel, grant=grant, object_ids=[f"incident:{i.pk}" for i in incidents][:10000]
        )
    return out


def assignments_for_worker(*, worker: Worker, position: Point | None) -> QuerySet[Incident]:
    """Open incidents of the worker's team, of the worker's cells, or assigned to the worker;
    nearest first from ``position`` (else the last known position), then most urgent."""
    cells = Worker.cells.through.objects.filter(worker_id=worker.pk).values("gridcell_id")
    qs = (
        Incident.objects.filter(status__in=Incident.OPEN_STATUSES)
        .filter(Q(team_id=worker.team_id) | Q(worker_id=worker.pk) | Q(grid_cell_id__in=cells))
        .select_related("category")
    )
    origin = position or worker.last_position
    if origin is not None:
        from django.contrib.gis.db.models.functions import Distance

        return qs.annotate(distance=Distance("location", origin)).order_by("distance", "priority", "due_at", "pk")
    return qs.order_by("priority", "due_at", "pk")
