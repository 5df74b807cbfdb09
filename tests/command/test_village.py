"""The demo village generator and its loader."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from command.models import (
    Building,
    Business,
    Camera,
    Campaign,
    Event,
    GridCell,
    Household,
    Incident,
    Person,
    Report,
    Worker,
)
from fixtures.village import village_generate

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


def test_same_seed_same_village():
    # given / when
    first, second = village_generate(seed=42, now=NOW), village_generate(seed=42, now=NOW)
    # then
    assert first == second


def test_other_seed_other_village():
    assert village_generate(seed=1, now=NOW).households != village_generate(seed=2, now=NOW).households


def test_village_has_the_promised_size():
    summary = village_generate(now=NOW).summary()
    assert 1500 <= summary["registered_residents"] <= 1900
    assert 2200 <= summary["tenants"] <= 2800
    assert 250 <= summary["buildings"] <= 350
    assert 12 <= summary["cells"] <= 20
    assert 3 <= summary["big_grids"] <= 4
    assert 50 <= summary["cameras"] <= 70
    assert summary["incidents"] > 900


def test_history_spans_ninety_days_with_hotspots():
    village = village_generate(now=NOW)
    ages = [(NOW - i["opened_at"]).days for i in village.incidents]
    assert max(ages) == 89 and min(ages) == 0
    crossing = [i for i in village.incidents if i["category"] == "traffic_accident"]
    assert len(crossing) > 60  # background accidents plus the crossing hotspot


@pytest.mark.django_db
def test_seed_loads_the_village_and_derives_cells():
    # when
    call_command("seed", seed=7)
    # then
    assert Household.objects.count() > 1000
    assert GridCell.objects.filter(level="big").count() == 4
    # every building of the village stands in a cell, and so does every camera
    assert not Building.objects.filter(grid_cell__isnull=True).exists()
    assert not Camera.objects.filter(grid_cell__isnull=True).exists()
    assert Camera.objects.filter(view_cone__isnull=True).count() == 0
    assert Incident.objects.filter(grid_cell__isnull=False).count() == Incident.objects.count()
    assert Report.objects.filter(incident__isnull=True).count() == 0
    assert {w.team.code for w in Worker.objects.select_related("team")} == {
        "security_fire",
        "road",
        "volunteer",
        "sanitation",
    }
    assert set(Event.objects.filter(kind="layer.reloaded").values_list("layer", flat=True)) >= {
        "buildings",
        "incidents",
    }
    # the registry `make demo` shows: businesses (some of a key industry), persons with
    # vulnerable-group flags, and one active door-to-door campaign with targets
    assert Business.objects.count() > 50 and Business.objects.exclude(key_industry="").count() > 10
    assert set(Business.objects.exclude(key_industry="").values_list("key_industry", flat=True)) == {
        c for c, _label in Business.KeyIndustry.choices if c
    }
    assert Person.objects.exclude(vulnerable=[]).count() > 100
    assert {f for p in Person.objects.exclude(vulnerable=[]) for f in p.vulnerable} == set(Household.Vulnerable.values)
    active = Campaign.objects.get(status=Campaign.Status.ACTIVE)
    assert active.total > 0 and active.total == active.pending


@pytest.mark.django_db
def test_seed_twice_replaces_instead_of_duplicating():
    call_command("seed", seed=7)
    count = Building.objects.count()
    call_command("seed", seed=7)
    assert Building.objects.count() == count


@pytest.mark.django_db
def test_seed_if_empty_keeps_loaded_data():
    call_command("seed", seed=7)
    first_id = Building.objects.order_by("pk").first().pk
    call_command("seed", if_empty=True)
    assert Building.objects.order_by("pk").first().pk == first_id


@pytest.mark.django_db
def test_scale_mode_loads_the_requested_counts():
    call_command("seed", buildings=1200, incidents=3000)
    assert Building.objects.count() == 1200
    assert Incident.objects.count() == 3000
    assert not Building.objects.filter(grid_cell__isnull=True).exists()
