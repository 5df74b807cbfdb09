"""Reads of the household, person and business registry and of door-to-door campaigns, for every
channel that lists them outside the map layers (the REST API, the field app, the pages).

Who sees what: the layer policy first (command.layers: the households / persons / businesses /
campaign_targets layers, and their personal-data fields), then the grid: operators (the control
room permission) and admins see the whole district, a grid worker the buildings of their own
grid cells, anyone else nothing. One helper fetches and authorises together and answers None
alike for a missing and a forbidden object.

``registry_values`` turns rows into what the viewer may see: personal fields as stored when the
layer's grant includes personal data (and the view is written to the access log), masked with
command.masking otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Q, QuerySet

from command.layers import LayerGrant, layer_access_log, layers_for_user
from command.masking import mask_id_number, mask_name, mask_phone
from command.models import Business, Campaign, CampaignTarget, GridCell, Household, HouseholdVisit, Person, Worker

CONTROL_ROOM_PERMISSION = "command.use_control_room"
MANAGE_CAMPAIGNS_PERMISSION = "command.manage_campaigns"
IMPORT_REGISTRY_PERMISSION = "command.import_registry"
REGISTRY_PURPOSE = "registry work"

# How each personal field is masked for a viewer without the grant.
MASKS = {
    "head_name": mask_name,
    "full_name": mask_name,
    "contact_name": mask_name,
    "phone": mask_phone,
    "contact_phone": mask_phone,
    "id_number": mask_id_number,
}


def registry_cells_for(user: Any) -> list[int] | None:
    """The grid cells whose registry ``user`` may see: None for all (operators, admins), the
    worker's own cells for a grid worker, none for anyone else."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    if user.is_superuser or user.has_perm(CONTROL_ROOM_PERMISSION):
        return None
    # One query: a login that is no worker has no cells either.
    return list(Worker.cells.through.objects.filter(worker__user_id=user.pk).values_list("gridcell_id", flat=True))


def _in_cells(qs: QuerySet[Any], user: Any, cell_path: str) -> QuerySet[Any]:
    cells = registry_cells_for(user)
    if cells is None:
        return qs
    return qs.filter(**{f"{cell_path}__in": cells})


def households_visible_to(user: Any) -> QuerySet[Household]:
    if "households" not in layers_for_user(user):
        return Household.objects.none()
    return _in_cells(Household.objects.all(), user, "building__grid_cell_id")


def household_get_for_user(*, user: Any, household_id: int, for_update: bool = False) -> Household | None:
    qs = households_visible_to(user).select_related("building")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    return qs.filter(pk=household_id).first()


def persons_visible_to(user: Any) -> QuerySet[Person]:
    if "persons" not in layers_for_user(user):
        return Person.objects.none()
    return _in_cells(Person.objects.all(), user, "household__building__grid_cell_id")


def businesses_visible_to(user: Any) -> QuerySet[Business]:
    if "businesses" not in layers_for_user(user):
        return Business.objects.none()
    return _in_cells(Business.objects.all(), user, "building__grid_cell_id")


def households_filtered(
    qs: QuerySet[Household],
    *,
    vulnerable: Sequence[str] = (),
    cell_codes: Sequence[str] = (),
    building_id: int | None = None,
    resident_type: str | None = None,
) -> QuerySet[Household]:
    """``vulnerable``: households with any of these flags; ``cell_codes``: in these grid cells, or
    in the cells of these big grids ("all elderly living alone in grid A")."""
    if vulnerable:
        qs = qs.filter(vulnerable__overlap=list(vulnerable))
    if cell_codes:
        cells = GridCell.objects.filter(Q(code__in=cell_codes) | Q(parent__code__in=cell_codes)).values("pk")
        qs = qs.filter(building__grid_cell_id__in=cells)
    if building_id is not None:
        qs = qs.filter(building_id=building_id)
    if resident_type:
        qs = qs.filter(resident_type=resident_type)
    return qs


