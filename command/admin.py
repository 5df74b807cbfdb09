"""Admin for the whole domain, with map widgets. Edits of derived data go through services."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import admin, messages
from django.contrib.gis.admin import GISModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l

from command import models
from command.access import access_log_write
from command.layers import layer_access_log, layers_for_user, may_unmask
from command.masking import mask_value
from command.services.access import access_grant_delete, access_grant_revoke, access_grant_save
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
    """Admin pages of records with personal data: lists show it masked (``masked_list``), and a
    change page (where it is shown and edited unmasked) first asks for the purpose, then writes
    the view to the append-only access log with it (command.layers.layer_access_log), as the
    unmask step of every other channel does."""

    personal_layer = ""

    def _purpose(self, request: HttpRequest) -> str:
        return (request.GET.get("purpose") or request.POST.get("_purpose") or "").strip()[:200]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> Any:
        purpose = self._purpose(request)
        if len(purpose) < 2 or not may_unmask(request.user):
            context = {
                **self.admin_site.each_context(request),  # type: ignore[attr-defined]
                "title": _("State the purpose"),
                "opts": self.model._meta,  # type: ignore[attr-defined]
                "object_id": object_id,
                "may_unmask": may_unmask(request.user),
                "purpose_refused": bool(purpose) or request.method == "POST",
            }
            status = 400 if request.method == "POST" else 200
            return TemplateResponse(request, "admin/command/purpose.html", context, status=status)
        response = super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]
        grant = layers_for_user(request.user, purpose=purpose).get(self.personal_layer)
        if grant is not None and getattr(response, "status_code", 200) < 400:
            layer_access_log(
                user=request.user, channel="admin", grant=grant, object_ids=[object_id], detail="change page"
            )
        return response


def masked(field: str, mask: str, title: Any) -> Any:
    """A changelist column showing ``field`` masked (command/masking.py)."""

    @admin.display(description=title)
    def column(model_admin: Any, obj: Any) -> Any:
        return mask_value(getattr(obj, field), mask)

    return column


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
    list_display = ("building", "unit", "resident_type", "members", "last_visit_at", "head_masked", "phone_masked")
    head_masked = masked("head_name", "name", _l("head of household"))
    phone_masked = masked("phone", "phone", _l("phone"))
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
    list_display = ("name_masked", "team", "on_duty", "last_position_at")
    name_masked = masked("display_name", "name", _l("name"))
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

    # The notes are what residents wrote (personal data): masked here; unmasked through the
    # REST incident detail with a stated purpose (logged).
    exclude = ("note", "resolution_note")
    note_masked = masked("note", "text", _l("note"))
    resolution_note_masked = masked("resolution_note", "text", _l("resolution note"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        hidden = {*self.editable, *self.exclude}
        fields = [f.name for f in models.Incident._meta.fields if f.name not in hidden]
        return [*fields, "note_masked", "resolution_note_masked"]

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
    # who reported and what they wrote: masked (unmasked through the REST unmask step, logged)
    exclude = ("note", "reporter")
    readonly_fields = ("note_masked",)
    note_masked = masked("note", "text", _l("note"))
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
    """The access log, for review: filter by channel, layer, role, user and day; export what the
    filters show as CSV (the export itself is a row of the log)."""

    list_display = ("at", "username", "role", "channel", "layer", "purpose", "detail", "object_ids", "request_id")  # type: ignore[assignment]
    list_filter = ("channel", "layer", "role", "at")  # type: ignore[assignment]
    search_fields = ("username", "purpose", "request_id", "object_ids")
    date_hierarchy = "at"
    actions = None

    def get_urls(self) -> Any:
        from django.urls import path

        return [
            path("export.csv", self.admin_site.admin_view(self.export_csv), name="command_personaldataaccess_export"),
            *super().get_urls(),
        ]

    def export_csv(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        rows = changelist.get_queryset(request).order_by("at", "pk")
        access_log_write(
            user=request.user,
            channel="admin.export",
            layer="access_log",
            object_ids=[],
            detail=request.GET.urlencode()[:200],
            purpose="access log review",
        )
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="personal-data-access.csv"'
        response["Cache-Control"] = "private, no-store"
        response.write("\ufeff")
        writer = csv.writer(response)
        fields = ("at", "username", "role", "channel", "layer", "object_ids", "purpose", "detail", "request_id")
        writer.writerow(fields)
        for row in rows.iterator():
            values = [getattr(row, f) for f in fields]
            values[0] = row.at.isoformat()
            values[5] = " ".join(row.object_ids)
            writer.writerow([_csv_safe(v) for v in values])
        return response

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        query = request.GET.urlencode()
        extra = {**(extra_context or {}), "export_url": "export.csv" + (f"?{query}" if query else "")}
        return super().changelist_view(request, extra)


def _csv_safe(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@admin.register(models.AccessGrant)
class AccessGrantAdmin(admin.ModelAdmin):
    """Grants: who sees which layers, narrowed to grid cells and a time window. Every save,
    revocation and deletion goes through command/services/access.py with its event; a
    revocation reaches open websockets within a heartbeat."""

    list_display = (
        "__str__",
        "user",
        "role",
        "own_cells",
        "neighbour_cover",
        "valid_from",
        "valid_until",
        "revoked_at",
    )
    list_filter = ("role", "revoked_at")
    filter_horizontal = ("cells",)
    raw_id_fields = ("user",)
    actions = ["revoke"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        pass  # saved with its cells in save_related, through the service

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        obj = form.instance
        data = form.cleaned_data
        saved = access_grant_save(
            grant=obj if change else None,
            user=data.get("user"),
            role=data.get("role") or "",
            layers=data.get("layers") or [],
            cells=data.get("cells") or [],
            own_cells=bool(data.get("own_cells")),
            neighbour_cover=bool(data.get("neighbour_cover")),
            valid_from=data.get("valid_from"),
            valid_until=data.get("valid_until"),
            reason=data.get("reason") or "",
            actor_id=request.user.pk,
        )
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        access_grant_delete(grant=obj, actor_id=request.user.pk)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            access_grant_delete(grant=obj, actor_id=request.user.pk)

    @admin.action(description=_l("Revoke the selected grants now"))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            access_grant_revoke(grant=obj, actor_id=request.user.pk)


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
