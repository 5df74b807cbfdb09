"""Resident services (issue #16): supervision tips, home alarm devices, requests, notices,
volunteer points. Imported by ``command.models`` (the app's model module); the writes are the
services in ``command/services/`` (tips.py, alarms.py ...), never ``save()`` or signals."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class SupervisionTip(models.Model):
    """An anonymous misconduct report to the supervision committee. Nothing about the sender is
    kept: no user, no address, no user agent; the sender holds a receipt code whose SHA-256 is
    ``receipt_hash``. Every change is also an entry of the hash-chained ``TipLedgerEntry``, so an
    edit of this row outside the service is detected by ``manage.py tips_verify``."""

    class Topic(models.TextChoices):
        CONDUCT = "conduct", _("misconduct of a worker or official")
        INTEGRITY = "integrity", _("bribes, favours, misuse of funds")
        NEGLECT = "neglect", _("neglect of duty")
        OTHER = "other", _("other")

    class Status(models.TextChoices):
        RECEIVED = "received", _("received")
        REVIEWING = "reviewing", _("under review")
        CLOSED = "closed", _("closed")

    receipt_hash = models.CharField(max_length=64, unique=True, editable=False)
    topic = models.CharField(_("topic"), max_length=16, choices=Topic.choices)
    body = models.TextField(_("what happened"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RECEIVED)
    reply = models.TextField(_("reply to the sender"), blank=True)
    created_at = models.DateTimeField(_("received at"))
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("supervision tip")
        verbose_name_plural = _("supervision tips")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.topic} {self.status}"


class TipLedgerEntry(models.Model):
    """The append-only, hash-chained history of the tips: ``entry_hash`` = SHA-256 of the
    previous entry's hash and this entry's canonical JSON (command/services/tips.py)."""

    seq = models.BigIntegerField(primary_key=True)
    tip = models.ForeignKey(SupervisionTip, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=16)  # submitted | status
    data = models.JSONField()
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(kind__in=["submitted", "status"]), name="tipledger_kind")]

    def __str__(self) -> str:
        return f"{self.seq} {self.kind} tip {self.tip_id}"


class AlarmDevice(models.Model):
    """A home alarm (SOS button, gas or smoke detector) registered to a household. It signs each
    webhook call with its own secret (HMAC-SHA256 over the timestamp and the body), which is
    kept to check signatures and shown once, when issued or rotated. ``wearer_name`` and the
    emergency contact are personal data (the ``alarm_devices`` layer marks them sensitive)."""

    class Kind(models.TextChoices):
        SOS = "sos", _("SOS button")
        GAS = "gas", _("gas alarm")
        SMOKE = "smoke", _("smoke alarm")

    class Status(models.TextChoices):
        ONLINE = "online", _("online")
        OFFLINE = "offline", _("offline")
        ALARM = "alarm", _("alarm raised")

    code = models.CharField(_("device code"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    household = models.ForeignKey(
        "command.Household", verbose_name=_("household"), on_delete=models.PROTECT, related_name="alarm_devices"
    )
    secret = models.CharField(max_length=64, editable=False)
    wearer_name = models.CharField(_("for whom"), max_length=64, blank=True)
    contact_name = models.CharField(_("emergency contact"), max_length=64, blank=True)
    contact_phone = models.CharField(_("emergency contact phone"), max_length=32, blank=True)
    heartbeat_seconds = models.PositiveIntegerField(_("heartbeat interval (s)"), default=300)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.ONLINE)
    battery = models.PositiveSmallIntegerField(_("battery (%)"), null=True, blank=True)
    registered_at = models.DateTimeField(_("registered at"))
    last_heartbeat_at = models.DateTimeField(_("last heartbeat"))
    last_alarm_at = models.DateTimeField(_("last alarm"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("alarm device")
        verbose_name_plural = _("alarm devices")
        indexes = [models.Index(fields=["status", "last_heartbeat_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(heartbeat_seconds__gte=10), name="alarmdevice_heartbeat_min"),
            models.CheckConstraint(condition=Q(battery__lte=100), name="alarmdevice_battery_range"),
        ]

    def __str__(self) -> str:
        return f"{self.code} ({self.kind})"

    @property
    def building_id(self) -> int:
        return int(self.household.building_id)


class AlarmSignatureSeen(models.Model):
    """Signatures accepted within the timestamp window: the same signed call again is a replay."""

    device = models.ForeignKey(AlarmDevice, on_delete=models.CASCADE, related_name="+")
    signature = models.CharField(max_length=64)
    timestamp = models.BigIntegerField()
    received_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["received_at"])]
        constraints = [models.UniqueConstraint(fields=["device", "signature"], name="alarmsignature_once")]

    def __str__(self) -> str:
        return f"{self.device_id} {self.timestamp}"


class AlarmEvent(models.Model):
    """One alarm a device raised: the report (and so the incident) it opened or joined."""

    device = models.ForeignKey(AlarmDevice, on_delete=models.PROTECT, related_name="alarms")
    kind = models.CharField(max_length=8)
    received_at = models.DateTimeField()
    device_time = models.DateTimeField()
    report = models.OneToOneField("command.Report", on_delete=models.PROTECT, related_name="alarm")

    class Meta:
        indexes = [models.Index(fields=["received_at"])]

    def __str__(self) -> str:
        return f"{self.device_id} {self.kind} {self.received_at:%Y-%m-%d %H:%M}"