def registry_values(
    *,
    user: Any,
    layer: str,
    rows: Sequence[dict[str, Any]],
    channel: str,
    detail: str = "",
    always_mask: bool = False,
) -> list[dict[str, Any]]:
    """``rows`` (dicts of a layer's fields, ``id`` included) as ``user`` may see them: personal
    fields unmasked under the layer's personal-data grant (the view logged), masked otherwise;
    flags (a list) are withheld when masked. ``always_mask``: the door look-up, which never
    unmasks."""
    # The registry's own lists and panels are the grid worker's door-to-door work: they unmask
    # for a role that may (logged with this purpose, docs/privacy.md); the door look-up never does.
    grant: LayerGrant | None = layers_for_user(user, purpose=REGISTRY_PURPOSE).get(layer)
    if grant is None:
        return []
    sensitive = set(grant.layer.sensitive_fields)
    unmasked = grant.personal_data and not always_mask
    out: list[dict[str, Any]] = []
    for row in rows:
        shown = dict(row)
        if not unmasked:
            for key in sensitive & set(row):
                value = row[key]
                shown[key] = MASKS[key](value) if key in MASKS and isinstance(value, str) else None
        out.append(shown)
    if unmasked and rows:
        layer_access_log(
            user=user, channel=channel, grant=grant, object_ids=[r["id"] for r in rows], detail=detail[:200]
        )
    return out


def visits_for_household(*, user: Any, household: Household, limit: int = 50) -> list[HouseholdVisit]:
    """The visit log of a household the user may see (its changes hold personal data: the
    view follows the persons layer's grant, see field_api.registry)."""
    return list(household.visits.select_related("visitor").order_by("-visited_at", "-pk")[:limit])


def residents_lookup(*, user: Any, building_id: int, query: str, limit: int = 20) -> list[Person]:
    """Members of the households of one building whose name starts with ``query`` or whose ID
    number equals it (or ends with it, four characters or more): the door look-up."""
    query = query.strip()
    if not query:
        return []
    term = Q(full_name__startswith=query)
    if len(query) >= 4 and query.replace("x", "X")[:-1].isdigit():
        term |= Q(id_number=query.upper()) | Q(id_number__endswith=query.upper())
    return list(
        persons_visible_to(user)
        .filter(household__building_id=building_id)
        .filter(term)
        .select_related("household")
        .order_by("household__unit", "pk")[:limit]
    )


# --- campaigns ------------------------------------------------------------------------------------


def campaigns_visible_to(user: Any) -> QuerySet[Campaign]:
    """Campaigns whose targets the user may see (the campaign_targets layer); a grid worker
    sees the campaigns that have a target in their cells."""
    if "campaign_targets" not in layers_for_user(user):
        return Campaign.objects.none()
    cells = registry_cells_for(user)
    if cells is None:
        return Campaign.objects.all()
    return Campaign.objects.filter(pk__in=CampaignTarget.objects.filter(grid_cell_id__in=cells).values("campaign_id"))


def campaign_get_for_user(*, user: Any, campaign_id: int) -> Campaign | None:
    return campaigns_visible_to(user).filter(pk=campaign_id).first()


def campaign_targets_visible_to(user: Any) -> QuerySet[CampaignTarget]:
    if "campaign_targets" not in layers_for_user(user):
        return CampaignTarget.objects.none()
    return _in_cells(CampaignTarget.objects.all(), user, "grid_cell_id")


def campaign_targets_for_user(
    *, user: Any, campaign: Campaign, statuses: Iterable[str] = (), cell_codes: Sequence[str] = ()
) -> QuerySet[CampaignTarget]:
    """A campaign's targets the user may work, per cell; ``statuses`` e.g. those not covered
    yet (pending, absent)."""
    qs = campaign_targets_visible_to(user).filter(campaign=campaign)
    statuses = list(statuses)
    if statuses:
        qs = qs.filter(status__in=statuses)
    if cell_codes:
        qs = qs.filter(grid_cell__code__in=list(cell_codes))
    return qs.select_related("grid_cell", "building").order_by("grid_cell__code", "building_id", "label", "pk")
