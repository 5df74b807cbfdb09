"""``manage.py roles_migration``: write the migration that syncs the role groups to today's
declaration (command/roles.py), freezing it as a snapshot. Run it after changing a role, as
``makemigrations`` after changing a model; ``--check`` fails when one is needed (CI)."""

from __future__ import annotations

import pprint
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.migrations.loader import MigrationLoader

from command.roles import roles_snapshot
from command.rolesync import RolesSync


def latest_roles_snapshot() -> tuple[dict[str, list[str]] | None, str]:
    """The snapshot of the newest command migration that syncs roles, and the newest command
    migration (the next one's dependency)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    plan = [key for key in loader.graph.forwards_plan(loader.graph.leaf_nodes("command")[0]) if key[0] == "command"]
    snapshot = None
    for key in plan:
        for operation in loader.graph.nodes[key].operations:
            if isinstance(operation, RolesSync):
                snapshot = operation.snapshot
    return snapshot, plan[-1][1]


def latest_command_migration() -> str:
    """The newest command migration: the next one's dependency."""
    return latest_roles_snapshot()[1]


TEMPLATE = '''"""Sync the role groups to command/roles.py as it stood (manage.py roles_migration)."""

from django.db import migrations

from command.rolesync import RolesSync

ROLES = {roles}

PREVIOUS = {previous}


class Migration(migrations.Migration):
    dependencies = [("command", "{latest}")]

    operations = [RolesSync(ROLES, previous=PREVIOUS)]
'''


class Command(BaseCommand):
    help = "Write the migration that syncs the role groups to command/roles.py."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--check", action="store_true", help="Fail if the declaration needs a migration.")

    def handle(self, *args: Any, **options: Any) -> None:
        previous, latest = latest_roles_snapshot()
        current = roles_snapshot()
        if previous == current:
            self.stdout.write("Roles: no changes.")
            return
        if options["check"]:
            raise CommandError("command/roles.py changed: run manage.py roles_migration")
        number = int(latest.split("_")[0]) + 1
        path = Path(__file__).resolve().parents[2] / "migrations" / f"{number:04d}_roles.py"
        path.write_text(
            TEMPLATE.format(
                roles=pprint.pformat(current, width=100),
                previous=pprint.pformat(previous, width=100),
                latest=latest,
            )
        )
        self.stdout.write(f"Wrote {path.name}")
