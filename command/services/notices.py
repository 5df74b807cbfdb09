"""Village notices (村务公开): operators publish, residents read; reads counted per grid.

A notice targets everyone (no target) or a grid: a cell, or a big grid (then its cells too). A
resident's grid is the cell of their household's building (command.Resident.household); a
resident without a known household sees the notices for everyone only. ``notice.published``
goes to the ``notices`` event layer (no screen draws it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.models import GridCell, Notice, NoticePhoto, NoticeRead, Resident
from command.services.photos import PreparedPhoto, photo_files_delete, photo_rows_store, photos_prepare

PUBLISH_PERMISSION = "command.dispatch_incident"  # the operators
RESIDENT_PERMISSION = "command.use_resident_page"


def notice_publish(*, actor: Any, title: str, body: str, target_code: str = "", photos: Sequence[Any] = ()) -> Notice:
    """Publish a notice, with images (``photos``: the same checks as a report's, re-encoded
    without metadata, command/services/photos.py)."""
    if actor is None or not actor.is_active or not actor.has_perm(PUBLISH_PERMISSION):
        raise PermissionDenied(_("Only operators publish notices."))
    title, body = (title or "").strip(), (body or "").strip()
    errors: dict[str, str] = {}
    if not title or len(title) > 100:
        errors["title"] = _("Give a title of at most 100 characters.")
    if not body or len(body) > 20000:
        errors["body"] = _("Write the notice (at most 20000 characters).")
    target = None
    if target_code:
        target = GridCell.objects.filter(code=target_code).first()
        if target is None:
            errors["target"] = _("No grid %(code)s.") % {"code": target_code}
    try:
        prepared = photos_prepare(photos) if photos else []
    except ValidationError as exc:
        errors.update({field: " ".join(messages) for field, messages in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    written: list[str] = []
    try:
        return _publish(actor=actor, title=title, body=body, target=target, photos=prepared, written=written)
    except BaseException:
        photo_files_delete(written)
        raise


def _publish(
    *, actor: Any, title: str, body: str, target: GridCell | None, photos: list[PreparedPhoto], written: list[str]
) -> Notice:
    with transaction.atomic():
        notice = Notice.objects.create(title=title, body=body, target=target, author=actor, published_at=timezone.now())
        photo_rows_store(NoticePhoto, {"notice": notice}, photos, written)
        event_append(
            kind="notice.published",
            layer="notices",
            object_id=notice.pk,
            actor_id=actor.pk,
            payload={
                "id": str(notice.pk),
                "properties": {
                    "title": notice.title,
                    "target_id": notice.target_id,
                    "published_at": notice.published_at.isoformat(),
                },
            },
        )
    return notice


def resident_cell(user: Any) -> GridCell | None:
    resident = Resident.objects.select_related("household__building__grid_cell").filter(user_id=user.pk).first()
    if resident is None or resident.household is None:
        return None
    return resident.household.building.grid_cell


def notices_for_resident(user: Any) -> QuerySet[Notice]:
    """The notices ``user`` may read: for everyone, for their cell, or for their big grid."""
    cell = resident_cell(user)
    reach = Q(target__isnull=True)
    if cell is not None:
        reach |= Q(target_id=cell.pk)
        if cell.parent_id is not None:
            reach |= Q(target_id=cell.parent_id)
    return Notice.objects.filter(reach)


def notice_read(*, user: Any, notice_id: int) -> Notice:
    """The notice, counted as read by ``user`` (once); DoesNotExist when it is not for them."""
    notice = notices_for_resident(user).filter(pk=notice_id).first()
    if notice is None:
        raise Notice.DoesNotExist(notice_id)
    cell = resident_cell(user)
    try:
        with transaction.atomic():
            NoticeRead.objects.create(notice=notice, user_id=user.pk, grid_cell=cell, read_at=timezone.now())
    except IntegrityError:
        pass  # read before: counted once
    return notice


def notice_photo_for_user(user: Any, *, notice_id: int, photo_id: int) -> NoticePhoto | None:
    """An image of a notice, for a resident it is for or an operator; None (404) for anyone else,
    as for an image that does not exist."""
    if user is None or not user.is_authenticated:
        return None
    if user.has_perm(PUBLISH_PERMISSION):
        notices = Notice.objects.all()
    elif user.has_perm(RESIDENT_PERMISSION):
        notices = notices_for_resident(user)
    else:
        return None
    return NoticePhoto.objects.filter(pk=photo_id, notice_id=notice_id, notice__in=notices).first()


def notice_read_counts(notice_id: int) -> dict[str, int]:
    """Readers of a notice per grid cell code ("" for readers without a known cell)."""
    rows = NoticeRead.objects.filter(notice_id=notice_id).values("grid_cell__code").annotate(n=Count("id"))
    return {row["grid_cell__code"] or "": row["n"] for row in rows}
