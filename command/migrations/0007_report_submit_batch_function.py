"""gc_report_submit_batch and gc_report_group_locks (command/services/report_function.py): a
batch of reports as one statement, its grouping locks taken first in key order, so a batch never
waits for a lock while it holds the event counter (a deadlock with a single report)."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parents[1] / "sql"  # versioned, frozen: never edited after release


class Migration(migrations.Migration):
    dependencies = [("command", "0006_report_submit_function_lean_answer")]

    operations = [
        migrations.RunSQL(
            (SQL / "gc_report_submit_batch.v1.sql").read_text(),
            reverse_sql=(SQL / "gc_report_submit_batch.v1.drop.sql").read_text(),
        ),
    ]
