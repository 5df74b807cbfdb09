"""Reads of the household, person and business registry and of door-to-door campaigns, for every
channel that lists them outside the map layers (the REST API, the field app, the pages).

Who sees what: the one layer policy (command.layers.layers_for_user: the households / persons /
businesses / campaign_targets layers, their personal-data fields and the grid cells each is
granted in, command/access.py), so these lists narrow exactly as the map channels do: operators
the whole district, a grid worker their own cells (with AB-role cover when granted), police and
residents nothing. One helper fetches and authorises together and answers None alike for a
missing and a forbidden object.

``registry_values`` turns rows into what the viewer may see: personal fields masked, unmasked
only with a purpose the user stated (the view written to the access log).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Q, QuerySet

from command.layers import LayerGrant, layer_access_log, layers_for_user
from command.masking import mask_value
from command.models import Business, Campaign, CampaignTarget, GridCell, Household, HouseholdVisit, Person

CONTROL_ROOM_PERMISSION = "command.use_control_room"
MANAGE_CAMPAIGNS_PERMISSION = "command.manage_campaigns"
IMPORT_REGISTRY_PERMISSION = "command.import_registry"


def registry_cells_for(user: Any, layer: str = "households") -> list[int] | None:
    """The grid cells whose rows of ``layer`` ``user`` may see, as the one policy grants them
    (command/access.py: a grid worker's own cells or big grid, AB-role cover, a patrol area, a
    time window): None for all, [] for none (the layer not granted)."""
    grant = layers_for_user(user).get(layer)
    if grant is None:
        return []
    return None if grant.cells is None else list(grant.cells)


def _in_cells(qs: QuerySet[Any], user: Any, layer: str, cell_path: str) -> QuerySet[Any]:
    """``qs`` narrowed to the cells of the user's grant of ``layer`` (none when not granted)."""
    cells = registry_cells_for(user, layer)
    if cells is None:
        return qs
    return qs.filter(**{f"{cell_path}__in": cells}) if cells else qs.none()


def households_visible_to(user: Any) -> QuerySet[Household]:
    return _in_cells(Household.objects.all(), user, "households", "building__grid_cell_id")


def household_get_for_user(*, user: Any, household_id: int, for_update: bool = False) -> Household | None:
    qs = households_visible_to(user).select_related("building")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    return qs.filter(pk=household_id).first()


def persons_visible_to(user: Any) -> QuerySet[Person]:
    return _in_cells(Person.objects.all(), user, "persons", "household__building__grid_cell_id")


def businesses_visible_to(user: Any) -> QuerySet[Business]:
    return _in_cells(Business.objects.all(), user, "businesses", "building__grid_cell_id")


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
    purpose: str = "",
    detail: str = "",
) -> list[dict[str, Any]]:
    """``rows`` (dicts of a layer's fields, ``id`` included, other keys kept as they are) as
    ``user`` may see them, by the layer's grant (command.layers): personal fields masked
    (command/masking.py), or left out for roles that get none; unmasked only with a ``purpose``
    the user stated and the personal-data permission, the view written to the access log with
    that purpose (docs/privacy.md). The door look-up passes no purpose: always masked."""
    grant: LayerGrant | None = layers_for_user(user, purpose=purpose).get(layer)
    if grant is None:
        return []
    out: list[dict[str, Any]] = []
    for row in rows:
        shown = dict(row)
        for f in grant.layer.fields:
            if not f.sensitive or f.name not in shown:
                continue
            if f.name in grant.masked:
                shown[f.name] = mask_value(shown[f.name], f.masked_as)
            elif f.name not in grant.fields:
                del shown[f.name]
        out.append(shown)
    if grant.personal_data and rows:
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
    cells = registry_cells_for(user, "campaign_targets")
    if cells is None:
        return Campaign.objects.all()
    return (
        Campaign.objects.filter(pk__in=campaign_targets_visible_to(user).values("campaign_id"))
        if cells
        else (Campaign.objects.none())
    )


def campaign_get_for_user(*, user: Any, campaign_id: int) -> Campaign | None:
    return campaigns_visible_to(user).filter(pk=campaign_id).first()


def campaign_targets_visible_to(user: Any) -> QuerySet[CampaignTarget]:
    return _in_cells(CampaignTarget.objects.all(), user, "campaign_targets", "grid_cell_id")


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
