CREATE TYPE gc_alarm_input AS (
  device_id bigint,
  secret text,
  seen_status text,
  seen_battery integer,
  signature text,
  sent_at bigint,
  kind text,
  battery integer,
  status text,
  received_at timestamptz,
  device_event jsonb
);
CREATE TYPE gc_alarm_result AS (
  status text,
  report_id bigint,
  incident_id bigint,
  events jsonb,
  device_seq bigint
);

CREATE OR REPLACE FUNCTION gc_alarm_receive(
  p_in gc_alarm_input, p_report gc_report_input,
  p_group_metres double precision, p_group_window interval, p_building_metres double precision
) RETURNS gc_alarm_result
LANGUAGE plpgsql VOLATILE
SET "TimeZone" = 'UTC'
AS $fn$
DECLARE
  v_dev command_alarmdevice%ROWTYPE;
  v_report gc_report_result;
  v_seq bigint;
  v_out gc_alarm_result;
BEGIN
  SELECT * INTO v_dev FROM command_alarmdevice WHERE id = p_in.device_id FOR UPDATE;
  IF NOT FOUND OR v_dev.revoked_at IS NOT NULL OR v_dev.secret <> p_in.secret
     OR v_dev.status <> p_in.seen_status OR v_dev.battery IS DISTINCT FROM p_in.seen_battery THEN
    v_out.status := 'changed';
    RETURN v_out;
  END IF;
  INSERT INTO command_alarmsignatureseen (device_id, signature, timestamp, received_at)
  VALUES (p_in.device_id, p_in.signature, p_in.sent_at, p_in.received_at)
  ON CONFLICT ON CONSTRAINT alarmsignature_once DO NOTHING;
  IF NOT FOUND THEN
    v_out.status := 'replay';
    RETURN v_out;
  END IF;

  IF p_in.kind = 'alarm' THEN
    v_report := gc_report_submit(p_report, p_group_metres, p_group_window, p_building_metres, false);
    IF v_report.status <> 'created' THEN  -- the category of the device's kind is missing: nothing stays
      RAISE EXCEPTION 'gc_alarm_receive: the alarm''s report was not taken (%)', v_report.status;
    END IF;
    INSERT INTO command_alarmevent (device_id, kind, received_at, device_time, report_id)
    VALUES (v_dev.id, v_dev.kind, p_in.received_at, to_timestamp(p_in.sent_at), v_report.report_id);
    v_out.report_id := v_report.report_id;
    v_out.incident_id := v_report.incident_id;
    v_out.events := v_report.events;
  END IF;

  UPDATE command_alarmdevice SET last_heartbeat_at = p_in.received_at, battery = coalesce(p_in.battery, battery),
                       status = p_in.status,
                       last_alarm_at = CASE WHEN p_in.kind = 'alarm' THEN p_in.received_at ELSE last_alarm_at END
  WHERE id = v_dev.id;

  IF p_in.status <> v_dev.status THEN
    INSERT INTO command_eventcounter (id, last_seq) VALUES (1, 1)
    ON CONFLICT (id) DO UPDATE SET last_seq = command_eventcounter.last_seq + 1
    RETURNING last_seq INTO v_seq;
    INSERT INTO command_event (seq, kind, layer, object_id, actor_id, payload, created_at)
    VALUES (v_seq, 'alarm_device.updated', 'alarm_devices', v_dev.id::text, NULL, p_in.device_event, p_in.received_at);
    v_out.device_seq := v_seq;
  END IF;
  v_out.status := 'taken';
  RETURN v_out;
END
$fn$;
