"""``gc_report_submit``: the body of ``report_submit`` as one PostgreSQL function.

A report takes one round trip: the grouping locks, the grid cell and the nearest building
(command.selectors' rules), the open incident nearby (locked), routing, the incident insert or
bump, the report insert (the idempotency key's unique index decides), and both events with
their seqs (command.eventlog's counter row, held to commit) — built in PL/pgSQL from the
constants, models and layer fields below. Each statement in the function takes its own
snapshot (READ COMMITTED, a VOLATILE function), so the incident search runs after the locks
are held and sees every incident an earlier holder committed. Its input and result are the
composite types of command/services/report_rows.py's two dataclasses; the reporter comes as a
user id (the lean path's statement looks its token up, command.logins' rule).

The text built here is frozen in versioned files, ``command/sql/<function>.v<N>.sql``, which the
migrations run (a migration never imports this module: replaying it gives what it gave then).
tests/command/test_report_function.py checks that the newest file equals what this module builds
(a change here is a diff there: freeze it as version N+1 with a migration that runs it), that
the database holds it, and that its event payloads equal ``command.features``' for the same
objects.
"""

from __future__ import annotations

from django.db.models import DateTimeField

from command.eventlog import seq_take_sql
from command.geometry import METRES_PER_DEGREE_LAT, METRES_PER_DEGREE_LON_EQUATOR
from command.layers import LAYERS, masked_sql
from command.models import Incident, Report
from command.report_input import REPORT_INPUT
from command.selectors import BUILDING_NEAR_POINT_SQL, CELL_FOR_POINT_SQL
from command.services.report_rows import INPUT_TYPE, RESULT_TYPE, SubmitInput, SubmitRow, sql_attributes

# Grouping is serialised per category and ~100 m square: a report takes the advisory locks of
# every square its grouping disk touches (in key order, so two reports never deadlock). Two
# reports that could join one incident share the square of that incident's location, so they
# serialise; reports far apart or of other categories run side by side.
GROUPING_LOCK_KEY = 7001
GROUPING_SQUARE_DEG = 0.001


def _iso(expr: str) -> str:
    """A timestamptz as Python's ``isoformat()`` writes an aware UTC datetime (the microseconds
    only when not zero, all six digits), as command.features and command.eventlog do."""
    utc = f"({expr}) AT TIME ZONE 'UTC'"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', {expr}) = ({expr}) "
        f"THEN '' ELSE to_char({utc}, '.US') END || '+00:00')"
    )


def _feature(row: str, layer: str) -> str:
    """A GeoJSON feature of ``row`` as command.features builds it: every field of the layer,
    personal data masked, coordinates as exact as the stored doubles."""
    model = {"incidents": Incident, "reports": Report}[layer]
    fields = LAYERS[layer].all_fields

    def value(name: str) -> str:
        if isinstance(model._meta.get_field(name), DateTimeField):
            return _iso(f"{row}.{name}")
        field = next(f for f in LAYERS[layer].fields if f.name == name)
        if field.sensitive:  # the event log holds personal data masked (command/eventlog.py)
            return masked_sql(f"{row}.{name}", field)
        return f"{row}.{name}"

    properties = ", ".join(f"'{name}', {value(name)}" for name in fields)
    return (
        f"jsonb_build_object('id', {row}.id::text, 'geometry', jsonb_build_object('type', 'Point', "
        f"'coordinates', jsonb_build_array(ST_X({row}.location)::text::numeric, ST_Y({row}.location)::text::numeric)), "
        f"'properties', jsonb_build_object({properties}))"
    )


def _type(name: str, shape: type) -> str:
    attributes = ",\n  ".join(f"{n} {kind}" for n, kind in sql_attributes(shape))
    return f"CREATE TYPE {name} AS (\n  {attributes}\n);"


TYPES_SQL = _type(INPUT_TYPE, SubmitInput) + "\n" + _type(RESULT_TYPE, SubmitRow)
TYPES_DROP_SQL = f"DROP TYPE IF EXISTS {RESULT_TYPE}; DROP TYPE IF EXISTS {INPUT_TYPE};"

