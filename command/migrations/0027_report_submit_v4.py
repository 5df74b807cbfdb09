"""The report write's SQL as frozen by manage.py report_sql_freeze: gc_report_submit v4,
gc_report_submit_batch v4 (command/sql/) replace the versions before them."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parents[1] / "sql"  # versioned, frozen: never edited after release


def _text(*names: str) -> str:
    return "\n;\n".join((SQL / name).read_text() for name in names)


class Migration(migrations.Migration):
    dependencies = [("command", "0026_access_grants_and_access_log_purpose")]

    operations = [
        migrations.RunSQL(
            _text(
                "gc_report_submit_batch.v3.drop.sql",
                "gc_report_submit.v3.drop.sql",
                "gc_report_submit.v4.sql",
                "gc_report_submit_batch.v4.sql",
            ),
            reverse_sql=_text(
                "gc_report_submit_batch.v4.drop.sql",
                "gc_report_submit.v4.drop.sql",
                "gc_report_submit.v3.sql",
                "gc_report_submit_batch.v3.sql",
            ),
        ),
    ]
