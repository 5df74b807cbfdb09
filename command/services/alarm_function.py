"""``gc_alarm_receive``: the write of one checked alarm webhook call as one PostgreSQL function.

Both paths call it (command/services/alarms.py: Django's view and the lean path on the event
loop), with the call checked in Python first (the signature, the timestamp window, the body) and
the device's event built there (command.features). In one transaction it locks the device and
refuses ('changed') when the row is not what the caller read; stores the signature (a replay:
'replay', nothing written); for an alarm submits its report with ``gc_report_submit`` (the
incident, routing, the report and both events, as a phone's report) and records the AlarmEvent;
updates the device; and appends the device's ``alarm_device.updated`` when its status changed,
last, with the next seq of the event counter (whose row lock the report's events already hold).

Its input and result are the composite types of alarms.py's ``AlarmInput`` and ``AlarmRow``;
the text is frozen in ``command/sql/gc_alarm_receive.v<N>.sql`` (``manage.py report_sql_freeze``
freezes it with the report's functions; tests/residents/test_alarms_fast.py checks the newest file
equals what this module builds).
"""

from __future__ import annotations

from command.eventlog import seq_take_sql
from command.models import AlarmDevice, AlarmEvent, AlarmSignatureSeen, Event
from command.services.alarms import ALARM_INPUT_TYPE, ALARM_RESULT_TYPE, DEVICE_EVENT, AlarmInput, AlarmRow
from command.services.report_function import _type
from command.services.report_rows import INPUT_TYPE, RESULT_TYPE

_DEVICE = AlarmDevice._meta.db_table
_SEEN = AlarmSignatureSeen._meta.db_table
_ALARM_EVENT = AlarmEvent._meta.db_table
_EVENT = Event._meta.db_table
_SEEN_ONCE = "alarmsignature_once"  # AlarmSignatureSeen.Meta: unique (device, signature)
assert any(c.name == _SEEN_ONCE for c in AlarmSignatureSeen._meta.constraints)

TYPES_SQL = _type(ALARM_INPUT_TYPE, AlarmInput) + "\n" + _type(ALARM_RESULT_TYPE, AlarmRow)

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION gc_alarm_receive(
  p_in {ALARM_INPUT_TYPE}, p_report {INPUT_TYPE},
  p_group_metres double precision, p_group_window interval, p_building_metres double precision
) RETURNS {ALARM_RESULT_TYPE}
LANGUAGE plpgsql VOLATILE
SET "TimeZone" = 'UTC'
AS $fn$
DECLARE
  v_dev {_DEVICE}%ROWTYPE;
  v_report {RESULT_TYPE};
  v_seq bigint;
  v_out {ALARM_RESULT_TYPE};
BEGIN
  SELECT * INTO v_dev FROM {_DEVICE} WHERE id = p_in.device_id FOR UPDATE;
  IF NOT FOUND OR v_dev.revoked_at IS NOT NULL OR v_dev.secret <> p_in.secret
     OR v_dev.status <> p_in.seen_status OR v_dev.battery IS DISTINCT FROM p_in.seen_battery THEN
    v_out.status := 'changed';
    RETURN v_out;
  END IF;
  INSERT INTO {_SEEN} (device_id, signature, timestamp, received_at)
  VALUES (p_in.device_id, p_in.signature, p_in.sent_at, p_in.received_at)
  ON CONFLICT ON CONSTRAINT {_SEEN_ONCE} DO NOTHING;
  IF NOT FOUND THEN
    v_out.status := 'replay';
    RETURN v_out;
  END IF;

  IF p_in.kind = 'alarm' THEN
    v_report := gc_report_submit(p_report, p_group_metres, p_group_window, p_building_metres, false);
    IF v_report.status <> 'created' THEN  -- the category of the device's kind is missing: nothing stays
      RAISE EXCEPTION 'gc_alarm_receive: the alarm''s report was not taken (%)', v_report.status;
    END IF;
    INSERT INTO {_ALARM_EVENT} (device_id, kind, received_at, device_time, report_id)
    VALUES (v_dev.id, v_dev.kind, p_in.received_at, to_timestamp(p_in.sent_at), v_report.report_id);
    v_out.report_id := v_report.report_id;
    v_out.incident_id := v_report.incident_id;
    v_out.events := v_report.events;
  END IF;

  UPDATE {_DEVICE} SET last_heartbeat_at = p_in.received_at, battery = coalesce(p_in.battery, battery),
                       status = p_in.status,
                       last_alarm_at = CASE WHEN p_in.kind = 'alarm' THEN p_in.received_at ELSE last_alarm_at END
  WHERE id = v_dev.id;

  IF p_in.status <> v_dev.status THEN
    {seq_take_sql(1, indent="    ")}
    RETURNING last_seq INTO v_seq;
    INSERT INTO {_EVENT} (seq, kind, layer, object_id, actor_id, payload, created_at)
    VALUES (v_seq, '{DEVICE_EVENT}', 'alarm_devices', v_dev.id::text, NULL, p_in.device_event, p_in.received_at);
    v_out.device_seq := v_seq;
  END IF;
  v_out.status := 'taken';
  RETURN v_out;
END
$fn$
"""  # noqa: S608 - DDL built from constants, the models and the declared shapes

DROP_SQL = (
    f"DROP FUNCTION IF EXISTS gc_alarm_receive({ALARM_INPUT_TYPE}, {INPUT_TYPE}, double precision, interval, "
    f"double precision);\nDROP TYPE IF EXISTS {ALARM_RESULT_TYPE}; DROP TYPE IF EXISTS {ALARM_INPUT_TYPE};"
)

# The frozen files' text (command/sql/gc_alarm_receive.v<N>.sql): what the newest version must equal.
RECEIVE_FILE_SQL = TYPES_SQL + "\n\n" + FUNCTION_SQL.strip() + ";\n"
RECEIVE_DROP_FILE_SQL = DROP_SQL + "\n"