_LAT_M = repr(METRES_PER_DEGREE_LAT)
_LON_M = repr(METRES_PER_DEGREE_LON_EQUATOR)
# 1.5 x the distance in degrees at the point's latitude: the bbox pre-filter for the GiST index.
_BUILDING_SQL = BUILDING_NEAR_POINT_SQL.format(
    point="v_point",
    expand=f"greatest(1.5 * p_building_metres / v_lon_m, 1.5 * p_building_metres / {_LAT_M})",
    metres="p_building_metres",
)


def _group_key(category_id: str, gx: str, gy: str) -> str:
    """The advisory lock key of one ~100 m square of one category (see GROUPING_LOCK_KEY)."""
    return f"hashtextextended(format('{GROUPING_LOCK_KEY}:%s:%s:%s', {category_id}, {gx}, {gy}), 0)"


def _square(coord: str, sign: str, metres: str, per_degree: str) -> str:
    """The square index of ``coord`` moved ``metres`` towards ``sign``."""
    return f"floor(({coord} {sign} {metres} / {per_degree}) / {GROUPING_SQUARE_DEG})::bigint"


def _group_keys(category_id: str, lon: str, lat: str, metres: str, lon_m: str) -> str:
    """The grouping lock keys of one report, in key order."""
    return f"""SELECT DISTINCT {_group_key(category_id, "gx", "gy")} AS k
    FROM generate_series({_square(lon, "-", metres, lon_m)},
                         {_square(lon, "+", metres, lon_m)}) gx,
         generate_series({_square(lat, "-", metres, _LAT_M)},
                         {_square(lat, "+", metres, _LAT_M)}) gy
    ORDER BY k"""  # noqa: S608 - SQL text from constants and the callers' column names


# The values a report carries as sent (command/report_input.py), stored as they came.
_VALUE_COLUMNS = ", ".join(value.column for value in REPORT_INPUT)
_VALUE_INPUTS = ", ".join(f"p_in.{value.column}" for value in REPORT_INPUT)
_GROUP_EXPAND = f"greatest(1.5 * p_group_metres / v_lon_m, 1.5 * p_group_metres / {_LAT_M})"
_OPEN = ", ".join(f"'{status}'" for status in Incident.OPEN_STATUSES)

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION gc_report_submit(
  p_in {INPUT_TYPE},
  p_group_metres double precision, p_group_window interval, p_building_metres double precision,
  p_with_incident boolean
) RETURNS {RESULT_TYPE}
LANGUAGE plpgsql VOLATILE
SET "TimeZone" = 'UTC'
AS $fn$
DECLARE
  v_point geometry := ST_SetSRID(ST_MakePoint(p_in.lon, p_in.lat), 4326);
  v_lon_m double precision := {_LON_M} * greatest(cos(radians(p_in.lat)), 1e-6);
  v_now timestamptz := p_in.received_at;
  v_cat command_category%ROWTYPE;
  v_key bigint;
  v_cell bigint;
  v_building bigint;
  v_inc command_incident%ROWTYPE;
  v_created boolean;
  v_worker bigint;
  v_report command_report%ROWTYPE;
  v_seq bigint;
  v_events jsonb;
  v_out {RESULT_TYPE};
