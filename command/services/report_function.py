"""``gc_report_submit``: the body of ``report_submit`` as one PostgreSQL function.

A report takes one round trip: the grouping locks, the grid cell and the nearest building
(command.selectors' rules), the open incident nearby (locked), routing, the incident insert or
bump, the report insert (the idempotency key's unique index decides), and both events with
their seqs (command.eventlog's counter row, held to commit) — built in PL/pgSQL from the
constants, models and layer fields below. Each statement in the function takes its own
snapshot (READ COMMITTED, a VOLATILE function), so the incident search runs after the locks
are held and sees every incident an earlier holder committed.

The text built here is frozen in versioned files, ``command/sql/<function>.v<N>.sql``, which the
migrations run (a migration never imports this module: replaying it gives what it gave then).
tests/command/test_report_function.py checks that the newest file equals what this module builds
(a change here is a diff there: freeze it as version N+1 with a migration that runs it), that
the database holds it, and that its event payloads equal ``command.features``' for the same
objects.
"""

from __future__ import annotations

from django.db.models import DateTimeField

from command.geometry import METRES_PER_DEGREE_LAT, METRES_PER_DEGREE_LON_EQUATOR
from command.layers import LAYERS
from command.models import Incident, Report
from command.selectors import BUILDING_NEAR_POINT_SQL, CELL_FOR_POINT_SQL

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
    """A GeoJSON feature of ``row`` as command.features builds it: every field of the layer
    (redaction happens per viewer), coordinates as exact as the stored doubles."""
    model = {"incidents": Incident, "reports": Report}[layer]
    fields = (*LAYERS[layer].public_fields, *LAYERS[layer].sensitive_fields)

    def value(name: str) -> str:
        if isinstance(model._meta.get_field(name), DateTimeField):
            return _iso(f"{row}.{name}")
        return f"{row}.{name}"

    properties = ", ".join(f"'{name}', {value(name)}" for name in fields)
    return (
        f"jsonb_build_object('id', {row}.id::text, 'geometry', jsonb_build_object('type', 'Point', "
        f"'coordinates', jsonb_build_array(ST_X({row}.location)::text::numeric, ST_Y({row}.location)::text::numeric)), "
        f"'properties', jsonb_build_object({properties}))"
    )


_OUT = (
    "r_status text, r_reporter_id integer, r_report_id bigint, r_incident_id bigint, r_incident_created boolean, "
    "r_grid_cell_id bigint, r_building_id bigint, r_incident_status text, r_team_id bigint, r_worker_id bigint, "
    "r_report_count integer, r_due_at timestamptz, r_events jsonb, r_incident jsonb"
)
_REFUSED = "NULL::integer, NULL::bigint, NULL::bigint, NULL::boolean, NULL::bigint, NULL::bigint, NULL::text, " + (
    "NULL::bigint, NULL::bigint, NULL::integer, NULL::timestamptz, NULL::jsonb, NULL::jsonb"
)

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


