"""gc_report_submit again (command/services/report_function.py): the whole incident row is
returned only to the service's callers, not on the lean path (to_jsonb of the row looked the
geometry's SRS up in spatial_ref_sys on every report, 0.13 ms of 0.85)."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parents[1] / "sql"  # versioned, frozen: never edited after release


class Migration(migrations.Migration):
    dependencies = [("command", "0005_report_submit_function")]

    operations = [migrations.RunSQL((SQL / "gc_report_submit.v1.sql").read_text(), reverse_sql=migrations.RunSQL.noop)]
