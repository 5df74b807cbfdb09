# ruff: noqa: S608  -- SQL is composed of constants and whitelisted status names; values are bound parameters.
"""Door-to-door campaigns: an operator draws or picks an area and a household or business
filter (``campaign_create``: the targets are written at once, in PostGIS); grid workers mark
each target visited / absent / refused from the field app (``campaign_mark``), offline too.

A mark is idempotent like a report: the phone makes its client id once and every retry sends
it again; the same id with the same content answers the first mark, with other content it is a
conflict. Coverage is counted once per target, whatever the number of marks: a target's status
is the outcome of its latest mark by the time it was made on the phone (an old mark that an
offline phone sends late does not overwrite a newer one), and the building's and the campaign's
counters move with the status in the transaction of the mark. ``covered`` = visited + refused;
an absent target is to be visited again.

Lock order (no deadlocks): the target row, its building's progress row, the campaign row, the
event counter (command.eventlog). The campaign row's lock makes each progress event carry the
counters as of its commit, in seq order.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.gis.geos import GEOSGeometry, MultiPolygon, Polygon
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.features import feature_of
from command.geometry import check_geometry
from command.models import Business, Campaign, CampaignBuilding, CampaignMark, CampaignTarget, GridCell, Household
from command.registry_selectors import campaign_targets_visible_to
from command.services.registry import name_check

NOTE_MAX_CHARS = 1000
STATUSES = tuple(CampaignTarget.Status.values)  # the counter columns: pending visited absent refused
OUTCOMES = tuple(CampaignMark.Outcome.values)


class CampaignNotFound(Exception):
    """No such campaign or target, or not one this user may work (answered alike: 404)."""


class CampaignClosed(Exception):
    """The campaign is closed: no more marks (HTTP 409)."""


class MarkConflict(Exception):
    """The client id was already used for a mark with different content (HTTP 409)."""

    def __init__(self, existing: CampaignMark) -> None:
        super().__init__(f"client id {existing.client_id} was already used for a different mark")
        self.existing = existing


@dataclass(frozen=True)
class CampaignFilter:
    """Which households or businesses of the area become targets."""

    vulnerable: tuple[str, ...] = ()  # households with any of these flags (empty: all)
    resident_type: str = ""  # households of this type (empty: both)
    industries: tuple[str, ...] = ()  # businesses of these industries (empty: all)
    key_only: bool = False  # businesses of a key industry only

    def as_json(self) -> dict[str, Any]:
        return {
            "vulnerable": list(self.vulnerable),
            "resident_type": self.resident_type,
            "industries": list(self.industries),
            "key_only": self.key_only,
        }


def _filter_check(target_kind: str, flt: CampaignFilter) -> None:
    errors: dict[str, list[str]] = {}
    if target_kind == Campaign.TargetKind.HOUSEHOLDS:
        unknown = sorted(set(flt.vulnerable) - set(Household.Vulnerable.values))
        if unknown:
            errors["vulnerable"] = [_("Unknown vulnerable group %s.") % unknown[0]]
        if flt.resident_type and flt.resident_type not in Household.ResidentType.values:
            errors["resident_type"] = [_("Unknown resident type %s.") % flt.resident_type]
        if flt.industries or flt.key_only:
            errors["industries"] = [_("Industry filters apply to business campaigns only.")]
    else:
        unknown = sorted(set(flt.industries) - set(Business.Industry.values))
        if unknown:
            errors["industries"] = [_("Unknown industry %s.") % unknown[0]]
        if flt.vulnerable or flt.resident_type:
            errors["vulnerable"] = [_("Household filters apply to household campaigns only.")]
    if errors:
        raise ValidationError(errors)


def _area_of(area: GEOSGeometry | None, cell_codes: Sequence[str]) -> MultiPolygon:
    if (area is None) == (not cell_codes):
        raise ValidationError({"area": [_("Draw an area or pick grid cells (one of the two).")]})
    if area is not None:
        check_geometry(area, expected=("Polygon", "MultiPolygon"))
        return area if isinstance(area, MultiPolygon) else MultiPolygon(area, srid=4326)
    codes = list(dict.fromkeys(cell_codes))
    cells = list(GridCell.objects.filter(code__in=codes))
    missing = sorted(set(codes) - {c.code for c in cells})
    if missing:
        raise ValidationError({"cells": [_("No grid cell %s.") % missing[0]]})
    union: GEOSGeometry = cells[0].geom
    for cell in cells[1:]:
        union = union.union(cell.geom)
    union.srid = 4326
    if isinstance(union, Polygon):
        return MultiPolygon(union, srid=4326)
    if not isinstance(union, MultiPolygon):
        raise ValidationError({"cells": [_("These grid cells do not make an area.")]})
    return union


_TARGETS_SQL: dict[str, str] = {
    Campaign.TargetKind.HOUSEHOLDS: """
