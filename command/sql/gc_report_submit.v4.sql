CREATE TYPE gc_report_input AS (
  reporter_id integer,
  from_login boolean,
  content_hash text,
  source text,
  received_at timestamptz,
  client_id uuid,
  category_code text,
  lon double precision,
  lat double precision,
  accuracy_m double precision,
  note text,
  client_time timestamptz
);
CREATE TYPE gc_report_result AS (
  status text,
  reporter_id integer,
  report_id bigint,
  incident_id bigint,
  incident_created boolean,
  grid_cell_id bigint,
  building_id bigint,
  incident_status text,
  team_id bigint,
  worker_id bigint,
  report_count integer,
  due_at timestamptz,
  events jsonb,
  incident jsonb
);

CREATE OR REPLACE FUNCTION gc_report_submit(
  p_in gc_report_input,
  p_group_metres double precision, p_group_window interval, p_building_metres double precision,
  p_with_incident boolean
) RETURNS gc_report_result
LANGUAGE plpgsql VOLATILE
SET "TimeZone" = 'UTC'
AS $fn$
DECLARE
  v_point geometry := ST_SetSRID(ST_MakePoint(p_in.lon, p_in.lat), 4326);
  v_lon_m double precision := 111320.0 * greatest(cos(radians(p_in.lat)), 1e-6);
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
  v_out gc_report_result;
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
    SELECT DISTINCT hashtextextended(format('7001:%s:%s:%s', v_cat.id, gx, gy), 0) AS k
    FROM generate_series(floor((p_in.lon - p_group_metres / v_lon_m) / 0.001)::bigint,
                         floor((p_in.lon + p_group_metres / v_lon_m) / 0.001)::bigint) gx,
         generate_series(floor((p_in.lat - p_group_metres / 110574.0) / 0.001)::bigint,
                         floor((p_in.lat + p_group_metres / 110574.0) / 0.001)::bigint) gy
    ORDER BY k
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;

  v_cell := (SELECT c.id FROM command_gridcell c WHERE c.level = 'cell' AND ST_Covers(c.geom, v_point) ORDER BY c.code LIMIT 1);
  v_building := (SELECT b.id FROM command_building b WHERE b.footprint && ST_Expand(v_point, greatest(1.5 * p_building_metres / v_lon_m, 1.5 * p_building_metres / 110574.0)) AND ST_DWithin(b.footprint::geography, (v_point)::geography, p_building_metres) ORDER BY ST_Distance(b.footprint::geography, (v_point)::geography), b.id LIMIT 1);

  SELECT * INTO v_inc FROM command_incident
  WHERE category_id = v_cat.id AND status IN ('new', 'dispatched', 'accepted', 'on_scene')
    AND last_report_at >= v_now - p_group_window
    AND location && ST_Expand(v_point, greatest(1.5 * p_group_metres / v_lon_m, 1.5 * p_group_metres / 110574.0))
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
            CASE WHEN v_worker IS NULL THEN 'new' ELSE 'dispatched' END,
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
                              grid_cell_id, outside_grid, building_id, incident_id, accuracy_m, note, client_time)
  VALUES (p_in.client_id, p_in.content_hash, p_in.source, p_in.reporter_id, v_cat.id, v_point, v_now,
          v_cell, v_cell IS NULL, v_building, v_inc.id, p_in.accuracy_m, p_in.note, p_in.client_time)
  RETURNING * INTO v_report;

  -- Both events, last: the counter row's lock (commit order = seq order) is held only from here.
  INSERT INTO command_eventcounter (id, last_seq) VALUES (1, 2)
  ON CONFLICT (id) DO UPDATE SET last_seq = command_eventcounter.last_seq + 2
  RETURNING last_seq INTO v_seq;
  v_events := jsonb_build_array(
    jsonb_build_object('seq', v_seq - 1,
                       'kind', CASE WHEN v_created THEN 'incident.created' ELSE 'incident.updated' END,
                       'layer', 'incidents', 'object_id', v_inc.id::text, 'actor_id', p_in.reporter_id,
                       'payload', jsonb_build_object('id', v_inc.id::text, 'geometry', jsonb_build_object('type', 'Point', 'coordinates', jsonb_build_array(ST_X(v_inc.location)::text::numeric, ST_Y(v_inc.location)::text::numeric)), 'properties', jsonb_build_object('id', v_inc.id, 'category_id', v_inc.category_id, 'status', v_inc.status, 'priority', v_inc.priority, 'grid_cell_id', v_inc.grid_cell_id, 'outside_grid', v_inc.outside_grid, 'building_id', v_inc.building_id, 'team_id', v_inc.team_id, 'worker_id', v_inc.worker_id, 'report_count', v_inc.report_count, 'opened_at', (to_char((v_inc.opened_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN date_trunc('second', v_inc.opened_at) = (v_inc.opened_at) THEN '' ELSE to_char((v_inc.opened_at) AT TIME ZONE 'UTC', '.US') END || '+00:00'), 'due_at', (to_char((v_inc.due_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN date_trunc('second', v_inc.due_at) = (v_inc.due_at) THEN '' ELSE to_char((v_inc.due_at) AT TIME ZONE 'UTC', '.US') END || '+00:00'), 'updated_at', (to_char((v_inc.updated_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN date_trunc('second', v_inc.updated_at) = (v_inc.updated_at) THEN '' ELSE to_char((v_inc.updated_at) AT TIME ZONE 'UTC', '.US') END || '+00:00'))), 'created_at', (to_char((v_now) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN date_trunc('second', v_now) = (v_now) THEN '' ELSE to_char((v_now) AT TIME ZONE 'UTC', '.US') END || '+00:00')),
    jsonb_build_object('seq', v_seq, 'kind', 'report.created', 'layer', 'reports',
                       'object_id', v_report.id::text, 'actor_id', p_in.reporter_id,
                       'payload', jsonb_build_object('id', v_report.id::text, 'geometry', jsonb_build_object('type', 'Point', 'coordinates', jsonb_build_array(ST_X(v_report.location)::text::numeric, ST_Y(v_report.location)::text::numeric)), 'properties', jsonb_build_object('id', v_report.id, 'client_id', v_report.client_id, 'category_id', v_report.category_id, 'incident_id', v_report.incident_id, 'grid_cell_id', v_report.grid_cell_id, 'outside_grid', v_report.outside_grid, 'building_id', v_report.building_id, 'received_at', (to_char((v_report.received_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN date_trunc('second', v_report.received_at) = (v_report.received_at) THEN '' ELSE to_char((v_report.received_at) AT TIME ZONE 'UTC', '.US') END || '+00:00'), 'source', v_report.source, 'reporter_id', NULL::bigint, 'note', (CASE WHEN v_report.note IS NULL OR v_report.note = '' THEN v_report.note ELSE '***' END))), 'created_at', (to_char((v_now) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || CASE WHEN date_trunc('second', v_now) = (v_now) THEN '' ELSE to_char((v_now) AT TIME ZONE 'UTC', '.US') END || '+00:00')));
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
$fn$;
