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
  p_in gc_report_input[],
  p_group_metres double precision, p_group_window interval, p_building_metres double precision
) RETURNS SETOF gc_report_result
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
  v_out gc_report_result;
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
