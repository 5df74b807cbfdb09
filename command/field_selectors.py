"""Reads of the field workflow: who may see an incident (and so its photos), and a worker's
assignments. One helper fetches and authorises together and answers None alike for missing
and forbidden objects, so an id reveals nothing."""

from __future__ import annotations

from typing import Any

from django.contrib.gis.geos import Point
from django.db.models import Exists, OuterRef, Q, QuerySet

from command.layers import layers_for_user
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


def photo_get_for_user(*, user: Any, photo_id: int) -> ReportPhoto | None:
    photo = ReportPhoto.objects.select_related("report").filter(pk=photo_id).first()
    if photo is None:
        return None
    incident_id = photo.report.incident_id if photo.report is not None else photo.incident_id
    if incident_id is None or incident_get_for_user(user=user, incident_id=incident_id) is None:
        return None
    return photo


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
