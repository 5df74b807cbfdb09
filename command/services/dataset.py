"""Bulk loads: the demo village, the scale data set and imported history.

One transaction per load; one ``layer.reloaded`` event per layer tells every screen to reload
its snapshot instead of streaming thousands of single events.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction

from command.eventlog import event_append
from command.models import (
    Building,
    Business,
    Camera,
    Category,
    GridCell,
    Household,
    Incident,
    Person,
    Report,
    Road,
    Team,
    Worker,
)
from command.selectors import BUILDING_NEAR_POINT_SQL, CELL_FOR_POINT_SQL
from command.services.places import buildings_assign_cells

BATCH = 5000

# Derive what a bulk load leaves out, by the same rules as report_submit (command.selectors).
# (S608: composed of constants only; the table names come from the code.)
POINT_CELL_SQL = "UPDATE {table} t SET grid_cell_id = (" + CELL_FOR_POINT_SQL.format(point="t.location") + ")"  # noqa: S608
POINT_OUTSIDE_SQL = "UPDATE {table} SET outside_grid = grid_cell_id IS NULL"
# 0.0006 degrees of longitude are over 30 m up to about 60° north.
NEAREST_BUILDING_SQL = (
    "UPDATE {table} t SET building_id = ("  # noqa: S608
    + BUILDING_NEAR_POINT_SQL.format(point="t.location", expand="0.0006", metres="30")
    + ")"
)


def _bulk(model: Any, rows: Iterable[Any]) -> int:
    objs = list(rows)
    model.objects.bulk_create(objs, batch_size=BATCH)
    return len(objs)


@transaction.atomic
def dataset_load(
    *,
    teams: Sequence[Team] = (),
    categories: Sequence[Category] = (),
    cells: Sequence[GridCell] = (),
    roads: Sequence[Road] = (),
    buildings: Sequence[Building] = (),
    households: Sequence[Household] = (),
    persons: Sequence[Person] = (),
    businesses: Sequence[Business] = (),
    cameras: Sequence[Camera] = (),
    workers: Sequence[Worker] = (),
    worker_cells: Sequence[tuple[Worker, GridCell]] = (),
    incidents: Sequence[Incident] = (),
    reports: Sequence[Report] = (),
    replace: bool = False,
    nearest_buildings: bool = True,
    derive: bool = True,
    actor_id: int | None = None,
) -> dict[str, int]:
    """Write prepared (unsaved, already checked) objects in bulk, derive building and camera
    cells, and append one ``layer.reloaded`` event per layer touched."""
    if replace:
        with connection.cursor() as cursor:
            # Rows inserted earlier in this transaction have deferred FK checks pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "TRUNCATE command_reportphoto, command_report, command_incident, command_locationping, "
                "command_campaignmark, command_campaigntarget, command_campaignbuilding, command_campaign, "
                "command_householdvisit, command_person, command_business, "
                "command_worker_cells, command_worker, command_household, command_camera, command_building, "
                "command_road, command_gridcell RESTART IDENTITY CASCADE"
            )
    counts = {
        "teams": _bulk(Team, teams),
        "categories": _bulk(Category, categories),
    }
    big = [c for c in cells if c.level == GridCell.Level.BIG]
    small = [c for c in cells if c.level != GridCell.Level.BIG]
    counts["cells"] = _bulk(GridCell, big) + _bulk(GridCell, small)
    counts["roads"] = _bulk(Road, roads)
    counts["buildings"] = _bulk(Building, buildings)
    counts["households"] = _bulk(Household, households)
    counts["persons"] = _bulk(Person, persons)
    counts["businesses"] = _bulk(Business, businesses)
    counts["cameras"] = _bulk(Camera, cameras)
    counts["workers"] = _bulk(Worker, workers)
    Worker.cells.through.objects.bulk_create(
        [Worker.cells.through(worker_id=w.pk, gridcell_id=c.pk) for w, c in worker_cells], batch_size=BATCH
    )
    counts["incidents"] = _bulk(Incident, incidents)
    counts["reports"] = _bulk(Report, reports)
    if derive:
        dataset_derive(nearest_buildings=nearest_buildings)
    for layer, count in counts.items():
        if count and layer not in {"teams", "categories"}:
            event_append(
                kind="layer.reloaded",
                layer=layer,
                object_id="*",
                actor_id=actor_id,
                payload={"id": "*", "properties": {layer: count}},
            )
    return counts


def dataset_derive(*, nearest_buildings: bool = True) -> None:
    """Derive what bulk loads leave out: building and point grid cells, nearest buildings."""
    buildings_assign_cells()
    with connection.cursor() as cursor:
        for table in ("command_camera", "command_incident", "command_report"):
            cursor.execute(POINT_CELL_SQL.format(table=table))
            if table != "command_camera":
                cursor.execute(POINT_OUTSIDE_SQL.format(table=table))
        if nearest_buildings:
            for table in ("command_incident", "command_report"):
                cursor.execute(NEAREST_BUILDING_SQL.format(table=table))


@transaction.atomic
def reference_data_ensure() -> tuple[int, int]:
    """Create or update the teams and categories of command/reference.py (idempotent)."""
    from command.reference import CATEGORIES, TEAMS

    teams = {}
    for team in TEAMS:
        obj, _created = Team.objects.update_or_create(
            code=team["code"], defaults={k: v for k, v in team.items() if k != "code"}
        )
        teams[obj.code] = obj
    for code, zh, en, team_code, priority, sla, icon in CATEGORIES:
        Category.objects.update_or_create(
            code=code,
            defaults={
                "name_zh": zh,
                "name_en": en,
                "default_team": teams[team_code],
                "priority": priority,
                "sla_minutes": sla,
                "icon": icon,
            },
        )
    return len(TEAMS), len(CATEGORIES)
