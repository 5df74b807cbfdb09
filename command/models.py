"""The domain model of GridCommand.

Geometry is stored in SRID 4326 (WGS 84). Writes go through ``command/services``; the models
hold no business logic. Derived fields (a building's grid cell, a camera's view cone) are
computed by services, never by ``save()``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from command.layers import LAYER_PERMISSIONS, OPEN_INCIDENT_STATUSES
from command.report_input import REPORT_INPUT
from command.roles import ACCESS_ACTIONS, ACTIONS


class LayerAccess(models.Model):
    """Carries the per-layer permissions (``view_layer_<name>``); it has no table."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [*LAYER_PERMISSIONS, *((c, ACTIONS[c]) for c in ACCESS_ACTIONS)]
        verbose_name = _("layer access")


class GridCell(models.Model):
    class Level(models.TextChoices):
        BIG = "big", _("big grid")
        CELL = "cell", _("grid cell")

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    level = models.CharField(_("level"), max_length=8, choices=Level.choices, default=Level.CELL)
    parent = models.ForeignKey(
        "self", verbose_name=_("big grid"), null=True, blank=True, on_delete=models.PROTECT, related_name="cells"
    )
    geom = models.PolygonField(_("boundary"), srid=4326)

    class Meta:
        ordering = ["code"]
        verbose_name = _("grid cell")
        verbose_name_plural = _("grid cells")
        constraints = [
            models.CheckConstraint(condition=Q(geom__isvalid=True), name="gridcell_geom_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Road(models.Model):
    class RoadClass(models.TextChoices):
        MAIN = "main", _("main road")
        SECONDARY = "secondary", _("secondary road")
        LANE = "lane", _("lane")

    name = models.CharField(_("name"), max_length=100)
    road_class = models.CharField(_("class"), max_length=16, choices=RoadClass.choices)
    geom = models.LineStringField(_("centre line"), srid=4326)

    class Meta:
        verbose_name = _("road")
        verbose_name_plural = _("roads")
        constraints = [models.CheckConstraint(condition=Q(geom__isvalid=True), name="road_geom_valid")]

    def __str__(self) -> str:
        return self.name


class Building(models.Model):
    class Use(models.TextChoices):
        RESIDENTIAL = "residential", _("residential")
        COMMERCIAL = "commercial", _("commercial")
        PUBLIC = "public", _("public")
        INDUSTRIAL = "industrial", _("industrial")

    name = models.CharField(_("name"), max_length=100, blank=True)
    address = models.CharField(_("address"), max_length=200)
    use = models.CharField(_("use"), max_length=16, choices=Use.choices, default=Use.RESIDENTIAL)
    floors = models.PositiveSmallIntegerField(_("floors"), default=1)
    household_count = models.PositiveIntegerField(_("households"), default=0)
    footprint = models.PolygonField(_("footprint"), srid=4326)
    grid_cell = models.ForeignKey(
        GridCell, verbose_name=_("grid cell"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("building")
        verbose_name_plural = _("buildings")
        constraints = [models.CheckConstraint(condition=Q(footprint__isvalid=True), name="building_footprint_valid")]

    def __str__(self) -> str:
        return self.name or self.address


class Household(models.Model):
    """A household at a door of a building. Residents' personal data (the head's name and phone,
    the vulnerable-group flags) are ``sensitive`` fields of the households layer: masked unless
    the viewer's role allows it, every unmasked view logged (command.layers).

    ``members``, ``head_name``, ``phone``, ``resident_type`` and ``vulnerable`` are derived from
    the household's persons by the registry services (command/services/registry.py): the head's
    name, phone and type, and the union of the members' flags."""

    class ResidentType(models.TextChoices):
        REGISTERED = "registered", _("registered resident")
        TENANT = "tenant", _("tenant")

    class Vulnerable(models.TextChoices):
        ELDERLY_ALONE = "elderly_alone", _("elderly living alone")
        VETERAN = "veteran", _("veteran")
        UNEMPLOYED = "unemployed", _("unemployed")
        HARDSHIP = "hardship", _("hardship family")
        DISABLED = "disabled", _("disability")

    building = models.ForeignKey(
        Building, verbose_name=_("building"), on_delete=models.CASCADE, related_name="households"
    )
    unit = models.CharField(_("unit / door"), max_length=32)
    resident_type = models.CharField(_("resident type"), max_length=16, choices=ResidentType.choices)
    members = models.PositiveSmallIntegerField(_("members"), default=1)
    head_name = models.CharField(_("head of household"), max_length=64)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    vulnerable = ArrayField(
        models.CharField(max_length=32, choices=Vulnerable.choices),
        verbose_name=_("vulnerable groups"),
        default=list,
        blank=True,
    )
    last_visit_at = models.DateTimeField(_("last visit"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("household")
        verbose_name_plural = _("households")
        constraints = [models.UniqueConstraint(fields=["building", "unit"], name="household_unit_unique")]
        indexes = [GinIndex(fields=["vulnerable"], name="household_vulnerable_gin")]

    def __str__(self) -> str:
        return f"{self.building_id}/{self.unit}"

    @property
    def grid_cell_id(self) -> int | None:
        """The building's grid cell (a field of the households layer)."""
        return self.building.grid_cell_id


class Person(models.Model):
    """A member of a household. Name, ID number, phone and flags are personal data (the persons
    layer's ``sensitive`` fields; ``full_name``, so that no layer has a public and a sensitive
    field of one name). Written only by command/services/registry.py."""

    class Relation(models.TextChoices):
        HEAD = "head", _("head of household")
        SPOUSE = "spouse", _("spouse")
        CHILD = "child", _("child")
        PARENT = "parent", _("parent")
        GRANDCHILD = "grandchild", _("grandchild")
        GRANDPARENT = "grandparent", _("grandparent")
        SIBLING = "sibling", _("sibling")
        OTHER = "other", _("other relation")

    household = models.ForeignKey(
        Household, verbose_name=_("household"), on_delete=models.CASCADE, related_name="persons"
    )
    full_name = models.CharField(_("name"), max_length=64)
    id_number = models.CharField(_("ID number"), max_length=18, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    relation = models.CharField(_("relation to the head"), max_length=16, choices=Relation.choices)
    resident_type = models.CharField(_("resident type"), max_length=16, choices=Household.ResidentType.choices)
    vulnerable = ArrayField(
        models.CharField(max_length=32, choices=Household.Vulnerable.choices),
        verbose_name=_("vulnerable groups"),
        default=list,
        blank=True,
    )
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("persons")
        constraints = [
            models.UniqueConstraint(fields=["id_number"], condition=~Q(id_number=""), name="person_id_number_unique"),
            models.UniqueConstraint(
                fields=["household"], condition=Q(relation="head"), name="person_one_head_per_household"
            ),
        ]
        indexes = [models.Index(fields=["household", "full_name"])]

    def __str__(self) -> str:
        return f"{self.household_id}/{self.pk}"

    @property
    def building_id(self) -> int:
        return self.household.building_id

    @property
    def grid_cell_id(self) -> int | None:
        return self.household.building.grid_cell_id


class HouseholdVisit(models.Model):
    """The visit log: who visited a household, when, and what the visit changed (a list of
    ``{"op", "person", "field", "old", "new"}``; personal data, shown under the households
    layer's personal-data grant). ``client_id`` makes a phone's retries one visit."""

    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="visits")
    visitor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_id = models.UUIDField(_("client id"), default=uuid.uuid4)
    content_hash = models.CharField(max_length=64)
    visited_at = models.DateTimeField(_("visited at"))
    received_at = models.DateTimeField(_("received at"))
    changes = models.JSONField(_("changes"), default=list, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("household visit")
        verbose_name_plural = _("household visits")
        constraints = [
            models.UniqueConstraint(
                fields=["visitor", "client_id"], name="householdvisit_client_id_per_visitor", nulls_distinct=False
            )
        ]
        indexes = [models.Index(fields=["household", "visited_at"])]


class Business(models.Model):
    """A shop or firm in a building. The contact's name and phone are personal data."""

    class Industry(models.TextChoices):
        CATERING = "catering", _("catering")
        RETAIL = "retail", _("retail")
        HAZARDOUS = "hazardous", _("hazardous goods")
        ENTERTAINMENT = "entertainment", _("entertainment venue")
        MANUFACTURING = "manufacturing", _("manufacturing")
        SERVICES = "services", _("services")
        OTHER = "other", _("other industry")

    class KeyIndustry(models.TextChoices):
        NONE = "", _("not a key industry")
        BOTTLED_GAS = "bottled_gas", _("catering with bottled gas")
        HAZARDOUS_GOODS = "hazardous_goods", _("hazardous goods")
        CROWDED_VENUE = "crowded_venue", _("crowded venue")

    building = models.ForeignKey(
        Building, verbose_name=_("building"), on_delete=models.CASCADE, related_name="businesses"
    )
    name = models.CharField(_("name"), max_length=100)
    industry = models.CharField(_("industry"), max_length=16, choices=Industry.choices)
    key_industry = models.CharField(
        _("key industry"), max_length=16, choices=KeyIndustry.choices, blank=True, default=""
    )
    contact_name = models.CharField(_("contact"), max_length=64, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True)
    licence_no = models.CharField(_("business licence"), max_length=32, blank=True)
    last_inspection_at = models.DateTimeField(_("last safety inspection"), null=True, blank=True)
    location = models.PointField(_("location"), srid=4326)
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("business")
        verbose_name_plural = _("businesses")

    def __str__(self) -> str:
        return self.name

    @property
    def grid_cell_id(self) -> int | None:
        return self.building.grid_cell_id


class Campaign(models.Model):
    """A door-to-door round (a screening, a census, a safety check) over the households or the
    businesses of an area that pass a filter. The counters are kept by command/services/campaigns.py
    in the transaction of each mark: ``covered`` = visited + refused (absent: to visit again)."""

    class Kind(models.TextChoices):
        SCREENING = "screening", _("screening round")
        CENSUS = "census", _("census")
        SAFETY_CHECK = "safety_check", _("safety check")
        OTHER = "other", _("other round")

    class TargetKind(models.TextChoices):
        HOUSEHOLDS = "households", _("households")
        BUSINESSES = "businesses", _("businesses")

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        CLOSED = "closed", _("closed")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    target_kind = models.CharField(_("targets"), max_length=16, choices=TargetKind.choices)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    area = models.MultiPolygonField(_("area"), srid=4326)
    filters = models.JSONField(_("filter"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"))
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    total = models.PositiveIntegerField(_("targets"), default=0)
    pending = models.PositiveIntegerField(_("pending"), default=0)
    visited = models.PositiveIntegerField(_("visited"), default=0)
    absent = models.PositiveIntegerField(_("absent"), default=0)
    refused = models.PositiveIntegerField(_("refused"), default=0)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [models.CheckConstraint(condition=Q(area__isvalid=True), name="campaign_area_valid")]

    def __str__(self) -> str:
        return self.name


class CampaignBuilding(models.Model):
    """A campaign's progress in one building (the wall's per-building colours); kept with the
    campaign's counters by each mark."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="buildings")
    building = models.ForeignKey(Building, on_delete=models.CASCADE, related_name="+")
    total = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    visited = models.PositiveIntegerField(default=0)
    absent = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "building"], name="campaignbuilding_unique"),
            models.CheckConstraint(
                condition=Q(total=models.F("pending") + models.F("visited") + models.F("absent") + models.F("refused")),
                name="campaignbuilding_counts_add_up",
            ),
        ]

    @property
    def grid_cell_id(self) -> int | None:
        return self.building.grid_cell_id

    # The campaign's totals travel with each building's progress (one event per mark).
    @property
    def campaign_total(self) -> int:
        return self.campaign.total

    @property
    def campaign_covered(self) -> int:
        return self.campaign.visited + self.campaign.refused

    @property
    def campaign_absent(self) -> int:
        return self.campaign.absent


class CampaignTarget(models.Model):
    """One household or business to visit in a campaign. ``status`` is the outcome of the latest
    mark by the time it was made on the phone (an older mark sent late from an offline phone
    does not overwrite a newer one)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("not visited yet")
        VISITED = "visited", _("visited")
        ABSENT = "absent", _("nobody home")
        REFUSED = "refused", _("refused")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="targets")
    household = models.ForeignKey(Household, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    business = models.ForeignKey(Business, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    building = models.ForeignKey(Building, on_delete=models.CASCADE, related_name="+")
    grid_cell = models.ForeignKey(GridCell, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    label = models.CharField(_("door or name"), max_length=100)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("marks"), default=0)
    last_mark_at = models.DateTimeField(_("last mark"), null=True, blank=True)
    last_marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "household"], name="campaigntarget_household_unique"),
            models.UniqueConstraint(fields=["campaign", "business"], name="campaigntarget_business_unique"),
            models.CheckConstraint(
                condition=Q(household__isnull=False, business__isnull=True)
                | Q(household__isnull=True, business__isnull=False),
                name="campaigntarget_one_target",
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"]),
            models.Index(fields=["campaign", "grid_cell", "status"]),
            models.Index(fields=["campaign", "building"]),
        ]


class CampaignMark(models.Model):
    """A worker's mark of a target (visited / absent / refused), as sent from the phone: the
    client id is the idempotency key per worker, like a report's."""

    class Outcome(models.TextChoices):
        VISITED = "visited", _("visited")
        ABSENT = "absent", _("nobody home")
        REFUSED = "refused", _("refused")

    target = models.ForeignKey(CampaignTarget, on_delete=models.CASCADE, related_name="marks")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_id = models.UUIDField(_("client id"))
    content_hash = models.CharField(max_length=64)
    outcome = models.CharField(_("outcome"), max_length=8, choices=Outcome.choices)
    note = models.TextField(_("note"), blank=True)
    marked_at = models.DateTimeField(_("marked at"))  # on the phone (the received time if not sent)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "client_id"], name="campaignmark_client_id_per_user", nulls_distinct=False
            )
        ]


class Camera(models.Model):
    class Status(models.TextChoices):
        ONLINE = "online", _("online")
        OFFLINE = "offline", _("offline")
        MAINTENANCE = "maintenance", _("maintenance")

    code = models.CharField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    location = models.PointField(_("location"), srid=4326)
    heading = models.FloatField(_("heading (degrees from north, clockwise)"), default=0)
    fov = models.FloatField(_("field of view (degrees)"), default=90)
    range_m = models.FloatField(_("range (m)"), default=50)
    stream_url = models.CharField(_("stream URL"), max_length=500, blank=True)
    snapshot_url = models.CharField(_("snapshot URL"), max_length=500, blank=True)
    owner = models.CharField(_("owner"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.ONLINE)
    view_cone = models.PolygonField(_("view cone"), srid=4326, null=True, blank=True, editable=False)
    grid_cell = models.ForeignKey(
        GridCell, verbose_name=_("grid cell"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("camera")
        verbose_name_plural = _("cameras")
        constraints = [
            models.CheckConstraint(condition=Q(heading__gte=0, heading__lt=360), name="camera_heading_range"),
            models.CheckConstraint(condition=Q(fov__gt=0, fov__lte=360), name="camera_fov_range"),
            models.CheckConstraint(condition=Q(range_m__gt=0, range_m__lte=2000), name="camera_range_range"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Team(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=64)
    name_en = models.CharField(_("name (English)"), max_length=64)
    is_field_team = models.BooleanField(_("field team of the full-scope grid"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name_zh


class Worker(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="worker")
    team = models.ForeignKey(Team, verbose_name=_("team"), on_delete=models.PROTECT, related_name="workers")
    display_name = models.CharField(_("name"), max_length=64)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    cells = models.ManyToManyField(GridCell, verbose_name=_("grid cells"), blank=True, related_name="workers")
    on_duty = models.BooleanField(_("on duty"), default=False)
    last_position = models.PointField(_("last position"), srid=4326, null=True, blank=True)
    last_position_at = models.DateTimeField(_("last position at"), null=True, blank=True)

    class Meta:
        verbose_name = _("worker")
        verbose_name_plural = _("workers")

    def __str__(self) -> str:
        return self.display_name


class LocationPing(models.Model):
    """A worker's track while on duty, kept WORKER_TRACK_RETENTION_DAYS."""

    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="pings")
    location = models.PointField(srid=4326)
    accuracy_m = models.FloatField(null=True, blank=True)
    recorded_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["worker", "recorded_at"])]
        constraints = [
            models.UniqueConstraint(fields=["worker", "recorded_at"], name="locationping_worker_time_unique")
        ]


class Category(models.Model):
    code = models.CharField(_("code"), max_length=32, unique=True)
    name_zh = models.CharField(_("name (Chinese)"), max_length=64)
    name_en = models.CharField(_("name (English)"), max_length=64)
    default_team = models.ForeignKey(Team, verbose_name=_("default team"), on_delete=models.PROTECT)
    priority = models.PositiveSmallIntegerField(_("priority (1 = most urgent)"), default=3)
    sla_minutes = models.PositiveIntegerField(_("SLA (minutes)"), default=240)
    icon = models.CharField(_("icon"), max_length=32, blank=True)

    class Meta:
        ordering = ["priority", "code"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        constraints = [models.CheckConstraint(condition=Q(priority__gte=1, priority__lte=4), name="category_priority")]

    def __str__(self) -> str:
        return self.name_zh


class Incident(models.Model):
    class Status(models.TextChoices):
        NEW = "new", _("new")
        DISPATCHED = "dispatched", _("dispatched")
        ACCEPTED = "accepted", _("accepted")
        ON_SCENE = "on_scene", _("on scene")
        RESOLVED = "resolved", _("resolved")
        CLOSED = "closed", _("closed")
        CANCELLED = "cancelled", _("cancelled")

    OPEN_STATUSES = tuple(map(Status, OPEN_INCIDENT_STATUSES))  # declared with the layers

    category = models.ForeignKey(Category, verbose_name=_("category"), on_delete=models.PROTECT)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.NEW)
    priority = models.PositiveSmallIntegerField(_("priority"), default=3)
    location = models.PointField(_("location"), srid=4326)
    grid_cell = models.ForeignKey(
        GridCell, verbose_name=_("grid cell"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outside_grid = models.BooleanField(_("outside the grid"), default=False)
    building = models.ForeignKey(
        Building, verbose_name=_("building"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        Team, verbose_name=_("team"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    worker = models.ForeignKey(
        Worker, verbose_name=_("worker"), null=True, blank=True, on_delete=models.SET_NULL, related_name="incidents"
    )
    report_count = models.PositiveIntegerField(_("reports"), default=0)
    note = models.TextField(_("note"), blank=True)
    resolution_note = models.TextField(_("resolution note"), blank=True)
    opened_at = models.DateTimeField(_("opened at"))
    last_report_at = models.DateTimeField(_("last report at"))
    due_at = models.DateTimeField(_("due at"))
    dispatched_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    arrived_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"))
    # Set by the SLA job (command.services.incidents.incidents_overdue_mark) when it announced
    # the incident overdue (event ``incident.overdue``): each incident is announced once.
    overdue_at = models.DateTimeField(_("announced overdue at"), null=True, blank=True)
    # A top-priority incident is an alarm on the wall until an operator acknowledges it
    # (command.services.incidents.alarm_acknowledge, event ``alarm.acknowledged``).
    alarm_acknowledged_at = models.DateTimeField(_("alarm acknowledged at"), null=True, blank=True)
    alarm_acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("alarm acknowledged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        indexes = [
            models.Index(fields=["status", "category"]),
            models.Index(fields=["opened_at"]),
            models.Index(fields=["due_at"], condition=Q(overdue_at__isnull=True), name="incident_due_unannounced"),
            # the wall's numbers (command/wall_selectors.py): today's response and resolution
            # times and the SLA window read a day of 200,000 incidents, not all of them (~300 ms)
            models.Index(fields=["accepted_at"], name="incident_accepted_at"),
            models.Index(fields=["resolved_at"], name="incident_resolved_at"),
            models.Index(fields=["due_at"], name="incident_due_at"),
        ]
        permissions = [("dispatch_incident", ACTIONS["dispatch_incident"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.category_id} {self.status}"


class Report(models.Model):
    class Source(models.TextChoices):
        FIELD = "field", _("field worker")
        OPEN311 = "open311", _("Open311 client")
        RESIDENT = "resident", _("resident")
        ALARM = "alarm", _("alarm device")
        HISTORY = "history", _("imported history")

    # The idempotency key, unique per reporter: someone else's key (it is on the reports layer)
    # is a new key for me, and never reaches their report.
    client_id = models.UUIDField(_("client id"), default=uuid.uuid4)
    content_hash = models.CharField(max_length=64)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.FIELD)
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    category = models.ForeignKey(Category, verbose_name=_("category"), on_delete=models.PROTECT)
    location = models.PointField(_("location"), srid=4326)
    # Then the values a report carries as sent (accuracy_m, note, client_time, ...): declared
    # once in command/report_input.py and added below the class.
    received_at = models.DateTimeField(_("received at"))
    grid_cell = models.ForeignKey(GridCell, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outside_grid = models.BooleanField(_("outside the grid"), default=False)
    building = models.ForeignKey(Building, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="reports")

    class Meta:
        verbose_name = _("report")
        verbose_name_plural = _("reports")
        indexes = [models.Index(fields=["received_at"])]
        constraints = [
            # NULLS NOT DISTINCT: reports stored without a reporter (imports, devices) are one namespace
            models.UniqueConstraint(
                fields=["reporter", "client_id"], name="report_client_id_per_reporter", nulls_distinct=False
            )
        ]

    def __str__(self) -> str:
        return str(self.client_id)


for _value in REPORT_INPUT:
    Report.add_to_class(_value.column, _value.model_field())


def photo_path(instance: ReportPhoto, filename: str) -> str:
    owner = f"r-{instance.report_id}" if instance.report is not None else f"i-{instance.incident_id}"
    return f"photos/{owner}/{filename}"


class ReportPhoto(models.Model):
    """A photo of a report, or of an incident's resolution (then ``report`` is empty). Stored
    re-encoded without metadata; served only through the authorising view (field_api)."""

    report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.CASCADE, related_name="photos")
    incident = models.ForeignKey(Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="photos")
    sha256 = models.CharField(max_length=64)
    image = models.FileField(upload_to=photo_path)
    thumbnail = models.FileField(upload_to=photo_path)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["report", "sha256"], name="reportphoto_unique_per_report"),
            models.UniqueConstraint(
                fields=["incident", "sha256"], condition=Q(report__isnull=True), name="reportphoto_unique_per_incident"
            ),
            models.CheckConstraint(
                condition=Q(report__isnull=False) | Q(incident__isnull=False), name="reportphoto_has_owner"
            ),
        ]


class DeviceToken(models.Model):
    """A per-device API key (alarm buttons, sensors): the device acts as ``user``. Only the
    SHA-256 of the key is stored; the key is shown once, when it is issued. Revocable."""

    name = models.CharField(_("device"), max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("acts as"), on_delete=models.CASCADE, related_name="device_tokens"
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(_("key prefix"), max_length=8, editable=False)
    created_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("device token")
        verbose_name_plural = _("device tokens")

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class EventCounter(models.Model):
    """One row; ``UPDATE ... SET last_seq = last_seq + 1`` inside the writing transaction
    holds its row lock until commit, so commit order equals ``seq`` order (DESIGN.md)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="eventcounter_single_row")]


class Event(models.Model):
    """The event log: the audit trail and the source of truth for real-time delivery."""

    seq = models.BigIntegerField(primary_key=True)
    kind = models.CharField(max_length=48)
    layer = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payload = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["created_at"]), models.Index(fields=["layer", "object_id"])]

    def __str__(self) -> str:
        return f"{self.seq} {self.kind}"


class PersonalDataAccess(models.Model):
    """Append-only log of every unmasked view of personal data: who (user and role), what
    (channel, layer, object ids), when, why (the stated purpose) and the request id. The
    database refuses UPDATE and DELETE of its rows (a trigger, migration 0002)."""

    # No database constraint and nothing done on delete: a row is never rewritten (the trigger
    # refuses it), so deleting a user leaves their rows with their id and login as they were.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    username = models.CharField(_("login"), max_length=150, blank=True)
    role = models.CharField(_("role"), max_length=100, blank=True)
    channel = models.CharField(_("channel"), max_length=32)
    layer = models.CharField(_("layer"), max_length=32)
    object_ids = ArrayField(models.CharField(max_length=64), verbose_name=_("records"), default=list)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    purpose = models.CharField(_("purpose"), max_length=200, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    at = models.DateTimeField(_("at"), auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["at"])]
        verbose_name = _("personal-data access")
        verbose_name_plural = _("personal-data access log")


class AccessGrant(models.Model):
    """An editable grant (the admin edits it through command/services/access.py): which layers
    a user, or every user of a role, sees, narrowed to grid cells and a time window. While a
    user (or their role) has no grant rows, the role's declaration applies (command/roles.py:
    its layers, everywhere or in the user's own cells); once there are rows, the active ones
    decide, so revoking the last one takes every layer away (command/access.py)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="access_grants",
    )
    role = models.CharField(
        _("role"), max_length=32, blank=True, help_text=_("Instead of a user: every user of a role.")
    )
    layers = ArrayField(
        models.CharField(max_length=32),
        verbose_name=_("layers"),
        default=list,
        blank=True,
        help_text=_("Empty: every layer of the role."),
    )
    own_cells = models.BooleanField(
        _("own grid cells"), default=False, help_text=_("The grid cells of the user's worker record.")
    )
    cells = models.ManyToManyField(
        GridCell,
        verbose_name=_("grid cells"),
        blank=True,
        related_name="+",
        help_text=_("A big grid stands for its cells. No cells and not own cells: everywhere."),
    )
    neighbour_cover = models.BooleanField(
        _("cover neighbouring cells (AB role)"),
        default=False,
        help_text=_("Also the grid cells that share a border with these."),
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("access grant")
        verbose_name_plural = _("access grants")
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(role="")) | (Q(user__isnull=True) & ~Q(role="")),
                name="accessgrant_user_xor_role",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="accessgrant_window_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user or self.role}: {','.join(self.layers) or '*'}"


class HotspotAlert(models.Model):
    """A hotspot the control room was told about (``hotspot.raised``): what the next refresh
    compares with, so a hotspot is announced when it appears or grows, not on every run.
    Written only by ``command.services.hotspots.hotspots_refresh``."""

    category = models.ForeignKey(Category, verbose_name=_("category"), on_delete=models.CASCADE, related_name="+")
    geom = models.PolygonField(_("hull"), srid=4326)
    count = models.PositiveIntegerField(_("incidents"))
    trend = models.CharField(_("trend"), max_length=16)
    window_start = models.DateTimeField(_("window start"))
    window_end = models.DateTimeField(_("window end"))
    raised_at = models.DateTimeField(_("raised at"))

    class Meta:
        verbose_name = _("hotspot alert")
        verbose_name_plural = _("hotspot alerts")
        indexes = [models.Index(fields=["category", "raised_at"])]


# Resident services (#16) live in their own module; imported here so Django registers them.
from command.resident_models import (  # noqa: E402, F401
    Activity,
    ActivityCheckIn,
    AlarmDevice,
    AlarmEvent,
    AlarmSignatureSeen,
    Notice,
    NoticePhoto,
    NoticeRead,
    PhoneCode,
    PointEntry,
    RequestPhoto,
    Resident,
    ServiceRequest,
    SupervisionTip,
    TipLedgerEntry,
)
