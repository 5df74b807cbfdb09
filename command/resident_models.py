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
