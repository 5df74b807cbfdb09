"""Who sees which layers where: the roles' declared defaults (command/roles.py) and the grants an
administrator edits in the database (``AccessGrant``, written by command/services/access.py),
resolved per user for the one policy (``command.layers.layers_for_user``). Also the access log's
writer (who, role, what, when, purpose, request id) and the request id itself.

Resolution, per user:

- no declared role: the user's permissions alone decide, everywhere (and personal data is left out);
- the user has grant rows of their own: their *active* rows decide (layers, cells), whatever the role;
- else per role: the role's active rows if the role has any, else the declaration: the role's
  layers everywhere (``area="everywhere"``) or in the user's own cells (``"own_cells"``: the
  cells of their worker record; a big grid stands for its cells).

A row is active while it is not revoked and now is inside its window. Once a subject has rows,
revoking the last one takes everything away (it never falls back to the declaration; delete
the rows to restore it). A row's cells: its listed cells, the user's own cells if ``own_cells``,
each big grid with its cells, and with ``neighbour_cover`` (the AB role) the cells that share
a border with those; no cells and not ``own_cells`` means everywhere. A layer granted by
several rows gets the union of their cells.

Rows are narrowed further by the layer's cell column (``TableSource.cell_sql``) or, for layers
that declare none, by their geometry meeting the granted cells: command/layer_queries.py for
SQL channels, ``feature_in_cells`` below for live events.
"""

from __future__ import annotations

import contextvars
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import connection

from command.layers import LAYERS

