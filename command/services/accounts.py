"""Users, roles and workers."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from command.models import Team, Worker
from command.roles import ROLES, roles_snapshot
from command.rolesync import roles_sync


@transaction.atomic
def roles_ensure() -> None:
    """The role groups with their permissions, as the declaration (command/roles.py) says and
    the latest roles migration synced them (also after a test flush)."""
    roles_sync(apps, roles_snapshot())


@transaction.atomic
def user_ensure(
    *, username: str, password: str, role: str, team: Team | None = None, display_name: str = "", phone: str = ""
) -> User:
    """Create or reset a login with one role (a Django group); workers of a team get a Worker row."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    user, _created = User.objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = ROLES[role].superuser
    user.is_superuser = ROLES[role].superuser
    user.is_active = True
    user.save()
    if not Group.objects.filter(name=role).exists():
        roles_ensure()
    user.groups.set([Group.objects.get(name=role)])
    if team is not None:
        Worker.objects.update_or_create(
            user=user,
            defaults={"team": team, "display_name": display_name or username, "phone": phone, "on_duty": True},
        )
    return user


def api_token_cutoff() -> datetime | None:
    """Tokens issued before this have expired (settings.API_TOKEN_MAX_AGE_DAYS; None: never)."""
    days = int(getattr(settings, "API_TOKEN_MAX_AGE_DAYS", 0))
    return timezone.now() - timedelta(days=days) if days > 0 else None


@transaction.atomic
def api_token_issue(*, user: User) -> str:
    """The user's API token for phones and other clients (one per user; the same until revoked
    or expired: an expired one is replaced)."""
    from rest_framework.authtoken.models import Token

    cutoff = api_token_cutoff()
    if cutoff is not None:
        Token.objects.filter(user=user, created__lt=cutoff).delete()
    token, _created = Token.objects.get_or_create(user=user)
    return str(token.key)


def api_tokens_expire() -> int:
    """Delete the tokens older than API_TOKEN_MAX_AGE_DAYS (a periodic job): every channel reads
    the token table, so an expired token is refused everywhere from then on, and open sockets
    holding it are closed at their next heartbeat (realtime.hub). Returns how many went."""
    from rest_framework.authtoken.models import Token

    cutoff = api_token_cutoff()
    if cutoff is None:
        return 0
    deleted, _per_model = Token.objects.filter(created__lt=cutoff).delete()
    return int(deleted)


def api_token_revoke(*, user: User) -> None:
    """Revoke the user's API token: every client using it must log in again."""
    from rest_framework.authtoken.models import Token

    Token.objects.filter(user=user).delete()