_GROUP_EXPAND = f"greatest(1.5 * p_group_metres / v_lon_m, 1.5 * p_group_metres / {_LAT_M})"
_OPEN = ", ".join(f"'{status}'" for status in Incident.OPEN_STATUSES)

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION gc_report_submit(
  p_token text, p_reporter_id integer, p_category_code text, p_client_id uuid, p_content_hash text,
  p_source text, p_lon double precision, p_lat double precision, p_accuracy double precision,
  p_note text, p_client_time timestamptz, p_now timestamptz,
  p_group_metres double precision, p_group_window interval, p_building_metres double precision
) RETURNS TABLE ({_OUT})
LANGUAGE plpgsql VOLATILE
SET "TimeZone" = 'UTC'
AS $fn$
DECLARE
  v_point geometry := ST_SetSRID(ST_MakePoint(p_lon, p_lat), 4326);
  v_lon_m double precision := {_LON_M} * greatest(cos(radians(p_lat)), 1e-6);
  v_reporter integer := p_reporter_id;
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
BEGIN
  IF p_token IS NOT NULL THEN  -- the lean HTTP path: the token is checked in this same statement
    SELECT u.id INTO v_reporter FROM auth_user u JOIN authtoken_token t ON t.user_id = u.id
    WHERE t.key = p_token AND u.is_active;
    IF v_reporter IS NULL THEN
      RETURN QUERY SELECT 'unauthorized'::text, {_REFUSED};
      RETURN;
    END IF;
  END IF;
  SELECT * INTO v_cat FROM command_category WHERE code = p_category_code;
  IF NOT FOUND THEN
    RETURN QUERY SELECT 'unknown_category'::text, {_REFUSED};
    RETURN;
  END IF;

  -- Serialise grouping nearby, so two simultaneous reports of one event open one incident.
  FOR v_key IN
    {_group_keys("v_cat.id", "p_lon", "p_lat", "p_group_metres", "v_lon_m")}
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;

  v_cell := ({CELL_FOR_POINT_SQL.format(point="v_point")});
  v_building := ({_BUILDING_SQL});

  SELECT * INTO v_inc FROM command_incident
  WHERE category_id = v_cat.id AND status IN ({_OPEN})
    AND last_report_at >= p_now - p_group_window
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
            left(p_note, 500), '', p_now, p_now, p_now + make_interval(mins => v_cat.sla_minutes),
            CASE WHEN v_worker IS NULL THEN NULL ELSE p_now END, p_now)
    RETURNING * INTO v_inc;
  ELSE
    UPDATE command_incident SET report_count = report_count + 1, last_report_at = greatest(last_report_at, p_now),
                                updated_at = p_now
    WHERE id = v_inc.id
    RETURNING * INTO v_inc;
  END IF;

  -- A reused client id fails here, on the unique index, and the whole statement rolls back. A
  -- concurrent retry of the same id waits here until the first commits, then fails.
  INSERT INTO command_report (client_id, content_hash, source, reporter_id, category_id, location, accuracy_m, note,
                              client_time, received_at, grid_cell_id, outside_grid, building_id, incident_id)
  VALUES (p_client_id, p_content_hash, p_source, v_reporter, v_cat.id, v_point, p_accuracy, p_note, p_client_time,
          p_now, v_cell, v_cell IS NULL, v_building, v_inc.id)
  RETURNING * INTO v_report;

  -- Both events, last: the counter row's lock (commit order = seq order) is held only from here.
  INSERT INTO command_eventcounter (id, last_seq) VALUES (1, 2)
  ON CONFLICT (id) DO UPDATE SET last_seq = command_eventcounter.last_seq + 2
  RETURNING last_seq INTO v_seq;
  v_events := jsonb_build_array(
    jsonb_build_object('seq', v_seq - 1,
                       'kind', CASE WHEN v_created THEN 'incident.created' ELSE 'incident.updated' END,
                       'layer', 'incidents', 'object_id', v_inc.id::text, 'actor_id', v_reporter,
                       'payload', {_feature("v_inc", "incidents")}, 'created_at', {_iso("p_now")}),
    jsonb_build_object('seq', v_seq, 'kind', 'report.created', 'layer', 'reports',
                       'object_id', v_report.id::text, 'actor_id', v_reporter,
                       'payload', {_feature("v_report", "reports")}, 'created_at', {_iso("p_now")}));
  INSERT INTO command_event (seq, kind, layer, object_id, actor_id, payload, created_at)
  SELECT (e->>'seq')::bigint, e->>'kind', e->>'layer', e->>'object_id', (e->>'actor_id')::integer, e->'payload', p_now
  FROM jsonb_array_elements(v_events) e;

  RETURN QUERY SELECT 'created'::text, v_reporter, v_report.id, v_inc.id, v_created, v_cell, v_building,
                      v_inc.status::text, v_inc.team_id, v_inc.worker_id, v_inc.report_count::integer,
                      v_inc.due_at, v_events,
                      CASE WHEN p_token IS NULL THEN to_jsonb(v_inc) END;  -- the service's callers only
END
$fn$
"""  # noqa: S608 - DDL built from constants of this module, the models and command.selectors

DROP_SQL = "DROP FUNCTION IF EXISTS gc_report_submit(text, integer, text, uuid, text, text, double precision, " + (
    "double precision, double precision, text, timestamptz, timestamptz, double precision, interval, double precision)"
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
  p_tokens text[], p_reporter_ids integer[], p_category_codes text[], p_client_ids uuid[], p_content_hashes text[],
  p_sources text[], p_lons double precision[], p_lats double precision[], p_accuracies double precision[],
  p_notes text[], p_client_times timestamptz[], p_nows timestamptz[],
  p_group_metres double precision, p_group_window interval, p_building_metres double precision
) RETURNS TABLE ({_OUT})
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
  PERFORM gc_report_group_locks(p_category_codes, p_lons, p_lats, p_group_metres);
  PERFORM set_config('lock_timeout',
    greatest(round(extract(epoch FROM current_setting('deadlock_timeout')::interval) * 250), 1)::bigint::text, true);
  FOR i IN 1 .. coalesce(array_length(p_client_ids, 1), 0) LOOP
    RETURN QUERY SELECT * FROM gc_report_submit(
      p_tokens[i], p_reporter_ids[i], p_category_codes[i], p_client_ids[i], p_content_hashes[i], p_sources[i],
      p_lons[i], p_lats[i], p_accuracies[i], p_notes[i], p_client_times[i], p_nows[i],
      p_group_metres, p_group_window, p_building_metres);
  END LOOP;
END
$fn$;
"""  # noqa: S608 - DDL built from constants of this module

BATCH_DROP_SQL = (
    "DROP FUNCTION IF EXISTS gc_report_submit_batch(text[], integer[], text[], uuid[], text[], text[], "
    "double precision[], double precision[], double precision[], text[], timestamptz[], timestamptz[], "
    "double precision, interval, double precision); "
    "DROP FUNCTION IF EXISTS gc_report_group_locks(text[], double precision[], double precision[], double precision)"
)