# The id of the request (or websocket connection) being served: written to the access log and
# answered as ``X-Request-ID`` (command/middleware.py).
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("gc_request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Access:
    roles: tuple[str, ...]
    masked: bool  # personal data shown masked (else left out) by default
    # layer -> its cells (None: everywhere); layers absent are not granted. None: no narrowing at all.
    layer_cells: dict[str, tuple[int, ...] | None] | None


ACCESS_SQL = """
WITH r AS (
  SELECT g.name FROM auth_user_groups ug JOIN auth_group g ON g.id = ug.group_id WHERE ug.user_id = %(user)s
)
SELECT
  ARRAY(SELECT name FROM r ORDER BY name),
  ARRAY(SELECT wc.gridcell_id FROM command_worker w JOIN command_worker_cells wc ON wc.worker_id = w.id
        WHERE w.user_id = %(user)s),
  (SELECT json_agg(json_build_object(
      'user', a.user_id IS NOT NULL, 'role', a.role, 'layers', a.layers, 'own', a.own_cells,
      'cover', a.neighbour_cover,
      'active', a.revoked_at IS NULL AND (a.valid_from IS NULL OR a.valid_from <= now())
                AND (a.valid_until IS NULL OR a.valid_until > now()),
      'cells', ARRAY(SELECT c.gridcell_id FROM command_accessgrant_cells c WHERE c.accessgrant_id = a.id)))
   FROM command_accessgrant a WHERE a.user_id = %(user)s OR a.role IN (SELECT name FROM r))
"""

# The cells of a grant: the listed ones, the cells of listed big grids, and (cover) the cells
# that touch any of them.
EXPAND_SQL = """
WITH s AS (SELECT id, geom FROM command_gridcell WHERE id = ANY(%(ids)s) OR parent_id = ANY(%(ids)s)),
n AS (SELECT c.id FROM command_gridcell c JOIN s ON c.geom && s.geom AND ST_Touches(c.geom, s.geom)
      WHERE %(cover)s AND c.level = 'cell')
SELECT COALESCE(array_agg(id ORDER BY id), '{}') FROM (SELECT id FROM s UNION SELECT id FROM n) x
"""


def _expand(ids: set[int], cover: bool) -> set[int]:
    if not ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(EXPAND_SQL, {"ids": sorted(ids), "cover": cover})
        row = cursor.fetchone()
    return set(row[0] or []) if row else set()


def _declared(roles: tuple[str, ...]) -> list[Any]:
    from command.roles import ROLES

    return [ROLES[name] for name in roles if name in ROLES]


def access_prefetched_enough(user: Any) -> bool:
    """True when the user's access is known without a query (``command.logins.viewer_from_row``
    loaded the roles and whether grant rows exist): the lean tile path needs this."""
    if getattr(user, "_gc_access", None) is not None or user.is_superuser:
        return True
    roles = getattr(user, "_gc_roles", None)
    if roles is None or getattr(user, "_gc_has_grants", True):
        return False
    return all(role.area == "everywhere" for role in _declared(tuple(roles)))


def user_access(user: Any) -> Access:
    """The user's access (kept on the user object for the rest of the request)."""
    cached: Access | None = getattr(user, "_gc_access", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        access = Access(("admin",), True, None)
    elif access_prefetched_enough(user):
        roles = tuple(user._gc_roles)
        declared = _declared(roles)
        access = Access(roles, any(r.personal_data == "masked" for r in declared), None)
    else:
        with connection.cursor() as cursor:
            cursor.execute(ACCESS_SQL, {"user": user.pk})
            row = cursor.fetchone()
        assert row is not None
        rows = row[2] if isinstance(row[2], list) else json.loads(row[2] or "[]")
        access = access_resolve(tuple(row[0] or ()), set(row[1] or ()), rows)
    user._gc_access = access
    return access


def access_resolve(roles: tuple[str, ...], own_cells: set[int], rows: list[dict[str, Any]]) -> Access:
    """The rules of the module docstring over a user's roles, own cells and grant rows."""
    declared = _declared(roles)
    if not declared:
        return Access(roles, False, None)
    masked = any(r.personal_data == "masked" for r in declared)
    if not rows and all(r.area == "everywhere" for r in declared):
        return Access(roles, masked, None)
    role_layers = tuple(dict.fromkeys(name for r in declared for name in r.layers))
    areas: dict[str, set[int] | None] = {}

    def add(layers: Any, cells: set[int] | None) -> None:
        for name in layers:
            if name not in LAYERS:
                continue
            if name in areas and areas[name] is None:
                continue
            if cells is None:
                areas[name] = None
            else:
                current = areas.setdefault(name, set())
                assert current is not None
                current.update(cells)

    def cells_of(row: dict[str, Any]) -> set[int] | None:
        listed = set(row.get("cells") or ())
        if not listed and not row.get("own"):
            return None
        ids = listed | (own_cells if row.get("own") else set())
        return _expand(ids, bool(row.get("cover")))

    user_rows = [row for row in rows if row.get("user")]
    if user_rows:
        for row in user_rows:
            if row.get("active"):
                add(row.get("layers") or role_layers, cells_of(row))
    else:
        for role in declared:
            role_rows = [row for row in rows if not row.get("user") and row.get("role") == role.name]
            if role_rows:
                for row in role_rows:
                    if row.get("active"):
                        add(row.get("layers") or role.layers, cells_of(row))
            elif role.area == "everywhere":
                add(role.layers, None)
            else:
                add(role.layers, _expand(own_cells, False))
    layer_cells = {name: (None if cells is None else tuple(sorted(cells))) for name, cells in areas.items()}
    return Access(roles, masked, layer_cells)


# A stated purpose (the unmask step of every channel): a few words, written to the access log.
PURPOSE_MIN_CHARS = 2
PURPOSE_MAX_CHARS = 200


class PurposeRefused(Exception):
    """A purpose that cannot unmask: too short or too long (400), or a user who may not unmask (403)."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def purpose_stated(user: Any, raw: str | None) -> str:
    """The purpose a user states for unmasking (``?purpose=`` of a list or page), checked: ""
    when none is stated (the answer stays masked); PurposeRefused when it is too short or too
    long, or when the user may not unmask personal data."""
    from django.utils.translation import gettext as _

    from command.layers import may_unmask

    purpose = (raw or "").strip()
    if not purpose:
        return ""
    if not PURPOSE_MIN_CHARS <= len(purpose) <= PURPOSE_MAX_CHARS:
        raise PurposeRefused(
            _("State the purpose in %(low)s to %(high)s characters (written to the access log).")
            % {"low": PURPOSE_MIN_CHARS, "high": PURPOSE_MAX_CHARS},
            400,
        )
    if not may_unmask(user):
        raise PurposeRefused(_("Your role may not unmask personal data."), 403)
    return purpose


def access_log_row(
    *,
    user: Any,
    channel: str,
    layer: str,
    object_ids: list[Any],
    detail: str = "",
    purpose: str = "",
    request_id: str | None = None,
) -> Any:
    """One row of the append-only access log, unsaved: who (user, login, role), what, when,
    why, which request (``request_id``, or the current request's)."""
    from command.models import PersonalDataAccess

    known = getattr(user, "pk", None) is not None
    roles = user_access(user).roles if known and getattr(user, "is_authenticated", False) else ()
    return PersonalDataAccess(
        user=user if known else None,
        username=user.get_username() if known else "",
        role=",".join(roles)[:100],
        channel=channel[:32],
        layer=layer[:32],
        object_ids=[str(i)[:64] for i in object_ids][:10000],
        detail=detail[:200],
        purpose=purpose[:200],
        request_id=(request_id_var.get() if request_id is None else request_id)[:64],
    )


def access_log_write(
    *, user: Any, channel: str, layer: str, object_ids: list[Any], detail: str = "", purpose: str = ""
) -> None:
    """Write one row of the access log (``access_log_row``)."""
    access_log_row(
        user=user, channel=channel, layer=layer, object_ids=object_ids, detail=detail, purpose=purpose
    ).save()


def access_log_write_many(rows: list[Any]) -> None:
    """Write rows of ``access_log_row`` in one statement (the live screens' rows of a heartbeat)."""
    from command.models import PersonalDataAccess

    PersonalDataAccess.objects.bulk_create(rows)


# --- live events: is a feature inside the granted cells? --------------------------------------

AREA_TTL_SECONDS = 30.0
_areas: dict[tuple[int, ...], tuple[float, Any]] = {}


def cells_area(cells: tuple[int, ...]) -> Any:
    """The union of ``cells``' boundaries, prepared for fast tests (cached for AREA_TTL_SECONDS);
    reads the database on a miss (call it from sync code: ``cells_area_warm``)."""
    now = time.monotonic()
    hit = _areas.get(cells)
    if hit is not None and now - hit[0] < AREA_TTL_SECONDS:
        return hit[1]
    from django.contrib.gis.geos import GEOSGeometry

    with connection.cursor() as cursor:
        cursor.execute("SELECT ST_AsEWKB(ST_Union(geom)) FROM command_gridcell WHERE id = ANY(%s)", [list(cells)])
        row = cursor.fetchone()
    area = GEOSGeometry(memoryview(bytes(row[0]))).prepared if row and row[0] is not None else None
    _areas[cells] = (now, area)
    if len(_areas) > 4096:
        _areas.clear()
    return area


def cells_area_warm(grants: dict[str, Any]) -> None:
    """Load the areas of every narrowed grant (sync code, before an event loop needs them)."""
    for grant in grants.values():
        if grant.cells is not None:
            cells_area(grant.cells)


def _cell_field(layer_name: str) -> str | None:
    source = LAYERS[layer_name].source
    cell_sql = getattr(source, "cell_sql", None)
    if cell_sql and cell_sql.startswith("t.") and cell_sql[2:] in LAYERS[layer_name].all_fields:
        return cell_sql[2:]
    return None


def feature_in_cells(layer_name: str, feature: dict[str, Any], cells: tuple[int, ...] | None) -> bool:
    """Does a live event's feature lie in ``cells`` (None: everywhere)? By its cell field when
    the layer declares one among its fields, else by its geometry meeting the cells' area.
    An area not loaded yet (see ``cells_area_warm``) or a feature without either: no."""
    if cells is None:
        return True
    field = _cell_field(layer_name)
    properties = feature.get("properties") or {}
    if field is not None and field in properties:
        return properties[field] in cells
    hit = _areas.get(cells)
    geometry = feature.get("geometry")
    if hit is None or hit[1] is None or not geometry:
        return False
    from django.contrib.gis.geos import GEOSGeometry

    return bool(hit[1].intersects(GEOSGeometry(json.dumps(geometry), srid=4326)))
