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
             floor((p.lon - p_group_metres / (111320.0 * greatest(cos(radians(p.lat)), 1e-6))) / 0.001)::bigint AS x0,
             floor((p.lon + p_group_metres / (111320.0 * greatest(cos(radians(p.lat)), 1e-6))) / 0.001)::bigint AS x1,
             floor((p.lat - p_group_metres / 110574.0) / 0.001)::bigint AS y0,
             floor((p.lat + p_group_metres / 110574.0) / 0.001)::bigint AS y1
      FROM unnest(p_category_codes, p_lons, p_lats) AS p(code, lon, lat)
      JOIN command_category c ON c.code = p.code
    )
    SELECT DISTINCT hashtextextended(format('7001:%s:%s:%s', r.category_id, r.x0 + dx, r.y0 + dy), 0) AS k
    FROM r, generate_series(0, 7) dx, generate_series(0, 7) dy
    WHERE r.x0 + dx <= r.x1 AND r.y0 + dy <= r.y1
    ORDER BY k
  LOOP
    PERFORM pg_advisory_xact_lock(v_key);
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION gc_report_submit_batch(
  p_tokens text[], p_reporter_ids integer[], p_category_codes text[], p_client_ids uuid[], p_content_hashes text[],
  p_sources text[], p_lons double precision[], p_lats double precision[], p_accuracies double precision[],
  p_notes text[], p_client_times timestamptz[], p_nows timestamptz[],
  p_group_metres double precision, p_group_window interval, p_building_metres double precision
) RETURNS TABLE (r_status text, r_reporter_id integer, r_report_id bigint, r_incident_id bigint, r_incident_created boolean, r_grid_cell_id bigint, r_building_id bigint, r_incident_status text, r_team_id bigint, r_worker_id bigint, r_report_count integer, r_due_at timestamptz, r_events jsonb, r_incident jsonb)
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
