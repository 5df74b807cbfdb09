"""Residents sign in with their phone number and a one-time code sent by SMS.

``phone_code_send`` makes a 6-digit code, keeps only its HMAC (keyed with SECRET_KEY, so a copy
of the table does not give the codes away), and hands the text to the SMS backend
(``SMS_BACKEND``: ``console`` writes it to the server log — the demo; a dotted path names a class
with ``send(phone, text)`` for a real provider). At most ``PHONE_CODE_PER_HOUR`` codes per number
and hour. ``phone_code_verify`` takes the newest unused code of the number, refuses it after
``PHONE_CODE_TTL_SECONDS`` or ``PHONE_CODE_MAX_ATTEMPTS`` wrong guesses, and on success returns the
resident's login (made on first sign-in, role ``resident``; linked to the household whose phone
it is, when there is one).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from command.models import Household, PhoneCode, Resident

logger = logging.getLogger("gridcommand.sms")
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")  # a mainland mobile number


class PhoneLoginRefused(Exception):
    """Sign-in refused (HTTP 400/429); ``str()`` says why to a person."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ConsoleSMS:
    """The demo backend: the text goes to the server log (logger ``gridcommand.sms``)."""

    def send(self, phone: str, text: str) -> None:
        logger.warning("SMS to %s: %s", phone, text)


def sms_backend() -> Any:
    name = settings.SMS_BACKEND
    return ConsoleSMS() if name == "console" else import_string(name)()


def phone_normalize(phone: str) -> str:
    digits = re.sub(r"[\s-]", "", phone or "").removeprefix("+86")
    if not PHONE_RE.match(digits):
        raise PhoneLoginRefused(_("Enter an 11-digit mobile number, like 13812345678."))
    return digits


def _code_hash(phone: str, code: str) -> str:
    return hmac.new(settings.SECRET_KEY.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def phone_code_send(*, phone: str) -> None:
    phone = phone_normalize(phone)
    now = timezone.now()
    with transaction.atomic():
        recent = PhoneCode.objects.select_for_update().filter(phone=phone, created_at__gte=now - timedelta(hours=1))
        if len(recent) >= settings.PHONE_CODE_PER_HOUR:
            raise PhoneLoginRefused(_("Too many codes for this number; try again in an hour."), status=429)
        code = f"{secrets.randbelow(1_000_000):06d}"
        PhoneCode.objects.create(
            phone=phone,
            code_hash=_code_hash(phone, code),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.PHONE_CODE_TTL_SECONDS),
        )
        minutes = max(1, settings.PHONE_CODE_TTL_SECONDS // 60)
        text = _("Your GridCommand sign-in code is %(code)s; valid for %(minutes)s minutes.") % {
            "code": code,
            "minutes": minutes,
        }
        transaction.on_commit(lambda: sms_backend().send(phone, text))


def phone_code_verify(*, phone: str, code: str) -> User:
    phone = phone_normalize(phone)
    code = (code or "").strip()
    now = timezone.now()
    wrong = PhoneLoginRefused(_("The code is wrong or has expired; ask for a new one."))
    with transaction.atomic():
        pending = (
            PhoneCode.objects.select_for_update()
            .filter(phone=phone, used_at__isnull=True)
            .order_by("-created_at")
            .first()
        )
        if pending is None or pending.expires_at < now:
            raise wrong
        if pending.attempts >= settings.PHONE_CODE_MAX_ATTEMPTS:
            raise PhoneLoginRefused(_("Too many wrong codes; ask for a new one."), status=429)
        if not hmac.compare_digest(pending.code_hash, _code_hash(phone, code)):
            PhoneCode.objects.filter(pk=pending.pk).update(attempts=F("attempts") + 1)
            ok = False
        else:
            pending.used_at = now
            pending.save(update_fields=["used_at"])
            ok = True
    if not ok:
        raise wrong
    return resident_ensure(phone=phone)


@transaction.atomic
def resident_ensure(*, phone: str) -> User:
    """The resident login of ``phone`` (made on first sign-in, with the ``resident`` role)."""
    resident = Resident.objects.select_related("user").filter(phone=phone).first()
    if resident is not None:
        return resident.user
    from command.services.accounts import roles_ensure

    # The login may outlive its Resident row (a reload of the village truncates the households and,
    # with them, the residents): it is the same person's, so it is taken up again.
    user, created = User.objects.get_or_create(username=f"resident-{phone}")
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if not Group.objects.filter(name="resident").exists():
        roles_ensure()
    user.groups.add(Group.objects.get(name="resident"))
    household = Household.objects.filter(phone=phone).order_by("pk").first()
    Resident.objects.create(user=user, phone=phone, household=household, created_at=timezone.now())
    return user
