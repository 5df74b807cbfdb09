"""Roles as data (issue 11): command/roles.py is the one declaration; migrations freeze it; the
database's groups hold exactly what it declares; pages ask permissions, not group names."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import call_command

from command.management.commands.roles_migration import latest_roles_snapshot
from command.roles import ROLES, roles_snapshot
from command.rolesync import roles_sync


def test_the_latest_roles_migration_freezes_the_declaration() -> None:
    """Change a role and forget its migration, and this fails (``manage.py roles_migration``)."""
    snapshot, _latest = latest_roles_snapshot()
    assert snapshot == roles_snapshot()
    call_command("roles_migration", "--check")


def test_no_migration_reads_the_live_declaration() -> None:
    from pathlib import Path

    folder = Path(apps.get_app_config("command").path) / "migrations"
    for path in folder.glob("0*.py"):
        text = path.read_text()
        for live in ("command.roles import", "command.layers import", "command.services"):
            assert live not in text, f"{path.name} imports live code ({live}): freeze what it needs"


def _database_roles() -> dict[str, list[str]]:
    return {
        group.name: sorted(
            group.permissions.filter(content_type__app_label="command").values_list("codename", flat=True)
        )
        for group in Group.objects.filter(name__in=list(ROLES))
    }


@pytest.mark.django_db
def test_the_database_groups_are_the_declaration() -> None:
    # the migrated database, or the roles a flushed test database gets back (roles_ensure)
    from command.services.accounts import roles_ensure

    if not Group.objects.filter(name__in=list(ROLES)).exists():
        roles_ensure()
    assert _database_roles() == roles_snapshot()


@pytest.mark.django_db
def test_sync_makes_a_changed_group_right_again() -> None:
    roles_sync(apps, roles_snapshot())
    police = Group.objects.get(name="police")
    police.permissions.clear()
    Group.objects.get(name="operator").permissions.add(*Group.objects.get(name="admin").permissions.all())
    roles_sync(apps, roles_snapshot())
    assert _database_roles() == roles_snapshot()


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(ROLES))
def test_home_pages_follow_the_role_permissions(client, make_user, role) -> None:
    user = make_user(role)
    client.force_login(user)
    html = client.get("/").content.decode()
    from command.views import PAGES, page_shown

    for url, _title, rule in PAGES:
        shown = f'href="{url}' in html
        assert shown == page_shown(user, rule), (role, url)
    # a login with the permission and no role group sees the page too: permissions, not names
    from django.contrib.auth.models import Permission

    plain = make_user("police", username=f"plain-{role}")
    plain.groups.clear()
    plain.user_permissions.add(Permission.objects.get(codename="use_control_room"))
    client.force_login(plain)
    assert 'href="/control/' in client.get("/").content.decode()
