DROP FUNCTION IF EXISTS gc_alarm_receive(gc_alarm_input, gc_report_input, double precision, interval, double precision);
DROP TYPE IF EXISTS gc_alarm_result; DROP TYPE IF EXISTS gc_alarm_input;
