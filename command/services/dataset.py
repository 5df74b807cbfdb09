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
    Camera,
    Category,
    GridCell,
    Household,
    Incident,
    Report,
    Road,
    Team,
    Worker,
)
from command.services.places import buildings_assign_cells

BATCH = 5000


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
    cameras: Sequence[Camera] = (),
    workers: Sequence[Worker] = (),
    worker_cells: Sequence[tuple[Worker, GridCell]] = (),
    incidents: Sequence[Incident] = (),
    reports: Sequence[Report] = (),
    replace: bool = False,
    actor_id: int | None = None,
) -> dict[str, int]:
    """Write prepared (unsaved, already checked) objects in bulk, derive building and camera
    cells, and append one ``layer.reloaded`` event per layer touched."""
    if replace:
        with connection.cursor() as cursor:
            cursor.execute(
                "TRUNCATE command_reportphoto, command_report, command_incident, command_locationping, "
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
    counts["cameras"] = _bulk(Camera, cameras)
    counts["workers"] = _bulk(Worker, workers)
    Worker.cells.through.objects.bulk_create(
        [Worker.cells.through(worker_id=w.pk, gridcell_id=c.pk) for w, c in worker_cells], batch_size=BATCH
    )
    counts["incidents"] = _bulk(Incident, incidents)
    counts["reports"] = _bulk(Report, reports)
    if counts["buildings"] or counts["cells"]:
        buildings_assign_cells()
    if counts["cameras"] or counts["cells"]:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE command_camera k SET grid_cell_id = (SELECT c.id FROM command_gridcell c "
                "WHERE c.level = 'cell' AND ST_Covers(c.geom, k.location) ORDER BY c.code LIMIT 1)"
            )
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
