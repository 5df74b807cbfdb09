"""Users, roles and workers."""

from __future__ import annotations

from django.contrib.auth.models import Group, User
from django.db import transaction

from command.models import Team, Worker

ROLES = ("admin", "operator", "grid_worker", "police")


@transaction.atomic
def user_ensure(
    *, username: str, password: str, role: str, team: Team | None = None, display_name: str = "", phone: str = ""
) -> User:
    """Create or reset a login with one role (a Django group); workers of a team get a Worker row."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    user, _created = User.objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = role == "admin"
    user.is_superuser = role == "admin"
    user.is_active = True
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    if team is not None:
        Worker.objects.update_or_create(
            user=user,
            defaults={"team": team, "display_name": display_name or username, "phone": phone, "on_duty": True},
        )
    return user
