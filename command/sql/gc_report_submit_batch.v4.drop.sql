DROP FUNCTION IF EXISTS gc_report_submit_batch(gc_report_input[], double precision, interval, double precision);
DROP FUNCTION IF EXISTS gc_report_group_locks(text[], double precision[], double precision[], double precision);
