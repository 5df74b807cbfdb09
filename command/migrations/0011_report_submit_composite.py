"""gc_report_submit v2 (command/services/report_function.py, report_rows.py): one composite in
(gc_report_input, with the reporter's user id: the lean path looks its token up in the calling
statement by command.logins' rule), one composite out (gc_report_result, read by name); the batch
takes an array of inputs. The v1 functions (positional parameters, a token) go first."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parents[1] / "sql"  # versioned, frozen: never edited after release


def _text(*names: str) -> str:
    return "\n;\n".join((SQL / name).read_text() for name in names)  # v1 files end without a semicolon


class Migration(migrations.Migration):
    dependencies = [("command", "0010_roles")]

    operations = [
        migrations.RunSQL(
            _text(
                "gc_report_submit_batch.v1.drop.sql",
                "gc_report_submit.v1.drop.sql",
                "gc_report_submit.v2.sql",
                "gc_report_submit_batch.v2.sql",
            ),
            reverse_sql=_text(
                "gc_report_submit_batch.v2.drop.sql",
                "gc_report_submit.v2.drop.sql",
                "gc_report_submit.v1.sql",
                "gc_report_submit_batch.v1.sql",
            ),
        ),
    ]
