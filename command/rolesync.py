"""Migrations sync the role groups from a frozen snapshot of command.roles (a migration never
reads the live declaration: replaying old migrations gives the groups they gave then).

``RolesSync(snapshot)`` is the operation; ``manage.py roles_migration`` writes a migration with
today's snapshot. Only the declared groups are touched; other groups an administrator made stay.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def roles_sync(apps: Any, snapshot: dict[str, list[str]]) -> None:
    """Make each role's group hold exactly its snapshot's permissions (app ``command``)."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations ran; create them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, codenames in snapshot.items():
        permissions = list(permission_model.objects.filter(content_type__app_label="command", codename__in=codenames))
        missing = set(codenames) - {p.codename for p in permissions}
        if missing:
            raise RuntimeError(f"role {role}: no permissions {sorted(missing)} (declare them on a model first)")
        group, _created = group_model.objects.get_or_create(name=role)
        group.permissions.set(permissions)


class RolesSync(migrations.RunPython):
    """RunPython of ``roles_sync`` with its snapshot kept on the operation (tests read it)."""

    def __init__(self, snapshot: dict[str, list[str]], previous: dict[str, list[str]] | None = None) -> None:
        self.snapshot = snapshot
        self.previous = previous

        def forward(apps: Any, schema_editor: Any) -> None:
            roles_sync(apps, snapshot)

        def backward(apps: Any, schema_editor: Any) -> None:
            if previous is not None:
                roles_sync(apps, previous)
            else:
                apps.get_model("auth", "Group").objects.filter(name__in=list(snapshot)).delete()

        super().__init__(forward, backward)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return ("command.rolesync.RolesSync", [self.snapshot], {"previous": self.previous})
