"""Resident services (issue #16): supervision tips, home alarm devices, requests, notices,
volunteer points. Imported by ``command.models`` (the app's model module); the writes are the
services in ``command/services/`` (tips.py, alarms.py ...), never ``save()`` or signals."""

from __future__ import annotations

from django.contrib.gis.db import models
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


class ServiceRequest(models.Model):
    """A resident's request (the "wish pool", 微心愿): an elevator fault, a dispute, an errand.

    It comes in by phone (an operator enters it), in person, from the field app or the resident
    page; an operator triages it to a category and team, or publishes it to the volunteers, one
    of whom takes it (the first taker wins); the taker resolves it with a note and photos; the
    requester rates it. Every step is a service call with its ``request.updated`` event
    (command/services/requests.py)."""

    class Channel(models.TextChoices):
        PHONE = "phone", _("phone call")
        IN_PERSON = "in_person", _("in person")
        FIELD_APP = "field_app", _("field app")
        RESIDENT_PAGE = "resident_page", _("resident page")

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("submitted")
        TRIAGED = "triaged", _("assigned to a team")
        PUBLISHED = "published", _("waiting for a volunteer")
        TAKEN = "taken", _("taken")
        RESOLVED = "resolved", _("resolved")
        CLOSED = "closed", _("rated and closed")
        CANCELLED = "cancelled", _("cancelled")

    OPEN_STATUSES = ("submitted", "triaged", "published", "taken")

    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.SUBMITTED)
    requester = models.ForeignKey(
        "auth.User", verbose_name=_("requester"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requester_phone = models.CharField(_("requester's phone"), max_length=32, blank=True)
    title = models.CharField(_("title"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    category = models.ForeignKey(
        "command.Category", verbose_name=_("category"), null=True, blank=True, on_delete=models.PROTECT
    )
    team = models.ForeignKey(
        "command.Team", verbose_name=_("team"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    location = models.PointField(_("location"), srid=4326, null=True, blank=True)
    building = models.ForeignKey(
        "command.Building",
        verbose_name=_("building"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    grid_cell = models.ForeignKey(
        "command.GridCell",
        verbose_name=_("grid cell"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    worker = models.ForeignKey(
        "command.Worker", verbose_name=_("taken by"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(_("resolution note"), blank=True)
    rating = models.PositiveSmallIntegerField(_("rating"), null=True, blank=True)
    feedback = models.TextField(_("feedback"), blank=True)
    overdue = models.BooleanField(_("overdue"), default=False)
    created_at = models.DateTimeField(_("created at"))
    due_at = models.DateTimeField(_("due at"))
    published_at = models.DateTimeField(null=True, blank=True)
    taken_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("request")
        verbose_name_plural = _("requests")
        indexes = [models.Index(fields=["status", "due_at"]), models.Index(fields=["requester", "created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__gte=1, rating__lte=5) | Q(rating__isnull=True), name="request_rating"
            ),
            # the first taker wins: a taken request has exactly one worker
            models.CheckConstraint(
                condition=~Q(status__in=["taken", "resolved", "closed"]) | Q(worker__isnull=False),
                name="request_taken_has_worker",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


def request_photo_path(instance: RequestPhoto, filename: str) -> str:
    return f"photos/q-{instance.request_id}/{filename}"


def stored_photo_path(instance: StoredPhoto, filename: str) -> str:
    return f"photos/{instance.photo_folder()}/{filename}"


class StoredPhoto(models.Model):
    """A photo as command/services/photos.py stores it: checked by content, re-encoded without
    metadata, with its thumbnail; one per owner and content (``sha256`` of the upload)."""

    sha256 = models.CharField(max_length=64)
    image = models.FileField(upload_to=stored_photo_path)
    thumbnail = models.FileField(upload_to=stored_photo_path)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def photo_folder(self) -> str:
        raise NotImplementedError


class RequestPhoto(StoredPhoto):
    """A photo of a request's resolution."""

    request = models.ForeignKey(ServiceRequest, on_delete=models.CASCADE, related_name="photos")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "sha256"], name="requestphoto_unique")]

    def __str__(self) -> str:
        return f"{self.request_id}/{self.sha256[:8]}"

    def photo_folder(self) -> str:
        return f"q-{self.request_id}"


class PhoneCode(models.Model):
    """A one-time sign-in code sent to a phone: only its keyed hash is kept; it expires, and it
    takes a limited number of guesses (command/services/phone_login.py)."""

    phone = models.CharField(max_length=32)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["phone", "created_at"])]

    def __str__(self) -> str:
        return f"{self.phone[:3]}… {self.created_at:%Y-%m-%d %H:%M}"


class Resident(models.Model):
    """A resident's login, by phone number (the user has the ``resident`` role)."""

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="resident")
    phone = models.CharField(_("phone"), max_length=32, unique=True)
    household = models.ForeignKey(
        "command.Household", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.phone[:3]}****{self.phone[-4:]}"


class Notice(models.Model):
    """A village notice (村务公开): for everyone (no target) or for one grid (a cell, or a big grid
    and its cells). Residents read them on the resident page; each first read is counted."""

    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("text"))
    target = models.ForeignKey(
        "command.GridCell",
        verbose_name=_("for the grid"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    author = models.ForeignKey("auth.User", null=True, on_delete=models.SET_NULL, related_name="+")
    published_at = models.DateTimeField(_("published at"))

    class Meta:
        verbose_name = _("notice")
        verbose_name_plural = _("notices")
        ordering = ["-published_at"]

    def __str__(self) -> str:
        return self.title


class NoticeRead(models.Model):
    """A resident read a notice (once), with the grid cell they live in, for the counts per grid."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="+")
    grid_cell = models.ForeignKey("command.GridCell", null=True, on_delete=models.SET_NULL, related_name="+")
    read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notice", "user"], name="noticeread_once")]

    def __str__(self) -> str:
        return f"{self.notice_id} {self.user_id}"


class NoticePhoto(StoredPhoto):
    """An image of a notice, shown with it on the resident page."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="photos")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notice", "sha256"], name="noticephoto_unique")]

    def __str__(self) -> str:
        return f"{self.notice_id}/{self.sha256[:8]}"

    def photo_folder(self) -> str:
        return f"n-{self.notice_id}"


class Activity(models.Model):
    """A volunteer activity; volunteers check in by scanning its QR code (a link with
    ``token``) with their phone, which earns them the activity's points once."""

    title = models.CharField(_("title"), max_length=100)
    token = models.CharField(max_length=32, unique=True, editable=False)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    created_by = models.ForeignKey("auth.User", null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("volunteer activity")
        verbose_name_plural = _("volunteer activities")

    def __str__(self) -> str:
        return self.title


class ActivityCheckIn(models.Model):
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="check_ins")
    worker = models.ForeignKey("command.Worker", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["activity", "worker"], name="activitycheckin_once")]

    def __str__(self) -> str:
        return f"{self.activity_id} {self.worker_id}"


class PointEntry(models.Model):
    """The volunteer service record: one row per thing that earned points (a completed order, a
    campaign visit, an activity), at the points the rules gave it then (VOLUNTEER_POINTS)."""

    class Kind(models.TextChoices):
        ORDER = "order", _("completed order")
        VISIT = "visit", _("campaign visit")
        ACTIVITY = "activity", _("activity")

    worker = models.ForeignKey("command.Worker", on_delete=models.CASCADE, related_name="points")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    source = models.CharField(max_length=40)  # "request:12", "mark:7", "activity:3"
    points = models.IntegerField()
    earned_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["earned_at"])]
        constraints = [models.UniqueConstraint(fields=["worker", "source"], name="pointentry_once")]

    def __str__(self) -> str:
        return f"{self.worker_id} {self.source} {self.points}"
