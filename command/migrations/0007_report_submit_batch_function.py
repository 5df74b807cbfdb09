"""gc_report_submit_batch and gc_report_group_locks (command/services/report_function.py): a
batch of reports as one statement, its grouping locks taken first in key order, so a batch never
waits for a lock while it holds the event counter (a deadlock with a single report)."""

from django.db import migrations

from command.services.report_function import BATCH_DROP_SQL, BATCH_FUNCTION_SQL, GROUP_LOCKS_FUNCTION_SQL


class Migration(migrations.Migration):
    dependencies = [("command", "0006_report_submit_function_lean_answer")]

    operations = [
        migrations.RunSQL([GROUP_LOCKS_FUNCTION_SQL, BATCH_FUNCTION_SQL], reverse_sql=BATCH_DROP_SQL),
    ]
