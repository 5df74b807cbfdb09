"""Access grants: given, changed, revoked and deleted here only (the admin calls these), each in
one transaction with its ``grant.updated`` event (the record of who was allowed to see what,
when, by whom). What a grant means: command/access.py. A revocation takes effect at once for
new requests (the policy reads the grants on every request) and within a heartbeat on open
websockets (realtime.hub re-reads every connected user's grants)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.event_payloads import ACCESS_LAYER
from command.eventlog import event_append
from command.layers import LAYERS
from command.models import AccessGrant, GridCell
from command.roles import ROLES


def _payload(grant: AccessGrant, action: str) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": str(grant.pk),
        "geometry": None,
        "properties": {
            "action": action,
            "user_id": grant.user_id,
            "role": grant.role,
            "layers": list(grant.layers),
            "own_cells": grant.own_cells,
            "cells": sorted(c.pk for c in grant.cells.all()),
            "neighbour_cover": grant.neighbour_cover,
            "valid_from": iso(grant.valid_from),
            "valid_until": iso(grant.valid_until),
            "reason": grant.reason,
        },
    }


def _validate(
    *, user: User | None, role: str, layers: Iterable[str], valid_from: datetime | None, valid_until: datetime | None
) -> list[str]:
    errors: dict[str, str] = {}
    if (user is None) == (not role):
        errors["user"] = _("Give either a user or a role, not both.")
    if role and role not in ROLES:
        errors["role"] = _("Unknown role %(role)s; roles are %(roles)s.") % {"role": role, "roles": ", ".join(ROLES)}
    layers = list(dict.fromkeys(layers))
    unknown = [name for name in layers if name not in LAYERS]
    if unknown:
        errors["layers"] = _("Unknown layers: %(layers)s.") % {"layers": ", ".join(unknown)}
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        errors["valid_until"] = _("The end of the window must come after its start.")
    if errors:
        raise ValidationError(errors)
    return layers


@transaction.atomic
def access_grant_save(
    *,
    grant: AccessGrant | None = None,
    user: User | None = None,
    role: str = "",
    layers: Iterable[str] = (),
    cells: Iterable[GridCell] = (),
    own_cells: bool = False,
    neighbour_cover: bool = False,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    reason: str,
    actor_id: int | None,
) -> AccessGrant:
    """Give a grant (``grant`` None) or change one; appends ``grant.updated``."""
    layer_list = _validate(user=user, role=role, layers=layers, valid_from=valid_from, valid_until=valid_until)
    if not reason.strip():
        raise ValidationError({"reason": _("Say why this grant is given.")})
    changing = grant is not None and grant.pk is not None
    if grant is None:
        grant = AccessGrant()
    grant.user = user
    grant.role = role
    grant.layers = layer_list
    grant.own_cells = own_cells
    grant.neighbour_cover = neighbour_cover
    grant.valid_from = valid_from
    grant.valid_until = valid_until
    grant.reason = reason.strip()[:200]
    if not changing:
        grant.created_by_id = actor_id
    grant.save()
    grant.cells.set(list(cells))
    event_append(
        kind="grant.updated",
        layer=ACCESS_LAYER,
        object_id=grant.pk,
        actor_id=actor_id,
        payload=_payload(grant, "changed" if changing else "granted"),
    )
    return grant


@transaction.atomic
def access_grant_revoke(*, grant: AccessGrant, actor_id: int | None) -> AccessGrant:
    """Revoke a grant now (kept for the record); appends ``grant.updated``."""
    if grant.revoked_at is None:
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["revoked_at"])
        event_append(
            kind="grant.updated",
            layer=ACCESS_LAYER,
            object_id=grant.pk,
            actor_id=actor_id,
            payload=_payload(grant, "revoked"),
        )
    return grant


@transaction.atomic
def access_grant_delete(*, grant: AccessGrant, actor_id: int | None) -> None:
    """Delete a grant: when it was the subject's last, the role's declaration applies again."""
    payload = _payload(grant, "deleted")
    pk = grant.pk
    grant.delete()
    event_append(kind="grant.updated", layer=ACCESS_LAYER, object_id=pk, actor_id=actor_id, payload=payload)
