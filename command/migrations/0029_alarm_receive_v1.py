"""The hot writes' SQL as frozen by manage.py report_sql_freeze: gc_alarm_receive v1 (command/sql/)
replace the versions before them."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parents[1] / "sql"  # versioned, frozen: never edited after release


def _text(*names: str) -> str:
    return "\n;\n".join((SQL / name).read_text() for name in names)


class Migration(migrations.Migration):
    dependencies = [("command", "0028_roles")]

    operations = [
        migrations.RunSQL(
            _text(
                "gc_alarm_receive.v1.sql",
            ),
            reverse_sql=_text(
                "gc_alarm_receive.v1.drop.sql",
            ),
        ),
    ]
