"""Admin for the whole domain, with map widgets. Edits of derived data go through services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.gis.admin import GISModelAdmin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from command import models
from command.layers import layer_access_log, layers_for_user
from command.services.devices import device_token_issue, device_token_revoke
from command.services.places import building_save, camera_save, grid_cell_save
from command.services.records import record_delete, record_save
from command.services.registry import business_save
from command.widgets import LocalMapWidget


class ServiceWritesMixin:
    """Every save and delete of the admin goes through a service with its event (the screens
    are told, cached tiles go stale): ``record_save`` / ``record_delete`` unless a subclass
    calls a domain service. tests/command/test_admin.py fails for a writable admin without it."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        record_save(obj=obj, actor_id=request.user.pk)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        record_delete(obj=obj, actor_id=request.user.pk)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            record_delete(obj=obj, actor_id=request.user.pk)


class PersonalDataAdminMixin:
    """Admin pages that show residents' or workers' personal data write each view to the
    append-only access log, like every other channel (command.layers.layer_access_log)."""

    personal_layer = ""

    def _log(self, request: HttpRequest, object_ids: list[Any], detail: str) -> None:
        grant = layers_for_user(request.user).get(self.personal_layer)
        if grant is not None:
            layer_access_log(user=request.user, channel="admin", grant=grant, object_ids=object_ids, detail=detail)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        response = super().changelist_view(request, extra_context)  # type: ignore[misc]
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            self._log(request, [obj.pk for obj in changelist.result_list], f"list {request.get_full_path()}"[:200])
        return response

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        self._log(request, [object_id], "change page")
        return response


class MapAdmin(ServiceWritesMixin, GISModelAdmin):
    gis_widget = LocalMapWidget  # type: ignore[assignment]  # django-stubs types this as an instance


@admin.register(models.GridCell)
class GridCellAdmin(MapAdmin):
    list_display = ("code", "name", "level", "parent")
    list_filter = ("level",)
    search_fields = ("code", "name")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = grid_cell_save(
            code=obj.code, name=obj.name, geom=obj.geom, level=obj.level, parent=obj.parent, actor_id=request.user.pk
        )
        obj.pk = saved.pk


@admin.register(models.Road)
class RoadAdmin(MapAdmin):
    list_display = ("name", "road_class")
    list_filter = ("road_class",)
    search_fields = ("name",)


