DROP FUNCTION IF EXISTS gc_report_submit(gc_report_input, double precision, interval, double precision, boolean);
DROP TYPE IF EXISTS gc_report_result; DROP TYPE IF EXISTS gc_report_input;
