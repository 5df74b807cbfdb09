"""The layer registry and the access policy: one answer for every channel.

Each map layer is declared once, here: its geometry, its fields (with their kind and whether
they are personal data), where its rows come from (a table, or clusters computed from one), the
filters it takes, its style and tooltip on the map pages, the events that change it, and the
permission needed to see it. The GeoJSON/tile/OGC/export SQL (command/layer_queries.py), the
event payloads (command/features.py and the report function), the map pages (maps/pages.py),
the permissions (LAYER_PERMISSIONS) and the roles' grants (command/roles.py) derive from it;
tests/command/test_layer_sql.py snapshots the SQL it generates.

``layers_for_user`` answers "which layers, and which fields of each, may this user see"; the
GeoJSON, tile, OGC, export, REST and websocket channels all ask it and nothing else.

This module imports no models (models import it for the permission list).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from command.report_input import REPORT_INPUT

PERSONAL_DATA_PERMISSION = "command.view_personal_data"

# How a field is rendered in a vector tile (MVT knows numbers, strings and booleans only).
NUM, TEXT, BOOL, TIME, ARRAY = "num", "text", "bool", "time", "array"
# The tile kind of each kind of declared report value.
VALUE_KINDS = {"float": NUM, "text": TEXT, "time": TIME}


@dataclass(frozen=True)
class Field:
    name: str
    kind: str = NUM
    sensitive: bool = False  # personal data: only with PERSONAL_DATA_PERMISSION, and each view is logged
    sql: str = ""  # its SQL expression over the row alias ``t`` (default ``t.<name>``)
    # How a sensitive field is masked (command/masking.py); by default from its kind: text is
    # withheld (``***``), a list becomes ``["***"]``, a number (a person's id) null.
    mask: str = ""

    @property
    def expr(self) -> str:
        return self.sql or f"t.{self.name}"

    @property
    def masked_as(self) -> str:
        return self.mask or {TEXT: "text", ARRAY: "flags"}.get(self.kind, "null")


def fields(spec: str, *, sensitive: bool = False) -> tuple[Field, ...]:
    """Plain columns of ``t`` from ``"name:kind name ..."`` (kind defaults to a number); a
    sensitive field may name its mask: ``"head_name:text:name"`` (command/masking.py)."""
    out = []
    for item in spec.split():
        name, _sep, rest = item.partition(":")
        kind, _sep, mask = rest.partition(":")
        out.append(Field(name, kind or NUM, sensitive, mask=mask))
    return tuple(out)


@dataclass(frozen=True)
class TableSource:
    """A layer whose features are rows of a table (or a join), aliased ``t``."""

    from_sql: str
    geom_sql: str
    id_sql: str = "t.id"
    where_sql: str = "TRUE"
    time_sql: str | None = None  # the instant start/end/datetime filter on
    category_sql: str | None = None  # the category id (the ``category`` filter)
    status_sql: str | None = None  # the ``status`` filter
    # The grid cell of a row, for grants narrowed to cells (command/access.py); without it a
    # narrowed grant keeps the rows whose geometry meets the granted cells.
    cell_sql: str | None = None

    @property
    def table(self) -> str:
        return self.from_sql.split()[0]


@dataclass(frozen=True)
class HotspotSource:
    """Recurring hotspots computed from another table's points (the incident history, every
    status): per category and time window, DBSCAN clusters (``ST_ClusterDBSCAN``, a distance
    and a minimum count per category: command/analysis/params.py) of the rows of ``table``,
    each a padded hull with its count, first and last time, the count of the previous window
    within it (its trend), and how many consecutive windows it has persisted (recurrent from
    HOTSPOT_RECURRENT_WINDOWS on). The features are the clusters of the latest window, which
    ends at the query's ``end`` (default: now) and is as long as ``end - start`` (default:
    HOTSPOT_WINDOW_DAYS). The query's bbox and category filters apply to the clustered rows.
    command.layer_queries.hotspot_relation builds the SQL."""

    table: str
    point_column: str
    time_column: str
    category_column: str
    geom_sql: str = "t.geom"
    id_sql: str = "t.id"
    time_sql: str | None = None  # the window is chosen by start/end, not filtered row by row
    status_sql: str | None = None  # every status: the history, not only open incidents
    where_sql: str = "TRUE"
    cell_column: str | None = None  # the clustered rows' grid cell (grants narrowed to cells)

    @property
    def category_sql(self) -> str:
        return f"i.{self.category_column}"


@dataclass(frozen=True)
class HexBinSource:
    """Hexagon bins (``ST_HexagonGrid``, HEXBIN_SIZE_M across, in Web Mercator at the data's
    latitude) of another table's points: each hexagon holding at least one row, with its count
    and commonest category. The query's bbox, time (default: the last HOTSPOT_WINDOW_DAYS) and
    category filters apply to the counted rows (command.layer_queries.hexbin_relation)."""

    table: str
    point_column: str
    time_column: str
    category_column: str
    geom_sql: str = "t.geom"
    id_sql: str = "t.id"
    time_sql: str | None = None
    status_sql: str | None = None
    where_sql: str = "TRUE"

    @property
    def category_sql(self) -> str:
        return f"i.{self.category_column}"


@dataclass(frozen=True)
class CoverageGapSource:
    """What no camera sees (command.layer_queries.coverage_gap_relation): ``kind="roads"``, per
    road of ``road_classes`` the stretches outside every view cone of a camera whose status is
    one of ``camera_statuses``, with the road's length and the uncovered length in metres;
    ``kind="entrances"``, the buildings whose entrance (the point of the footprint nearest
    its nearest road) lies outside every such cone."""

    kind: Literal["roads", "entrances"]
    road_classes: tuple[str, ...] = ("main",)
    camera_statuses: tuple[str, ...] = ("online",)
    geom_sql: str = "t.geom"
    id_sql: str = "t.id"
    time_sql: str | None = None
    status_sql: str | None = None
    category_sql: str | None = None
    where_sql: str = "TRUE"

    @property
    def table(self) -> str:
        return "command_road" if self.kind == "roads" else "command_building"


# Sources computed from other tables (their SQL: command.layer_queries.computed_relation).
ComputedSource = HotspotSource | HexBinSource | CoverageGapSource

Source = TableSource | HotspotSource | HexBinSource | CoverageGapSource

# How a layer appears on the map pages (maps/pages.py): drawn and shown, drawn but switched off,
# the live clustered markers of open incidents, or not drawn (legend only).
PageDrawing = Literal["shown", "hidden", "live", "none"]

OPEN_INCIDENT_STATUSES = ("new", "dispatched", "accepted", "on_scene")


@dataclass(frozen=True)
class Layer:
    name: str
    title_zh: str
    title_en: str
    geometry_type: str  # Point, LineString, Polygon
    geometry: str  # the model attribute holding it ("building__footprint": a related row's)
    source: Source
    fields: tuple[Field, ...]
    style: dict[str, Any]  # Leaflet path options on the map pages and in vector tiles
    tooltip: tuple[str, ...] = ()  # the fields a map page's tooltip shows (those the viewer may see)
    page: PageDrawing = "shown"
    page_order: int = 0  # drawing order on a map page (low first, under the others)
    aggregate_below_zoom: int = 0  # tiles below this zoom hold counts (at centroids), not features
    depends_on: tuple[str, ...] = ()  # event-log layers whose events change this layer (tile freshness)

    @property
    def public_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if not f.sensitive)

    @property
    def sensitive_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.sensitive)

    @property
    def all_fields(self) -> tuple[str, ...]:
        """Every field, public ones first (the event payload's order)."""
        return (*self.public_fields, *self.sensitive_fields)

    @property
    def temporal(self) -> bool:
        return self.source.time_sql is not None or isinstance(self.source, HotspotSource | HexBinSource)

    def column(self, name: str) -> tuple[str, str]:
        """The SQL expression and tile kind of the field ``name``."""
        for f in self.fields:
            if f.name == name:
                return f.expr, f.kind
        raise KeyError(name)

    @property
    def permission_codename(self) -> str:
        return f"view_layer_{self.name}"

    @property
    def permission(self) -> str:
        return f"command.{self.permission_codename}"


def _area(color: str, opacity: float, weight: int = 1) -> dict[str, Any]:
    return {"color": color, "weight": weight, "fill": True, "fillOpacity": opacity}


def _dot(color: str, radius: int, opacity: float = 0.9) -> dict[str, Any]:
    return {"color": color, "radius": radius, "fill": True, "fillOpacity": opacity}


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "cells",
            "网格",
            "Grid cells",
            "Polygon",
            "geom",
            TableSource("command_gridcell t", "t.geom", cell_sql="t.id"),
            fields("id code:text name:text level:text parent_id"),
            _area("#3d8bfd", 0.05, weight=2),
            tooltip=("code", "name"),
            page_order=10,
            depends_on=("cells",),
        ),
        Layer(
            "roads",
            "道路",
            "Roads",
            "LineString",
            "geom",
            TableSource("command_road t", "t.geom"),
            fields("id name:text road_class:text"),
            {"color": "#9aa5b1", "weight": 2},  # the streets make the map read without a basemap
            page_order=20,
            depends_on=("roads",),
        ),
        Layer(
            "buildings",
            "建筑",
            "Buildings",
            "Polygon",
            "footprint",
            TableSource("command_building t", "t.footprint", cell_sql="t.grid_cell_id"),
            fields("id name:text address:text use:text floors household_count grid_cell_id"),
            _area("#c9a66b", 0.35),
            tooltip=("address", "use", "floors"),
            page_order=30,
            aggregate_below_zoom=15,  # 50,000 footprints made 0.75 MB tiles at z12; counts below z15
            depends_on=("buildings", "cells"),
        ),
        Layer(
            "households",
            "住户",
            "Households",
            "Polygon",
            "building__footprint",
            TableSource(
                "command_household t JOIN command_building b ON b.id = t.building_id",
                "b.footprint",
                cell_sql="b.grid_cell_id",
            ),
            (
                *fields("id building_id unit:text resident_type:text members"),
                Field("grid_cell_id", sql="b.grid_cell_id"),
                Field("last_visit_at", TIME),
                *fields("head_name:text:name phone:text:phone", sensitive=True),
                Field("vulnerable", ARRAY, sensitive=True),
            ),
            _area("#e377c2", 0.2),
            tooltip=("unit", "members", "head_name", "phone"),
            page="hidden",
            page_order=40,
            aggregate_below_zoom=15,  # counts below z15: no personal data, cacheable
            depends_on=("households", "buildings"),
        ),
        Layer(
            "persons",
            "人员",
            "Persons",
            "Polygon",
            "household__building__footprint",
            TableSource(
                "command_person t JOIN command_household h ON h.id = t.household_id "
                "JOIN command_building b ON b.id = h.building_id",
                "b.footprint",
                cell_sql="b.grid_cell_id",
            ),
            (
                *fields("id household_id"),
                Field("building_id", sql="h.building_id"),
                Field("grid_cell_id", sql="b.grid_cell_id"),
                *fields("relation:text resident_type:text"),
                *fields("full_name:text:name id_number:text:id_number phone:text:phone", sensitive=True),
                Field("vulnerable", ARRAY, sensitive=True),
            ),
            _area("#e377c2", 0.2),
            page="none",  # lists and exports; the map shows households
            page_order=41,
            aggregate_below_zoom=15,
            depends_on=("persons", "households", "buildings"),
        ),
        Layer(
            "businesses",
            "商户",
            "Businesses",
            "Point",
            "location",
            TableSource(
                "command_business t JOIN command_building b ON b.id = t.building_id",
                "t.location",
                cell_sql="b.grid_cell_id",
            ),
            (
                *fields("id building_id"),
                Field("grid_cell_id", sql="b.grid_cell_id"),
                *fields("name:text industry:text key_industry:text licence_no:text"),
                *fields("last_inspection_at:time updated_at:time"),
                *fields("contact_name:text:name contact_phone:text:phone", sensitive=True),
            ),
            _dot("#ff7f0e", 4),
            tooltip=("name", "industry", "key_industry", "last_inspection_at"),
            page="hidden",
            page_order=45,
            aggregate_below_zoom=14,
            depends_on=("businesses", "buildings"),
        ),
        Layer(
            "campaigns",
            "入户走访",
            "Door-to-door campaigns",
            "MultiPolygon",
            "area",
            TableSource("command_campaign t", "t.area", time_sql="t.created_at", status_sql="t.status"),
            fields(
                "id name:text kind:text target_kind:text status:text total pending visited absent refused "
                "created_at:time closed_at:time"
            ),
            _area("#ab47bc", 0.05, weight=2),
            tooltip=("name", "total", "visited"),
            page="hidden",
            page_order=15,
            depends_on=("campaigns",),
        ),
        Layer(
            "campaign_buildings",
            "走访进度",
            "Campaign progress by building",
            "Polygon",
            "building__footprint",
            TableSource(
                "command_campaignbuilding t JOIN command_building b ON b.id = t.building_id "
                "JOIN command_campaign c ON c.id = t.campaign_id",
                "b.footprint",
                status_sql="c.status",
                cell_sql="b.grid_cell_id",
            ),
            (
                *fields("id campaign_id building_id"),
                Field("grid_cell_id", sql="b.grid_cell_id"),
                *fields("total pending visited absent refused"),
                Field("campaign_total", sql="c.total"),
                Field("campaign_covered", sql="c.visited + c.refused"),
                Field("campaign_absent", sql="c.absent"),
            ),
            _area("#ab47bc", 0.4),
            page="none",  # drawn by the campaign progress panel (maps/static/maps/campaign-progress.js)
            page_order=35,
            depends_on=("campaign_buildings",),
        ),
        Layer(
            "campaign_targets",
            "走访对象",
            "Campaign targets",
            "Polygon",
            "building__footprint",
            TableSource(
                "command_campaigntarget t JOIN command_building b ON b.id = t.building_id",
                "b.footprint",
                time_sql="t.last_mark_at",
                status_sql="t.status",
                cell_sql="t.grid_cell_id",
            ),
            fields(
                "id campaign_id building_id grid_cell_id household_id business_id label:text status:text attempts "
                "last_mark_at:time"
            ),
            _area("#ab47bc", 0.2),
            tooltip=("label", "status"),
            page="none",  # the field app lists them; GeoJSON/tiles with ?status=pending map them
            page_order=36,
            depends_on=("campaign_targets",),
        ),
        Layer(
            "cameras",
            "摄像头",
            "Cameras",
            "Point",
            "location",
            TableSource("command_camera t", "t.location", status_sql="t.status", cell_sql="t.grid_cell_id"),
            fields("id code:text name:text heading fov range_m status:text owner:text grid_cell_id"),
            _dot("#17becf", 5),
            tooltip=("code", "name", "status"),
            page_order=60,
            aggregate_below_zoom=13,
            depends_on=("cameras",),
        ),
        Layer(
            "camera_cones",
            "摄像头视域",
            "Camera view cones",
            "Polygon",
            "view_cone",
            TableSource(
                "command_camera t",
                "t.view_cone",
                where_sql="t.view_cone IS NOT NULL",
                status_sql="t.status",
                cell_sql="t.grid_cell_id",
            ),
            fields("id code:text heading fov range_m status:text"),
            _area("#17becf", 0.15),
            page_order=50,
            depends_on=("cameras",),
        ),
        Layer(
            "incidents",
            "事件",
            "Incidents",
            "Point",
            "location",
            TableSource(
                "command_incident t",
                "t.location",
                time_sql="t.opened_at",
                category_sql="t.category_id",
                status_sql="t.status",
                cell_sql="t.grid_cell_id",
            ),
            fields(
                "id category_id status:text priority grid_cell_id outside_grid:bool building_id team_id worker_id "
                "report_count opened_at:time due_at:time updated_at:time"
            ),
            _dot("#ff5252", 6, 0.8),
            tooltip=("status", "priority"),
            page="live",
            page_order=90,
            aggregate_below_zoom=15,
            depends_on=("incidents",),
        ),
        Layer(
            "reports",
            "上报",
            "Reports",
            "Point",
            "location",
            TableSource(
                "command_report t",
                "t.location",
                time_sql="t.received_at",
                category_sql="t.category_id",
                cell_sql="t.grid_cell_id",
            ),
            (
                Field("id"),
                Field("client_id", TEXT, sql="t.client_id::text"),
                *fields("category_id incident_id grid_cell_id outside_grid:bool building_id received_at:time"),
                Field("source", TEXT),
                Field("reporter_id", sensitive=True),
                *(  # the values a report carries as sent, as command/report_input.py declares them
                    Field(value.column, VALUE_KINDS[value.kind], value.sensitive)
                    for value in REPORT_INPUT
                    if value.on_layer
                ),
            ),
            _dot("#ffb74d", 4, 0.8),
            page="none",
            page_order=100,
            aggregate_below_zoom=15,
            depends_on=("reports",),
        ),
        Layer(
            "workers",
            "在岗人员",
            "Workers on duty",
            "Point",
            "last_position",
            TableSource(
                "command_worker t",
                "t.last_position",
                where_sql="t.on_duty AND t.last_position IS NOT NULL",
                time_sql="t.last_position_at",
            ),
            (
                *fields("id team_id on_duty:bool last_position_at:time"),
                *fields("display_name:text:name phone:text:phone", sensitive=True),
            ),
            _dot("#66bb6a", 5),
            tooltip=("display_name", "team_id"),
            page="hidden",
            page_order=80,
            depends_on=("workers",),
        ),
        Layer(
            "alarm_devices",
            "居家报警设备",
            "Home alarm devices",
            "Polygon",
            "household__building__footprint",
            TableSource(
                "command_alarmdevice t JOIN command_household h ON h.id = t.household_id "
                "JOIN command_building b ON b.id = h.building_id",
                "b.footprint",
                where_sql="t.revoked_at IS NULL",
                status_sql="t.status",
                cell_sql="b.grid_cell_id",
            ),
            (
                *fields("id code:text kind:text status:text household_id"),
                Field("building_id", sql="h.building_id"),
                *fields("battery heartbeat_seconds last_heartbeat_at:time last_alarm_at:time"),
                *fields("wearer_name:text:name contact_name:text:name contact_phone:text:phone", sensitive=True),
            ),
            _area("#ff9800", 0.5, weight=2),
            tooltip=("kind", "status", "last_heartbeat_at"),
            page="hidden",
            page_order=85,
            depends_on=("alarm_devices", "households", "buildings"),
        ),
        Layer(
            "requests",
            "居民诉求",
            "Resident requests",
            "Point",
            "location",
            TableSource(
                "command_servicerequest t",
                "t.location",
                where_sql="t.location IS NOT NULL",
                time_sql="t.created_at",
                category_sql="t.category_id",
                status_sql="t.status",
                cell_sql="t.grid_cell_id",
            ),
            (
                *fields("id channel:text status:text category_id team_id building_id grid_cell_id worker_id"),
                *fields("overdue:bool rating created_at:time due_at:time updated_at:time"),
                *fields("requester_id title:text description:text requester_phone:text:phone", sensitive=True),
            ),
            _dot("#ab47bc", 6),
            tooltip=("status", "title"),
            page="hidden",
            page_order=88,
            depends_on=("requests",),
        ),
        Layer(
            "hotspots",
            "热点",
            "Hotspots",
            "Polygon",
            "location",
            HotspotSource(
                "command_incident", point_column="location", time_column="opened_at", category_column="category_id"
            ),
            (
                *fields("id category_id count previous_count"),
                Field("trend", TEXT),
                Field("windows"),
                Field("recurrent", BOOL),
                *fields("first_at:time last_at:time window_start:time window_end:time grid_cell_id"),
            ),
            _area("#ff1744", 0.25, weight=2),
            tooltip=("category_id", "count", "trend", "recurrent"),
            page_order=70,
            depends_on=("incidents", "hotspots"),
        ),
        Layer(
            "hexbins",
            "事件热力",
            "Incident heat (hexagons)",
            "Polygon",
            "location",
            HexBinSource(
                "command_incident", point_column="location", time_column="opened_at", category_column="category_id"
            ),
            fields("id count category_id"),
            _area("#ff9100", 0.35, weight=0),
            tooltip=("count",),
            page="hidden",
            page_order=65,
            depends_on=("incidents",),
        ),
        Layer(
            "coverage_gaps",
            "监控盲区（主干道）",
            "Camera coverage gaps (main roads)",
            "MultiLineString",
            "geom",
            CoverageGapSource("roads"),
            (*fields("id name:text road_class:text length_m uncovered_m"), Field("uncovered_share")),
            {"color": "#ffd600", "weight": 5, "dashArray": "6 4"},
            tooltip=("name", "uncovered_m"),
            page="hidden",
            page_order=25,
            depends_on=("roads", "cameras"),
        ),
        Layer(
            "entrance_gaps",
            "监控盲区（楼门）",
            "Camera coverage gaps (building entrances)",
            "Point",
            "footprint",
            CoverageGapSource("entrances"),
            fields("id address:text use:text grid_cell_id"),
            _dot("#ffd600", 4),
            tooltip=("address",),
            page="hidden",
            page_order=35,
            depends_on=("buildings", "roads", "cameras"),
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
    fields: tuple[str, ...]  # the fields this viewer gets (those in ``masked`` in their masked form)
    personal_data: bool  # True when sensitive fields come unmasked (each view is logged)
    masked: tuple[str, ...] = ()  # sensitive fields shown masked (command/masking.py)
    cells: tuple[int, ...] | None = None  # narrowed to these grid cells (command/access.py); None: everywhere
    purpose: str = ""  # the purpose stated for an unmasked view (written to the access log)

    def column(self, name: str) -> tuple[str, str]:
        """The SQL expression and tile kind of field ``name`` as this viewer gets it (masked or not)."""
        expr, kind = self.layer.column(name)
        if name in self.masked:
            field = next(f for f in self.layer.fields if f.name == name)
            expr = masked_sql(expr, field)
        return expr, kind

    @property
    def profile(self) -> str:
        """What this grant hands out, for cache keys: the fields, which are masked, the area."""
        cells = "*" if self.cells is None else ",".join(map(str, self.cells))
        return f"{','.join(self.fields)}|{','.join(self.masked)}|{cells}"


_NULL_TYPES = {NUM: "bigint", TEXT: "text", BOOL: "boolean", TIME: "timestamptz", ARRAY: "text[]"}


def masked_sql(expr: str, field: Field) -> str:
    from command.masking import mask_sql

    if field.masked_as == "null":
        return f"NULL::{_NULL_TYPES[field.kind]}"
    return f"({mask_sql(expr, field.masked_as)})"


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


def may_unmask(user: Any) -> bool:
    """May ``user`` unmask personal data (one record at a time, with a stated purpose)?"""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return bool(user.is_superuser) or PERSONAL_DATA_PERMISSION in _user_permissions(user)


def layers_for_user(user: Any, *, purpose: str = "") -> dict[str, LayerGrant]:
    """The one policy: which layers, which of their fields (masked or not), and which grid
    cells of each may ``user`` see.

    - the layers: the permissions of the user's roles (command/roles.py), narrowed by the
      grants in the database (command/access.py: layers, grid cells, time window);
    - personal data (sensitive fields): masked by default for roles whose declaration says
      ``personal_data="masked"``, left out for the others (``"omitted"``: police, residents);
      unmasked only with a stated ``purpose`` and the ``view_personal_data`` permission, and
      every such view is written to the access log by the channel (``layer_access_log``)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return {}
    from command.access import user_access  # it reads models; models import this module

    perms = _user_permissions(user)
    access = user_access(user)
    unmask = bool(purpose.strip()) and (user.is_superuser or PERSONAL_DATA_PERMISSION in perms)
    show_masked = user.is_superuser or access.masked
    grants: dict[str, LayerGrant] = {}
    for name, layer in LAYERS.items():
        if not (user.is_superuser or layer.permission in perms):
            continue
        if access.layer_cells is not None and name not in access.layer_cells:
            continue
        cells = None if access.layer_cells is None else access.layer_cells[name]
        sensitive = layer.sensitive_fields
        if unmask:
            grant = LayerGrant(layer, layer.public_fields + sensitive, bool(sensitive), (), cells, purpose.strip())
        elif show_masked:
            grant = LayerGrant(layer, layer.public_fields + sensitive, False, sensitive, cells)
        else:
            grant = LayerGrant(layer, layer.public_fields, False, (), cells)
        grants[name] = grant
    return grants


def redact(layer_name: str, properties: dict[str, Any], grant: LayerGrant | None) -> dict[str, Any] | None:
    """The properties of one feature as ``grant`` may see them (masked fields masked), or None
    when the layer is not granted."""
    if grant is None or grant.layer.name != layer_name:
        return None
    from command.masking import mask_value

    allowed = set(grant.fields)
    out = {key: value for key, value in properties.items() if key in allowed}
    for f in grant.layer.fields:
        if f.name in grant.masked and f.name in out:
            out[f.name] = mask_value(out[f.name], f.masked_as)
    return out


def mask_properties(layer_name: str, properties: dict[str, Any]) -> dict[str, Any]:
    """Every sensitive field of ``properties`` in its masked form (the event log stores these)."""
    from command.masking import mask_value

    layer = LAYERS.get(layer_name)
    if layer is None:
        return properties
    out = dict(properties)
    for f in layer.fields:
        if f.sensitive and f.name in out:
            out[f.name] = mask_value(out[f.name], f.masked_as)
    return out


def layer_access_row(
    *,
    user: Any,
    channel: str,
    grant: LayerGrant,
    object_ids: list[Any] | None = None,
    detail: str = "",
    purpose: str = "",
    request_id: str | None = None,
) -> Any:
    """The access-log row (unsaved, ``command.access.access_log_row``) for a view through
    ``grant`` when it unmasks personal data; None otherwise."""
    if not grant.personal_data:
        return None
    from command.access import access_log_row  # models import this module

    return access_log_row(
        user=user,
        channel=channel,
        layer=grant.layer.name,
        object_ids=object_ids or [],
        detail=detail,
        purpose=purpose or grant.purpose,
        request_id=request_id,
    )


def layer_access_log(
    *,
    user: Any,
    channel: str,
    grant: LayerGrant,
    object_ids: list[Any] | None = None,
    detail: str = "",
    purpose: str = "",
) -> None:
    """Write one row to the append-only personal-data access log when ``grant`` unmasks
    personal data (a no-op otherwise). Every channel that hands out unmasked fields calls it
    (or writes ``layer_access_row``s in bulk: the live screens, realtime.hub)."""
    row = layer_access_row(
        user=user, channel=channel, grant=grant, object_ids=object_ids, detail=detail, purpose=purpose
    )
    if row is not None:
        row.save()