@admin.register(models.Building)
class BuildingAdmin(MapAdmin):
    list_display = ("id", "name", "address", "use", "floors", "household_count", "grid_cell")
    list_filter = ("use", "grid_cell")
    search_fields = ("name", "address")
    readonly_fields = ("grid_cell",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = building_save(
            footprint=obj.footprint,
            address=obj.address,
            use=obj.use,
            floors=obj.floors,
            name=obj.name,
            household_count=obj.household_count,
            building=obj if change else None,
            actor_id=request.user.pk,
        )
        obj.pk = saved.pk


@admin.register(models.Household)
class HouseholdAdmin(PersonalDataAdminMixin, ServiceWritesMixin, admin.ModelAdmin):
    personal_layer = "households"
    list_display = ("building", "unit", "resident_type", "members", "last_visit_at")
    list_filter = ("resident_type",)
    raw_id_fields = ("building",)
    # Derived from the members (command/services/registry.py): changed by a visit, not here.
    readonly_fields = ("members", "head_name", "phone", "vulnerable", "last_visit_at", "updated_at")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by their services (a visit, the import, a campaign's marks): the admin
    lists and shows them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.Person)
class PersonAdmin(PersonalDataAdminMixin, ReadOnlyAdmin):
    personal_layer = "persons"
    list_display = ("household", "relation", "resident_type")
    list_filter = ("relation", "resident_type")


@admin.register(models.HouseholdVisit)
class HouseholdVisitAdmin(PersonalDataAdminMixin, ReadOnlyAdmin):
    personal_layer = "persons"  # the changes hold members' personal data
    list_display = ("household", "visitor", "visited_at", "received_at")


@admin.register(models.Business)
class BusinessAdmin(PersonalDataAdminMixin, MapAdmin):
    personal_layer = "businesses"
    list_display = ("name", "building", "industry", "key_industry", "last_inspection_at")
    list_filter = ("industry", "key_industry")
    search_fields = ("name", "licence_no")
    raw_id_fields = ("building",)
    readonly_fields = ("updated_at",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = business_save(
            building=obj.building,
            name=obj.name,
            industry=obj.industry,
            key_industry=obj.key_industry,
            contact_name=obj.contact_name,
            contact_phone=obj.contact_phone,
            licence_no=obj.licence_no,
            last_inspection_at=obj.last_inspection_at,
            location=obj.location,
            business=obj if change else None,
            actor_id=request.user.pk,
        )
        obj.pk = saved.pk


@admin.register(models.Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "target_kind", "status", "total", "visited", "absent", "refused", "created_at")
    list_filter = ("status", "kind", "target_kind")


@admin.register(models.Camera)
class CameraAdmin(MapAdmin):
    list_display = ("code", "name", "status", "heading", "fov", "range_m", "grid_cell")
    list_filter = ("status",)
    search_fields = ("code", "name")
    readonly_fields = ("grid_cell",)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        saved = camera_save(
            code=obj.code,
            name=obj.name,
            location=obj.location,
            heading=obj.heading,
            fov=obj.fov,
            range_m=obj.range_m,
            status=obj.status,
            owner=obj.owner,
            stream_url=obj.stream_url,
            snapshot_url=obj.snapshot_url,
            actor_id=request.user.pk,
        )
        obj.pk = saved.pk


@admin.register(models.Team)
class TeamAdmin(ServiceWritesMixin, admin.ModelAdmin):
    list_display = ("code", "name_zh", "name_en", "is_field_team")


@admin.register(models.Worker)
class WorkerAdmin(PersonalDataAdminMixin, MapAdmin):
    personal_layer = "workers"
    list_display = ("display_name", "team", "on_duty", "last_position_at")
    list_filter = ("team", "on_duty")
    filter_horizontal = ("cells",)


@admin.register(models.Category)
class CategoryAdmin(ServiceWritesMixin, admin.ModelAdmin):
    list_display = ("code", "name_zh", "name_en", "default_team", "priority", "sla_minutes")


@admin.register(models.Incident)
class IncidentAdmin(MapAdmin):
    list_display = ("id", "category", "status", "priority", "grid_cell", "team", "worker", "opened_at", "due_at")
    list_filter = ("status", "category", "team")
    date_hierarchy = "opened_at"
    # Status and its times change only through the incident steps (dispatch, close, cancel:
    # REST and the wall); here an operator corrects priority and the SLA's due time.
    editable = ("priority", "due_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in models.Incident._meta.fields if f.name not in self.editable]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.updated_at = timezone.now()
        record_save(obj=obj, actor_id=request.user.pk, update_fields=[*self.editable, "updated_at"])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # incidents come from reports (command.services.reports)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of what happened; cancel instead


@admin.register(models.Report)
class ReportAdmin(MapAdmin):
    list_display = ("client_id", "category", "source", "grid_cell", "outside_grid", "received_at")
    list_filter = ("source", "category", "outside_grid")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a field report is never lost (its incident keeps it)


@admin.register(models.Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("seq", "kind", "layer", "object_id", "actor", "created_at")
    list_filter = ("kind", "layer")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.PersonalDataAccess)
class PersonalDataAccessAdmin(EventAdmin):
    list_display = ("at", "user", "channel", "layer", "detail", "object_ids")
    list_filter = ("channel", "layer")


@admin.register(models.DeviceToken)
class DeviceTokenAdmin(admin.ModelAdmin):
    """Keys for alarm buttons and other devices: issued here (the key is shown once), revoked by
    an action; only the key's hash is stored."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    fields = ("name", "user")
    actions = ["revoke"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked (the action below), kept for the record

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        token, key = device_token_issue(user=obj.user, name=obj.name)
        obj.pk = token.pk
        self.message_user(
            request,
            _("Device key for %(name)s (shown only now, copy it to the device): %(key)s")
            % {"name": token.name, "key": key},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected device keys"))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for token in queryset:
            device_token_revoke(token=token)