BEGIN
  IF p_in.from_login AND p_in.reporter_id IS NULL THEN  -- the login's token named no active user
    v_out.status := 'unauthorized';
    RETURN v_out;
  END IF;
  SELECT * INTO v_cat FROM command_category WHERE code = p_in.category_code;
  IF NOT FOUND THEN
    v_out.status := 'unknown_category';
    RETURN v_out;
  END IF;

  -- Serialise grouping nearby, so two simultaneous reports of one event open one incident.
  FOR v_key IN
    {_group_keys("v_cat.id", "p_in.lon", "p_in.lat", "p_group_metres", "v_lon_m")}
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;

  v_cell := ({CELL_FOR_POINT_SQL.format(point="v_point")});
  v_building := ({_BUILDING_SQL});

  SELECT * INTO v_inc FROM command_incident
  WHERE category_id = v_cat.id AND status IN ({_OPEN})
    AND last_report_at >= v_now - p_group_window
    AND location && ST_Expand(v_point, {_GROUP_EXPAND})
    AND ST_DWithin(location::geography, v_point::geography, p_group_metres)
  ORDER BY location <-> v_point, id
  LIMIT 1
  FOR UPDATE;
  v_created := NOT FOUND;

  IF v_created THEN
    -- The cell's own on-duty workers of the team first, nearest first; then any on-duty worker
    -- of the team, nearest first (KNN on the last known position).
    SELECT w.id INTO v_worker FROM command_worker w
    WHERE w.team_id = v_cat.default_team_id AND w.on_duty
    ORDER BY (v_cell IS NOT NULL AND EXISTS (
                SELECT 1 FROM command_worker_cells wc WHERE wc.worker_id = w.id AND wc.gridcell_id = v_cell)) DESC,
             w.last_position IS NULL, w.last_position <-> v_point, w.id
    LIMIT 1;
    INSERT INTO command_incident (category_id, status, priority, location, grid_cell_id, outside_grid, building_id,
                                  team_id, worker_id, report_count, note, resolution_note, opened_at, last_report_at,
                                  due_at, dispatched_at, updated_at)
    VALUES (v_cat.id,
            CASE WHEN v_worker IS NULL THEN '{Incident.Status.NEW.value}' ELSE '{Incident.Status.DISPATCHED.value}' END,
            v_cat.priority, v_point, v_cell, v_cell IS NULL, v_building, v_cat.default_team_id, v_worker, 1,
            left(p_in.note, 500), '', v_now, v_now, v_now + make_interval(mins => v_cat.sla_minutes),
            CASE WHEN v_worker IS NULL THEN NULL ELSE v_now END, v_now)
    RETURNING * INTO v_inc;
  ELSE
    UPDATE command_incident SET report_count = report_count + 1, last_report_at = greatest(last_report_at, v_now),
                                updated_at = v_now
    WHERE id = v_inc.id
    RETURNING * INTO v_inc;
  END IF;

  -- A reused client id fails here, on the unique index, and the whole statement rolls back. A
  -- concurrent retry of the same id waits here until the first commits, then fails.
  INSERT INTO command_report (client_id, content_hash, source, reporter_id, category_id, location, received_at,
                              grid_cell_id, outside_grid, building_id, incident_id, {_VALUE_COLUMNS})
  VALUES (p_in.client_id, p_in.content_hash, p_in.source, p_in.reporter_id, v_cat.id, v_point, v_now,
          v_cell, v_cell IS NULL, v_building, v_inc.id, {_VALUE_INPUTS})
  RETURNING * INTO v_report;

  -- Both events, last: the counter row's lock (commit order = seq order) is held only from here.
  {seq_take_sql(2)}
  RETURNING last_seq INTO v_seq;
  v_events := jsonb_build_array(
    jsonb_build_object('seq', v_seq - 1,
                       'kind', CASE WHEN v_created THEN 'incident.created' ELSE 'incident.updated' END,
                       'layer', 'incidents', 'object_id', v_inc.id::text, 'actor_id', p_in.reporter_id,
                       'payload', {_feature("v_inc", "incidents")}, 'created_at', {_iso("v_now")}),
    jsonb_build_object('seq', v_seq, 'kind', 'report.created', 'layer', 'reports',
                       'object_id', v_report.id::text, 'actor_id', p_in.reporter_id,
                       'payload', {_feature("v_report", "reports")}, 'created_at', {_iso("v_now")}));
  INSERT INTO command_event (seq, kind, layer, object_id, actor_id, payload, created_at)
  SELECT (e->>'seq')::bigint, e->>'kind', e->>'layer', e->>'object_id', (e->>'actor_id')::integer, e->'payload', v_now
  FROM jsonb_array_elements(v_events) e;

  v_out.status := 'created';
  v_out.reporter_id := p_in.reporter_id;
  v_out.report_id := v_report.id;
  v_out.incident_id := v_inc.id;
  v_out.incident_created := v_created;
  v_out.grid_cell_id := v_cell;
  v_out.building_id := v_building;
  v_out.incident_status := v_inc.status;
  v_out.team_id := v_inc.team_id;
  v_out.worker_id := v_inc.worker_id;
  v_out.report_count := v_inc.report_count;
  v_out.due_at := v_inc.due_at;
  v_out.events := v_events;
  v_out.incident := CASE WHEN p_with_incident THEN to_jsonb(v_inc) END;
  RETURN v_out;
