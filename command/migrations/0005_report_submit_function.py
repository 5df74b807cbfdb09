"""The report write as one database function (command/services/report_function.py): a phone's
report costs one round trip instead of six."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parents[1] / "sql"  # versioned, frozen: never edited after release


class Migration(migrations.Migration):
    dependencies = [("command", "0004_device_token"), ("authtoken", "0001_initial")]

    operations = [migrations.RunSQL(
            (SQL / "gc_report_submit.v1.sql").read_text(), reverse_sql=(SQL / "gc_report_submit.v1.drop.sql").read_text()
        )]
