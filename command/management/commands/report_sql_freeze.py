"""``manage.py report_sql_freeze``: freeze the report write's SQL as built today
(command/services/report_function.py, from command/report_input.py and report_rows.py) as the next
versions of ``command/sql/gc_report_submit.v<N>.sql`` and ``gc_report_submit_batch.v<N>.sql``,
with the migration that replaces the previous versions by them. Run it after changing a report's
declared values (as ``makemigrations`` after changing a model); ``--check`` fails when one is
needed (CI). A frozen file is never edited afterwards: each migration replays what it ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from command.management.commands.roles_migration import latest_command_migration
from command.services.report_function import (
    BATCH_DROP_FILE_SQL,
    BATCH_FILE_SQL,
    SUBMIT_DROP_FILE_SQL,
    SUBMIT_FILE_SQL,
)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Each frozen function: its text and its drop as built today.
BUILT = {
    "gc_report_submit": (SUBMIT_FILE_SQL, SUBMIT_DROP_FILE_SQL),
    "gc_report_submit_batch": (BATCH_FILE_SQL, BATCH_DROP_FILE_SQL),
}


def latest_version(stem: str) -> int:
    """The newest frozen version of ``stem`` (``<stem>.v<N>.sql``)."""
    return max(int(p.name[len(stem) + 2 :].split(".")[0]) for p in SQL_DIR.glob(f"{stem}.v*.sql"))


def frozen_is_current() -> bool:
    return all(
        (SQL_DIR / f"{stem}.v{latest_version(stem)}.sql").read_text() == text
        and (SQL_DIR / f"{stem}.v{latest_version(stem)}.drop.sql").read_text() == drop
        for stem, (text, drop) in BUILT.items()
    )


TEMPLATE = '''"""The report write's SQL as frozen by manage.py report_sql_freeze: gc_report_submit v{submit},
gc_report_submit_batch v{batch} (command/sql/) replace the versions before them."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parents[1] / "sql"  # versioned, frozen: never edited after release


def _text(*names: str) -> str:
    return "\\n;\\n".join((SQL / name).read_text() for name in names)


class Migration(migrations.Migration):
    dependencies = [("command", "{latest}")]

    operations = [
        migrations.RunSQL(
            _text(
                "gc_report_submit_batch.v{batch_before}.drop.sql",
                "gc_report_submit.v{submit_before}.drop.sql",
                "gc_report_submit.v{submit}.sql",
                "gc_report_submit_batch.v{batch}.sql",
            ),
            reverse_sql=_text(
                "gc_report_submit_batch.v{batch}.drop.sql",
                "gc_report_submit.v{submit}.drop.sql",
                "gc_report_submit.v{submit_before}.sql",
                "gc_report_submit_batch.v{batch_before}.sql",
            ),
        ),
    ]
'''


class Command(BaseCommand):
    help = "Freeze the report write's SQL as its next version, with its migration."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--check", action="store_true", help="Fail if the built SQL differs from the frozen.")

    def handle(self, *args: Any, **options: Any) -> None:
        if frozen_is_current():
            self.stdout.write("Report SQL: no changes.")
            return
        if options["check"]:
            raise CommandError(
                "The report write's SQL differs from its latest frozen version: run manage.py report_sql_freeze"
            )
        # Both functions get a new version: a new input type drops the batch function with it.
        before = {stem: latest_version(stem) for stem in BUILT}
        for stem, (text, drop) in BUILT.items():
            (SQL_DIR / f"{stem}.v{before[stem] + 1}.sql").write_text(text)
            (SQL_DIR / f"{stem}.v{before[stem] + 1}.drop.sql").write_text(drop)
        latest = latest_command_migration()
        number = int(latest.split("_")[0]) + 1
        submit, batch = before["gc_report_submit"] + 1, before["gc_report_submit_batch"] + 1
        path = MIGRATIONS_DIR / f"{number:04d}_report_submit_v{submit}.py"
        path.write_text(
            TEMPLATE.format(latest=latest, submit=submit, batch=batch, submit_before=submit - 1, batch_before=batch - 1)
        )
        self.stdout.write(f"Wrote {path.name} and the v{submit}/v{batch} files in command/sql/")
