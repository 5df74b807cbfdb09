"""``manage.py report_sql_freeze``: freeze the SQL functions of the hot writes as built today —
the report's (command/services/report_function.py, from command/report_input.py and
report_rows.py) and the alarm call's (command/services/alarm_function.py, which calls the
report's) — as the next versions of ``command/sql/<function>.v<N>.sql``, with the migration that
replaces the previous versions by them. Run it after changing a report's declared values or an
alarm call's shapes (as ``makemigrations`` after changing a model); ``--check`` fails when one is
needed (CI). A frozen file is never edited afterwards: each migration replays what it ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from command.management.commands.roles_migration import latest_command_migration
from command.services.alarm_function import RECEIVE_DROP_FILE_SQL, RECEIVE_FILE_SQL
from command.services.report_function import (
    BATCH_DROP_FILE_SQL,
    BATCH_FILE_SQL,
    SUBMIT_DROP_FILE_SQL,
    SUBMIT_FILE_SQL,
)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# Each frozen function: its text and its drop as built today, in dependency order (each may use
# the types and functions of those before it, so a new version of one is a new version of every
# one after it: they are dropped in reverse order and made again in order).
BUILT = {
    "gc_report_submit": (SUBMIT_FILE_SQL, SUBMIT_DROP_FILE_SQL),
    "gc_report_submit_batch": (BATCH_FILE_SQL, BATCH_DROP_FILE_SQL),
    "gc_alarm_receive": (RECEIVE_FILE_SQL, RECEIVE_DROP_FILE_SQL),
}


def latest_version(stem: str) -> int:
    """The newest frozen version of ``stem`` (``<stem>.v<N>.sql``; 0 before the first)."""
    return max((int(p.name[len(stem) + 2 :].split(".")[0]) for p in SQL_DIR.glob(f"{stem}.v*.sql")), default=0)


def _current(stem: str) -> bool:
    text, drop = BUILT[stem]
    version = latest_version(stem)
    return (
        version > 0
        and (SQL_DIR / f"{stem}.v{version}.sql").read_text() == text
        and (SQL_DIR / f"{stem}.v{version}.drop.sql").read_text() == drop
    )


def frozen_is_current() -> bool:
    return all(_current(stem) for stem in BUILT)


TEMPLATE = '''"""The hot writes' SQL as frozen by manage.py report_sql_freeze: {summary} (command/sql/)
replace the versions before them."""

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
{forward}
            ),
            reverse_sql=_text(
{reverse}
            ),
        ),
    ]
'''


def _names(versions: list[tuple[str, int]], *, drop_first: bool) -> list[str]:
    return (
        [f"{stem}.v{v}.drop.sql" for stem, v in reversed(versions) if v > 0]
        if drop_first
        else [f"{stem}.v{v}.sql" for stem, v in versions if v > 0]
    )


class Command(BaseCommand):
    help = "Freeze the report's and the alarm call's SQL as their next versions, with their migration."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--check", action="store_true", help="Fail if the built SQL differs from the frozen.")

    def handle(self, *args: Any, **options: Any) -> None:
        if frozen_is_current():
            self.stdout.write("Report and alarm SQL: no changes.")
            return
        if options["check"]:
            raise CommandError(
                "The hot writes' SQL differs from its latest frozen version: run manage.py report_sql_freeze"
            )
        stems = list(BUILT)
        first = next(i for i, stem in enumerate(stems) if not _current(stem))
        changed = stems[first:]  # the first changed one and every one after it (they may use it)
        before = [(stem, latest_version(stem)) for stem in changed]
        after = [(stem, v + 1) for stem, v in before]
        for stem, version in after:
            text, drop = BUILT[stem]
            (SQL_DIR / f"{stem}.v{version}.sql").write_text(text)
            (SQL_DIR / f"{stem}.v{version}.drop.sql").write_text(drop)
        latest = latest_command_migration()
        number = int(latest.split("_")[0]) + 1
        stem, version = after[0]
        path = MIGRATIONS_DIR / f"{number:04d}_{stem.removeprefix('gc_')}_v{version}.py"
        indent = " " * 16

        def lines(names: list[str]) -> str:
            return "\n".join(f'{indent}"{name}",' for name in names)

        path.write_text(
            TEMPLATE.format(
                latest=latest,
                summary=", ".join(f"{s} v{v}" for s, v in after),
                forward=lines(_names(before, drop_first=True) + _names(after, drop_first=False)),
                reverse=lines(_names(after, drop_first=True) + _names(before, drop_first=False)),
            )
        )
        self.stdout.write(f"Wrote {path.name} and {', '.join(f'{s}.v{v}' for s, v in after)} in command/sql/")
