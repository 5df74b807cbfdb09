"""gc_report_submit again (command/services/report_function.py): the whole incident row is
returned only to the service's callers, not on the lean path (to_jsonb of the row looked the
geometry's SRS up in spatial_ref_sys on every report, 0.13 ms of 0.85)."""

from django.db import migrations

from command.services.report_function import FUNCTION_SQL


class Migration(migrations.Migration):
    dependencies = [("command", "0005_report_submit_function")]

    operations = [migrations.RunSQL(FUNCTION_SQL, reverse_sql=migrations.RunSQL.noop)]