INSERT INTO command_campaigntarget
  (campaign_id, household_id, business_id, building_id, grid_cell_id, label, status, attempts)
SELECT c.id, h.id, NULL, b.id, b.grid_cell_id, h.unit, 'pending', 0
FROM command_campaign c
JOIN command_building b ON b.footprint && c.area AND ST_Covers(c.area, ST_PointOnSurface(b.footprint))
JOIN command_household h ON h.building_id = b.id
WHERE c.id = %(campaign)s
  AND (cardinality(%(vulnerable)s::text[]) = 0 OR h.vulnerable && %(vulnerable)s::varchar[])
  AND (%(resident_type)s = '' OR h.resident_type = %(resident_type)s)
""",
    Campaign.TargetKind.BUSINESSES: """
INSERT INTO command_campaigntarget
  (campaign_id, household_id, business_id, building_id, grid_cell_id, label, status, attempts)
SELECT c.id, NULL, z.id, b.id, b.grid_cell_id, left(z.name, 100), 'pending', 0
FROM command_campaign c
JOIN command_building b ON b.footprint && c.area AND ST_Covers(c.area, ST_PointOnSurface(b.footprint))
JOIN command_business z ON z.building_id = b.id
WHERE c.id = %(campaign)s
  AND (cardinality(%(industries)s::text[]) = 0 OR z.industry = ANY(%(industries)s))
  AND (NOT %(key_only)s OR z.key_industry <> '')