END
$fn$
"""  # noqa: S608 - DDL built from constants of this module, the models and command.selectors

DROP_SQL = (
    f"DROP FUNCTION IF EXISTS gc_report_submit({INPUT_TYPE}, double precision, interval, double precision, boolean);\n"
    + TYPES_DROP_SQL
)


# A batch (command.services.reports._Batcher) is one statement: gc_report_submit_batch calls
# gc_report_submit for each report, in order, in one transaction, so it holds the event counter's
# row from its first report's events to its commit. Waiting then for a lock held by a single
# report that itself waits for the counter would be a deadlock, and PostgreSQL might abort the
# single report. So the batch first takes the grouping locks of all its reports at once, in key
# order (gc_report_group_locks); and every later lock wait of the batch (an incident row held by
# someone who waits for the counter) is cut at a quarter of deadlock_timeout, which rolls the
# batch back before PostgreSQL's deadlock check could choose the other side; its reports then go
# again one by one. The squares come from a fixed series of BATCH_SQUARES a side (a report's disk
# spans at most 3 below 60 degrees of latitude; beyond 8 a key is missed and the lock timeout
# still ends the wait): with generate_series between computed bounds the planner expected 10^6
# squares per report, sized its hash tables for them and JIT-compiled (200 ms for 0.2 ms of work).
BATCH_SQUARES = 8
_LON_M_AT = f"({_LON_M} * greatest(cos(radians(p.lat)), 1e-6))"
GROUP_LOCKS_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION gc_report_group_locks(
  p_category_codes text[], p_lons double precision[], p_lats double precision[], p_group_metres double precision
) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
  v_key bigint;
BEGIN
  FOR v_key IN
    WITH r AS (
      SELECT c.id AS category_id,
             {_square("p.lon", "-", "p_group_metres", _LON_M_AT)} AS x0,
             {_square("p.lon", "+", "p_group_metres", _LON_M_AT)} AS x1,
             {_square("p.lat", "-", "p_group_metres", _LAT_M)} AS y0,
             {_square("p.lat", "+", "p_group_metres", _LAT_M)} AS y1
      FROM unnest(p_category_codes, p_lons, p_lats) AS p(code, lon, lat)
      JOIN command_category c ON c.code = p.code
    )
    SELECT DISTINCT {_group_key("r.category_id", "r.x0 + dx", "r.y0 + dy")} AS k
    FROM r, generate_series(0, {BATCH_SQUARES - 1}) dx, generate_series(0, {BATCH_SQUARES - 1}) dy
    WHERE r.x0 + dx <= r.x1 AND r.y0 + dy <= r.y1
    ORDER BY k
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;
END
$fn$;
"""  # noqa: S608 - DDL built from constants of this module

BATCH_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION gc_report_submit_batch(
  p_in {INPUT_TYPE}[],
  p_group_metres double precision, p_group_window interval, p_building_metres double precision
) RETURNS SETOF {RESULT_TYPE}
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
  v_out {RESULT_TYPE};
BEGIN
  PERFORM gc_report_group_locks(ARRAY(SELECT r.category_code FROM unnest(p_in) r),
                                ARRAY(SELECT r.lon FROM unnest(p_in) r),
                                ARRAY(SELECT r.lat FROM unnest(p_in) r), p_group_metres);
  PERFORM set_config('lock_timeout',
    greatest(round(extract(epoch FROM current_setting('deadlock_timeout')::interval) * 250), 1)::bigint::text, true);
  FOR i IN 1 .. coalesce(array_length(p_in, 1), 0) LOOP
    v_out := gc_report_submit(p_in[i], p_group_metres, p_group_window, p_building_metres, false);
    RETURN NEXT v_out;
  END LOOP;
END
$fn$;
"""  # noqa: S608 - DDL built from constants of this module

BATCH_DROP_SQL = (
    f"DROP FUNCTION IF EXISTS gc_report_submit_batch({INPUT_TYPE}[], double precision, interval, double precision);\n"
    "DROP FUNCTION IF EXISTS gc_report_group_locks(text[], double precision[], double precision[], double precision);"
)

# The frozen files' text (command/sql/<function>.v<N>.sql): what the newest version must equal.
SUBMIT_FILE_SQL = TYPES_SQL + "\n\n" + FUNCTION_SQL.strip() + ";\n"
SUBMIT_DROP_FILE_SQL = DROP_SQL + "\n"
BATCH_FILE_SQL = GROUP_LOCKS_FUNCTION_SQL.strip() + "\n\n" + BATCH_FUNCTION_SQL.strip() + "\n"
BATCH_DROP_FILE_SQL = BATCH_DROP_SQL + "\n"
