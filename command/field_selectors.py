"""Reads of the field workflow: who may see an incident, what they may see of its reports'
contents (notes, photos), and a worker's assignments. One helper fetches and authorises
together and answers None alike for missing and forbidden objects, so an id reveals nothing.

Seeing an incident (its category, place, status) and seeing what residents wrote or
photographed in its reports are two grants. The second is the reports layer's personal-data
field ``note`` (command.layers: the reports layer plus ``command.view_personal_data``), for
every channel that shows report contents (REST incident detail and assignments, photos,
Open311, the admin). Notes come masked unless unmasked with a stated purpose (logged); the
worker assigned to an incident reads its notes unmasked (logged, purpose "assigned incident");
one's own reports are one's own. Grants narrowed to grid cells narrow the incidents too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.gis.geos import Point
from django.db.models import Exists, OuterRef, Q, QuerySet

from command.access import user_access
from command.layers import LayerGrant, layer_access_log, layers_for_user
from command.masking import mask_text
from command.models import Incident, Report, ReportPhoto, Worker


def worker_for_user(user: Any) -> Worker | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        worker: Worker = user.worker
    except Worker.DoesNotExist:
        return None
    return worker


def incidents_visible_to(user: Any) -> QuerySet[Incident]:
    """Incidents ``user`` may see (their contents masked unless unmasked, see below): those the
    incidents layer shows them (command.layers, the one policy: every incident, or those of the
    grid cells their grant is narrowed to); a worker also those of their team (the team's work),
    and anyone those assigned to them or that they reported."""
    grant = layers_for_user(user).get("incidents")
    if grant is None:
        return Incident.objects.none()
    if grant.cells is None:
        return Incident.objects.all()
    seen = Q(grid_cell_id__in=list(grant.cells))
    own = Q(Exists(Report.objects.filter(incident=OuterRef("pk"), reporter=user)))
    worker = worker_for_user(user)
    if worker is not None:
        own |= Q(worker_id=worker.pk) | Q(team_id=worker.team_id)
    return Incident.objects.filter(seen | own)


def incident_get_for_user(*, user: Any, incident_id: int) -> Incident | None:
    return incidents_visible_to(user).filter(pk=incident_id).first()


# The purpose written to the access log when a worker reads the contents of an incident
# assigned to them, and when a photo is fetched (one record, asked for by its id).
ASSIGNED_PURPOSE = "assigned incident"
PHOTO_PURPOSE = "photo"


def report_contents_grant(user: Any, purpose: str = "") -> LayerGrant | None:
    """The reports layer's grant when it unmasks the reports' contents (``note``, personal data:
    each view is logged with ``purpose``): a stated purpose and the personal-data permission.
    Else None: the contents are masked."""
    if not purpose.strip():
        return None
    grant = layers_for_user(user, purpose=purpose).get("reports")
    return grant if grant is not None and grant.personal_data and "note" in grant.fields else None


def reports_visible_to(user: Any) -> QuerySet[Report]:
    """Reports ``user`` may see (contents masked unless unmasked): with the reports layer, every
    report of an incident they may see; without it, their own reports only."""
    if not getattr(user, "is_authenticated", False):
        return Report.objects.none()
    if "reports" in layers_for_user(user):
        return Report.objects.filter(Q(incident__in=incidents_visible_to(user)) | Q(reporter_id=user.pk))
    return Report.objects.filter(reporter_id=user.pk)


def photos_visible_to(user: Any) -> QuerySet[ReportPhoto]:
    """Photos ``user`` may fetch: with the reports layer and the personal-data permission, those
    of visible incidents' reports and resolutions (each fetch is logged); else those of their
    own reports, and resolution photos of incidents assigned to them."""
    if report_contents_grant(user, PHOTO_PURPOSE) is not None:
        incidents = incidents_visible_to(user)
        return ReportPhoto.objects.filter(
            Q(report__incident__in=incidents) | Q(report__isnull=True, incident__in=incidents)
        )
    if not getattr(user, "is_authenticated", False):
        return ReportPhoto.objects.none()
    mine = Q(report__reporter_id=user.pk)
    worker = worker_for_user(user)
    if worker is not None:
        mine |= Q(report__isnull=True, incident__worker_id=worker.pk)
    return ReportPhoto.objects.filter(mine)


def photo_get_for_user(*, user: Any, photo_id: int) -> ReportPhoto | None:
    photo = photos_visible_to(user).select_related("report").filter(pk=photo_id).first()
    if photo is not None and (photo.report is None or photo.report.reporter_id != user.pk):
        grant = report_contents_grant(user, PHOTO_PURPOSE)
        if grant is not None:
            ids = [photo.report_id or f"incident:{photo.incident_id}"]
            layer_access_log(user=user, channel="photo", grant=grant, object_ids=ids, detail=f"photo {photo.pk}")
    return photo


@dataclass(frozen=True)
class IncidentContents:
    """What ``user`` may see of an incident's contents (notes masked unless unmasked)."""

    note: str | None
    resolution_note: str | None
    photos: list[ReportPhoto]
    masked: bool = True


@dataclass(frozen=True)
class ContentsPolicy:
    """The rules for the contents of reports and incidents (notes, resolution notes), one set
    for every channel that shows them (REST incident detail and assignments, Open311):

    - one's own report: as written (no log: it is one's own);
    - a stated purpose and the personal-data permission: unmasked, logged with the purpose;
    - the worker assigned to the incident: unmasked, logged as ASSIGNED_PURPOSE;
    - else masked (``***``) for roles that see personal data masked, left out (None) for the
      roles that never see it (police)."""

    grant: LayerGrant | None
    assigned_grant: LayerGrant | None
    worker_id: int | None
    shows_masked: bool

    def decide(self, incident: Incident | None, *, own: bool = False) -> str:
        """ "own", "unmasked", "assigned" or "masked"."""
        if own:
            return "own"
        if self.grant is not None:
            return "unmasked"
        if self.assigned_grant is not None and self.assigned(incident):
            return "assigned"
        return "masked"

    def assigned(self, incident: Incident | None) -> bool:
        return incident is not None and self.worker_id is not None and incident.worker_id == self.worker_id

    def hide(self, text: str) -> str | None:
        return mask_text(text) if self.shows_masked else None

    def log(self, *, user: Any, channel: str, decided: dict[str, list[str]], detail: str = "") -> None:
        """One access-log row per unmasking rule that applied (the ids, e.g. ``incident:7``)."""
        for decision, grant in (("unmasked", self.grant), ("assigned", self.assigned_grant)):
            if grant is not None and decided.get(decision):
                layer_access_log(user=user, channel=channel, grant=grant, object_ids=decided[decision], detail=detail)


def contents_policy(user: Any, purpose: str = "") -> ContentsPolicy:
    worker = worker_for_user(user)
    # roles that see personal data masked get ``***``; those that never see it (police), nothing
    shows_masked = user_access(user).masked if getattr(user, "is_authenticated", False) else False
    return ContentsPolicy(
        grant=report_contents_grant(user, purpose),
        assigned_grant=report_contents_grant(user, ASSIGNED_PURPOSE),
        worker_id=worker.pk if worker is not None else None,
        shows_masked=shows_masked,
    )


def incident_contents_for_user(
    *, user: Any, incidents: list[Incident], with_photos: bool, channel: str, purpose: str = ""
) -> dict[int, IncidentContents]:
    """The contents of ``incidents`` (already authorised for ``user``) as ``user`` may see them
    (``ContentsPolicy``). Every unmasked view is logged with its purpose."""
    policy = contents_policy(user, purpose)
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
    decided: dict[str, list[str]] = {}
    for incident in incidents:
        decision = policy.decide(incident)
        decided.setdefault(decision, []).append(f"incident:{incident.pk}")
        if decision == "masked":
            out[incident.pk] = IncidentContents(
                note=policy.hide(incident.note),
                resolution_note=incident.resolution_note
                if policy.assigned(incident)
                else policy.hide(incident.resolution_note),
                photos=photos[incident.pk],
            )
        else:
            out[incident.pk] = IncidentContents(
                note=incident.note, resolution_note=incident.resolution_note, photos=photos[incident.pk], masked=False
            )
    policy.log(user=user, channel=channel, decided=decided)
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
