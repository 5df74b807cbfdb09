"""The layer registry and the access policy: one answer for every channel.

For each map layer: its table and geometry, its public fields, its sensitive (personal-data)
fields, and the permission needed to see it. ``layers_for_user`` answers "which layers, and
which fields of each, may this user see"; the GeoJSON, tile, OGC, export, REST and websocket
channels all ask it and nothing else.

This module imports no models (models import it for the permission list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PERSONAL_DATA_PERMISSION = "command.view_personal_data"


@dataclass(frozen=True)
class Layer:
    name: str
    title_zh: str
    title_en: str
    table: str
    geometry: str  # column holding the geometry
    geometry_type: str  # Point, LineString, Polygon
    public_fields: tuple[str, ...]
    sensitive_fields: tuple[str, ...] = ()
    time_field: str | None = None
    filters: tuple[str, ...] = field(default=())  # fields that may be filtered on (category, status)

    @property
    def permission_codename(self) -> str:
        return f"view_layer_{self.name}"

    @property
    def permission(self) -> str:
        return f"command.{self.permission_codename}"


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "cells",
            "网格",
            "Grid cells",
            "command_gridcell",
            "geom",
            "Polygon",
            ("id", "code", "name", "level", "parent_id"),
        ),
        Layer("roads", "道路", "Roads", "command_road", "geom", "LineString", ("id", "name", "road_class")),
        Layer(
            "buildings",
            "建筑",
            "Buildings",
            "command_building",
            "footprint",
            "Polygon",
            ("id", "name", "address", "use", "floors", "household_count", "grid_cell_id"),
        ),
        Layer(
            "households",
            "住户",
            "Households",
            "command_household",
            "building__footprint",
            "Polygon",
            ("id", "building_id", "unit", "resident_type", "members"),
            sensitive_fields=("head_name", "phone", "vulnerable"),
        ),
        Layer(
            "cameras",
            "摄像头",
            "Cameras",
            "command_camera",
            "location",
            "Point",
            ("id", "code", "name", "heading", "fov", "range_m", "status", "owner", "grid_cell_id"),
        ),
        Layer(
            "camera_cones",
            "摄像头视域",
            "Camera view cones",
            "command_camera",
            "view_cone",
            "Polygon",
            ("id", "code", "heading", "fov", "range_m", "status"),
        ),
        Layer(
            "incidents",
            "事件",
            "Incidents",
            "command_incident",
            "location",
            "Point",
            (
                "id",
                "category_id",
                "status",
                "priority",
                "grid_cell_id",
                "outside_grid",
                "building_id",
                "team_id",
                "worker_id",
                "report_count",
                "opened_at",
                "due_at",
                "updated_at",
            ),
            time_field="opened_at",
            filters=("category", "status"),
        ),
        Layer(
            "reports",
            "上报",
            "Reports",
            "command_report",
            "location",
            "Point",
            (
                "id",
                "client_id",
                "category_id",
                "incident_id",
                "grid_cell_id",
                "outside_grid",
                "building_id",
                "received_at",
                "source",
            ),
            sensitive_fields=("reporter_id", "note"),
            time_field="received_at",
            filters=("category",),
        ),
        Layer(
            "workers",
            "在岗人员",
            "Workers on duty",
            "command_worker",
            "last_position",
            "Point",
            ("id", "team_id", "on_duty", "last_position_at"),
            sensitive_fields=("display_name", "phone"),
        ),
        Layer(
            "hotspots",
            "热点",
            "Hotspots",
            "command_incident",
            "location",
            "Polygon",
            ("cluster", "count", "category_id"),
        ),
    )
}

# One permission per layer; the roles that hold them are declared in command/roles.py.
LAYER_PERMISSIONS: list[tuple[str, str]] = [
    (layer.permission_codename, f"Can view the {layer.title_en.lower()} layer") for layer in LAYERS.values()
]


@dataclass(frozen=True)
class LayerGrant:
    layer: Layer
    fields: tuple[str, ...]  # the fields this viewer may see
    personal_data: bool  # True when sensitive fields are included (each view is logged)


USER_PERMISSIONS_SQL = """
SELECT ct.app_label || '.' || p.codename
FROM auth_permission p JOIN django_content_type ct ON ct.id = p.content_type_id
WHERE p.id IN (
  SELECT up.permission_id FROM auth_user_user_permissions up WHERE up.user_id = %s
  UNION
  SELECT gp.permission_id FROM auth_user_groups ug
  JOIN auth_group_permissions gp ON gp.group_id = ug.group_id WHERE ug.user_id = %s)
"""


def _user_permissions(user: Any) -> set[str]:
    """The user's permissions, as ``user.get_all_permissions()`` answers them with Django's
    ModelBackend, in one query instead of two (every tile and GeoJSON request asks). The result
    is kept on the user object for the rest of the request, where Django keeps its own."""
    cached = getattr(user, "_perm_cache", None)
    if cached is not None:
        return set(cached)
    if user.is_superuser:
        return set(user.get_all_permissions())
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(USER_PERMISSIONS_SQL, [user.pk, user.pk])
        perms = {row[0] for row in cursor.fetchall()}
    user._perm_cache = perms
    return perms


def layers_for_user(user: Any) -> dict[str, LayerGrant]:
    """The one policy: which layers and which of their fields may ``user`` see."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return {}
    perms = _user_permissions(user)
    personal = user.is_superuser or PERSONAL_DATA_PERMISSION in perms
    grants: dict[str, LayerGrant] = {}
    for name, layer in LAYERS.items():
        if user.is_superuser or layer.permission in perms:
            fields = layer.public_fields + (layer.sensitive_fields if personal else ())
            grants[name] = LayerGrant(layer, fields, personal and bool(layer.sensitive_fields))
    return grants


def redact(layer_name: str, properties: dict[str, Any], grant: LayerGrant | None) -> dict[str, Any] | None:
    """The properties of one feature as ``grant`` may see them, or None when the layer is not granted."""
    if grant is None or grant.layer.name != layer_name:
        return None
    allowed = set(grant.fields)
    return {key: value for key, value in properties.items() if key in allowed}


def layer_access_log(
    *, user: Any, channel: str, grant: LayerGrant, object_ids: list[Any] | None = None, detail: str = ""
) -> None:
    """Write one row to the append-only personal-data access log when ``grant`` unmasks
    personal data (a no-op otherwise). Every channel that hands out unmasked fields calls it."""
    if not grant.personal_data:
        return
    from command.models import PersonalDataAccess  # models import this module

    PersonalDataAccess.objects.create(
        user=user if getattr(user, "pk", None) else None,
        channel=channel,
        layer=grant.layer.name,
        object_ids=[str(i) for i in (object_ids or [])][:10000],
        detail=detail[:200],
    )