""",
}

_BUILDINGS_SQL = """
INSERT INTO command_campaignbuilding (campaign_id, building_id, total, pending, visited, absent, refused)
SELECT campaign_id, building_id, count(*), count(*), 0, 0, 0
FROM command_campaigntarget WHERE campaign_id = %s GROUP BY campaign_id, building_id
"""


def _campaign_event(campaign: Campaign, actor_id: int | None) -> None:
    event_append(
        kind="campaign.updated",
        layer="campaigns",
        object_id=campaign.pk,
        actor_id=actor_id,
        payload=feature_of(campaign, "campaigns"),
    )


@transaction.atomic
def campaign_create(
    *,
    actor_id: int | None,
    name: str,
    kind: str,
    target_kind: str,
    area: GEOSGeometry | None = None,
    cell_codes: Sequence[str] = (),
    filters: CampaignFilter | None = None,
) -> Campaign:
    """Start a campaign over the households or businesses of ``area`` (drawn) or of the grid
    cells ``cell_codes`` (picked) that pass ``filters``; a building is in the area when a point
    on its footprint is. An area without a single target is refused (nothing is written)."""
    flt = filters or CampaignFilter()
    errors: dict[str, list[str]] = {}
    try:
        name = name_check(name, max_length=100)
    except ValidationError as exc:
        errors["name"] = exc.messages
    if kind not in Campaign.Kind.values:
        errors["kind"] = [_("Unknown campaign kind %s.") % kind]
    if target_kind not in Campaign.TargetKind.values:
        errors["target_kind"] = [_("Targets are households or businesses, not %s.") % target_kind]
    if errors:
        raise ValidationError(errors)
    _filter_check(target_kind, flt)
    multi = _area_of(area, cell_codes)
    campaign = Campaign.objects.create(
        name=name,
        kind=kind,
        target_kind=target_kind,
        area=multi,
        filters={**flt.as_json(), "cells": list(cell_codes)},
        created_by_id=actor_id,
        created_at=timezone.now(),
    )
    params: dict[str, Any] = {
        "campaign": campaign.pk,
        "vulnerable": list(flt.vulnerable),
        "resident_type": flt.resident_type,
        "industries": list(flt.industries),
        "key_only": flt.key_only,
    }
    with connection.cursor() as cursor:
        cursor.execute(_TARGETS_SQL[target_kind], params)
        total = cursor.rowcount
        if total == 0:
            raise ValidationError({"area": [_("No household or business in this area passes the filter.")]})
        cursor.execute(_BUILDINGS_SQL, [campaign.pk])
        buildings = cursor.rowcount
    campaign.total = campaign.pending = total
    campaign.save(update_fields=["total", "pending"])
    _campaign_event(campaign, actor_id)
    for layer, count in (("campaign_targets", total), ("campaign_buildings", buildings)):
        event_append(
            kind="layer.reloaded",
            layer=layer,
            object_id="*",
            actor_id=actor_id,
            payload={"id": "*", "properties": {layer: count, "campaign": campaign.pk}},
        )
    return campaign


@transaction.atomic
def campaign_close(*, actor_id: int | None, campaign: Campaign) -> Campaign:
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.status == Campaign.Status.CLOSED:
        raise CampaignClosed(locked.pk)
    locked.status = Campaign.Status.CLOSED
    locked.closed_at = timezone.now()
    locked.save(update_fields=["status", "closed_at"])
    _campaign_event(locked, actor_id)
    return locked


@dataclass(frozen=True)
class MarkResult:
    mark: CampaignMark
    created: bool  # False: a retry of a stored mark
    target: CampaignTarget
    counted: bool  # the mark changed the target's status (and the counters)


def mark_content_hash(*, target_id: int, outcome: str, note: str, marked_at: datetime | None) -> str:
    canonical = json.dumps(
        {
            "target": target_id,
            "outcome": outcome,
            "note": note.strip(),
            "marked_at": marked_at.astimezone(UTC).isoformat(timespec="seconds") if marked_at else None,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def campaign_mark(
    *,
    user: Any,
    target_id: int,
    client_id: uuid.UUID,
    outcome: str,
    note: str = "",
    marked_at: datetime | None = None,
) -> MarkResult:
    """Mark a target visited / absent / refused (see the module's doc). CampaignNotFound for a
    target the user may not work, CampaignClosed after the campaign closed, MarkConflict for a
    reused client id, ValidationError for bad values; nothing is written then."""
    note = (note or "").strip()
    errors: dict[str, list[str]] = {}
    if outcome not in OUTCOMES:
        errors["outcome"] = [_("The outcome is one of %s.") % ", ".join(OUTCOMES)]
    if len(note) > NOTE_MAX_CHARS or "\x00" in note:
        errors["note"] = [_("A note is at most %(max)s characters.") % {"max": NOTE_MAX_CHARS}]
    now = timezone.now()
    if marked_at is not None and marked_at > now + timedelta(minutes=10):
        errors["marked_at"] = [_("The mark's time is in the future; check the phone's clock.")]
    if errors:
        raise ValidationError(errors)
    content_hash = mark_content_hash(target_id=target_id, outcome=outcome, note=note, marked_at=marked_at)
    try:
        with transaction.atomic():
            return _mark_write(
                user=user,
                target_id=target_id,
                client_id=client_id,
                outcome=outcome,
                note=note,
                marked_at=marked_at or now,
                now=now,
                content_hash=content_hash,
            )
    except IntegrityError:
        existing = CampaignMark.objects.filter(user_id=user.pk, client_id=client_id).select_related("target").first()
        if existing is None:
            raise
        if existing.content_hash != content_hash:
            raise MarkConflict(existing) from None
        return MarkResult(existing, created=False, target=existing.target, counted=False)


def _mark_write(
    *,
    user: Any,
    target_id: int,
    client_id: uuid.UUID,
    outcome: str,
    note: str,
    marked_at: datetime,
    now: datetime,
    content_hash: str,
) -> MarkResult:
    target = (
        campaign_targets_visible_to(user)
        .select_for_update(of=("self",))
        .select_related("building", "campaign")
        .filter(pk=target_id)
        .first()
    )
    if target is None:
        raise CampaignNotFound(target_id)
    mark = CampaignMark(
        target=target,
        user_id=user.pk,
        client_id=client_id,
        content_hash=content_hash,
        outcome=outcome,
        note=note,
        marked_at=marked_at,
        received_at=now,
    )
    stored = target.campaign.status == Campaign.Status.ACTIVE and _mark_insert(mark)
    if not stored:  # a retry (the client id is taken), or the campaign is closed
        existing = CampaignMark.objects.filter(user_id=user.pk, client_id=client_id).first()
        if existing is not None:
            if existing.content_hash != content_hash:
                raise MarkConflict(existing)
            return MarkResult(existing, created=False, target=target, counted=False)
        raise CampaignClosed(target.campaign_id)
    old = target.status
    latest = target.last_mark_at is None or marked_at >= target.last_mark_at
    target.attempts += 1
    if latest:
        target.status = outcome
        target.last_mark_at = marked_at
        target.last_marked_by_id = user.pk
    target.save(update_fields=["attempts", "status", "last_mark_at", "last_marked_by"])
    counted = target.status != old
    event_append(
        kind="campaign_target.updated",
        layer="campaign_targets",
        object_id=target.pk,
        actor_id=user.pk,
        payload=feature_of(target, "campaign_targets"),
    )
    if counted:
        _counters_move(target, old, target.status, actor_id=user.pk)
    return MarkResult(mark, created=True, target=target, counted=counted)


_MARK_INSERT_SQL = """
INSERT INTO command_campaignmark (target_id, user_id, client_id, content_hash, outcome, note, marked_at, received_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (user_id, client_id) DO NOTHING RETURNING id
"""


def _mark_insert(mark: CampaignMark) -> bool:
    """Insert ``mark`` unless its client id is taken (then False: one round trip either way)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _MARK_INSERT_SQL,
            [
                mark.target_id,
                mark.user_id,
                mark.client_id,
                mark.content_hash,
                mark.outcome,
                mark.note,
                mark.marked_at,
                mark.received_at,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return False
    mark.pk = row[0]
    mark._state.adding = False
    return True


def _counters_move(target: CampaignTarget, old: str, new: str, *, actor_id: int | None) -> None:
    """One target from ``old`` to ``new`` in its building's and its campaign's counters, and
    the building's progress event (with the campaign's totals as of this commit)."""
    assert old in STATUSES and new in STATUSES  # column names: whitelisted
    move = f"{old} = {old} - 1, {new} = {new} + 1"
    counters = ("total", "pending", "visited", "absent", "refused")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE command_campaignbuilding SET {move} WHERE campaign_id = %s AND building_id = %s "
            "RETURNING id, total, pending, visited, absent, refused",
            [target.campaign_id, target.building_id],
        )
        row = cursor.fetchone()
        cursor.execute(
            f"UPDATE command_campaign SET {move} WHERE id = %s RETURNING total, pending, visited, absent, refused",
            [target.campaign_id],
        )
        counts = cursor.fetchone()
    assert row is not None and counts is not None
    campaign = target.campaign
    for name, value in zip(counters, counts, strict=True):
        setattr(campaign, name, value)
    progress = CampaignBuilding(id=row[0], campaign=campaign, building=target.building)
    for name, value in zip(counters, row[1:], strict=True):
        setattr(progress, name, value)
    event_append(
        kind="campaign.progress",
        layer="campaign_buildings",
        object_id=progress.pk,
        actor_id=actor_id,
        payload=feature_of(progress, "campaign_buildings"),
    )
