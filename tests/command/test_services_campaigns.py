"""Door-to-door campaigns: targets from an area and a filter; marks counted once per target,
whatever the retries; the counters equal a hand count after a scripted set of visits."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Polygon
from django.core.exceptions import ValidationError
from django.db import connection

from command.event_payloads import payload_validate
from command.models import Campaign, CampaignBuilding, CampaignMark, CampaignTarget, Event
from command.services.campaigns import (
    CampaignClosed,
    CampaignFilter,
    CampaignNotFound,
    MarkConflict,
    campaign_close,
    campaign_create,
    campaign_mark,
)
from tests.registry_support import Registry

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _counts(campaign: Campaign) -> dict[str, int]:
    campaign.refresh_from_db()
    return {s: getattr(campaign, s) for s in ("total", "pending", "visited", "absent", "refused")}


def _hand_count(statuses: dict[int, str], total: int) -> dict[str, int]:
    counted = Counter(statuses.values())
    return {
        "total": total,
        "pending": total - len(statuses),
        "visited": counted["visited"],
        "absent": counted["absent"],
        "refused": counted["refused"],
    }


def test_targets_come_from_the_picked_cells_and_the_filter(registry: Registry, make_user: Callable) -> None:
    operator = make_user("operator")
    everyone = campaign_create(
        actor_id=operator.pk, name="人口普查", kind="census", target_kind="households", cell_codes=["A-01", "A-02"]
    )
    assert everyone.total == 9 and everyone.pending == 9
    elderly = campaign_create(
        actor_id=operator.pk,
        name="独居老人巡访",
        kind="screening",
        target_kind="households",
        cell_codes=["A"],
        filters=CampaignFilter(vulnerable=("elderly_alone",)),
    )
    assert sorted(CampaignTarget.objects.filter(campaign=elderly).values_list("label", flat=True)) == ["1", "102", "2"]
    # a drawn area: only the east building of A-01 (117.0006-117.0008 x 39.0004-39.0006)
    drawn = Polygon.from_bbox((117.0005, 39.0003, 117.0009, 39.0007))
    drawn.srid = 4326
    east = campaign_create(actor_id=operator.pk, name="东楼", kind="other", target_kind="households", area=drawn)
    assert east.total == 4
    assert list(CampaignBuilding.objects.filter(campaign=east).values_list("building_id", "total")) == [
        (registry.a01_east.pk, 4)
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cell_codes": ["Z-99"]}, "cells"),
        ({}, "area"),  # neither drawn nor picked
        ({"cell_codes": ["A-01"], "kind": "party"}, "kind"),
        ({"cell_codes": ["A-01"], "filters": CampaignFilter(vulnerable=("rich",))}, "vulnerable"),
        ({"cell_codes": ["A-01"], "filters": CampaignFilter(industries=("catering",))}, "industries"),
        ({"cell_codes": ["A-01"], "filters": CampaignFilter(vulnerable=("veteran",), resident_type="tenant")}, "area"),
    ],
)
def test_a_bad_campaign_is_refused_and_nothing_is_written(
    registry: Registry, make_user: Callable, kwargs: dict, field: str
) -> None:
    args = {"actor_id": None, "name": "x", "kind": "census", "target_kind": "households", **kwargs}
    with pytest.raises(ValidationError) as refused:
        campaign_create(**args)
    assert field in refused.value.message_dict
    assert not Campaign.objects.exists() and not CampaignTarget.objects.exists()


def test_coverage_equals_a_hand_count_after_scripted_visits_with_repeated_offline_submissions(
    registry: Registry, worker_a01: User, worker_a02: User, make_user: Callable
) -> None:
    # given: a census of both cells (6 households in A-01, 3 in A-02)
    campaign = campaign_create(
        actor_id=make_user("operator").pk, name="普查", kind="census", target_kind="households", cell_codes=["A"]
    )
    targets = {(t.building_id, t.label): t for t in CampaignTarget.objects.filter(campaign=campaign)}
    east, west, a02 = registry.a01_east.pk, registry.a01_west.pk, registry.a02.pk
    # the script: (worker, target, outcome, minutes after T0, the phone's client id)
    ids = [uuid.uuid4() for _ in range(12)]
    script = [
        (worker_a01, (east, "101"), "visited", 0, ids[0]),
        (worker_a01, (east, "101"), "visited", 0, ids[0]),  # offline retry: the same mark
        (worker_a01, (east, "101"), "visited", 0, ids[0]),  # and again
        (worker_a01, (east, "102"), "absent", 1, ids[1]),
        (worker_a01, (east, "102"), "visited", 30, ids[2]),  # came back later: now visited
        (worker_a01, (east, "201"), "refused", 2, ids[3]),
        (worker_a01, (east, "202"), "visited", 40, ids[4]),
        (worker_a01, (east, "202"), "absent", 5, ids[5]),  # an older mark sent late: does not win
        (worker_a01, (west, "1"), "absent", 6, ids[6]),
        (worker_a01, (west, "1"), "absent", 6, ids[6]),  # retry
        (worker_a02, (a02, "1"), "visited", 7, ids[7]),
        (worker_a02, (a02, "2"), "refused", 8, ids[8]),
        (worker_a02, (a02, "2"), "refused", 8, ids[8]),  # retry
    ]
    expected = {
        (east, "101"): "visited",
        (east, "102"): "visited",
        (east, "201"): "refused",
        (east, "202"): "visited",
        (west, "1"): "absent",
        (a02, "1"): "visited",
        (a02, "2"): "refused",
    }
    seq_before = Event.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    # when
    results = [
        campaign_mark(
            user=user,
            target_id=targets[key].pk,
            client_id=client_id,
            outcome=outcome,
            marked_at=T0 + timedelta(minutes=minutes),
        )
        for user, key, outcome, minutes, client_id in script
    ]
    # then: each mark stored once, retries answered with the first
    assert [r.created for r in results].count(False) == 4
    assert CampaignMark.objects.count() == 9
    # the coverage is the hand count, in the campaign and summed over its buildings
    hand = _hand_count({targets[k].pk: s for k, s in expected.items()}, total=9)
    assert _counts(campaign) == hand == {"total": 9, "pending": 2, "visited": 4, "absent": 1, "refused": 2}
    for status in ("total", "pending", "visited", "absent", "refused"):
        assert sum(CampaignBuilding.objects.filter(campaign=campaign).values_list(status, flat=True)) == hand[status]
    east_progress = CampaignBuilding.objects.get(campaign=campaign, building_id=east)
    assert (east_progress.visited, east_progress.refused, east_progress.pending) == (3, 1, 0)
    assert {(t.building_id, t.label): t.status for t in CampaignTarget.objects.filter(campaign=campaign)} == {
        **dict.fromkeys(targets, "pending"),
        **expected,
    }
    # the last progress event carries the final overall coverage, and fits its schema
    last = Event.objects.filter(seq__gt=seq_before, kind="campaign.progress").order_by("-seq").first()
    assert last is not None
    payload_validate("campaign.progress", "campaign_buildings", last.payload)
    assert last.payload["properties"]["campaign_covered"] == hand["visited"] + hand["refused"]
    assert last.payload["properties"]["campaign_total"] == 9


def test_a_mark_is_refused_outside_the_workers_cells_after_closing_and_on_a_reused_id(
    registry: Registry, worker_a01: User, worker_a02: User, make_user: Callable
) -> None:
    operator = make_user("operator")
    campaign = campaign_create(
        actor_id=operator.pk, name="安全检查", kind="safety_check", target_kind="households", cell_codes=["A-01"]
    )
    target = CampaignTarget.objects.filter(campaign=campaign).first()
    assert target is not None
    for outsider in (worker_a02, make_user("police")):
        with pytest.raises(CampaignNotFound):
            campaign_mark(user=outsider, target_id=target.pk, client_id=uuid.uuid4(), outcome="visited")
    client_id = uuid.uuid4()
    campaign_mark(user=worker_a01, target_id=target.pk, client_id=client_id, outcome="visited", marked_at=T0)
    with pytest.raises(MarkConflict):
        campaign_mark(user=worker_a01, target_id=target.pk, client_id=client_id, outcome="refused", marked_at=T0)
    with pytest.raises(ValidationError, match="outcome"):
        campaign_mark(user=worker_a01, target_id=target.pk, client_id=uuid.uuid4(), outcome="maybe")
    campaign_close(actor_id=operator.pk, campaign=campaign)
    with pytest.raises(CampaignClosed):
        campaign_mark(user=worker_a01, target_id=target.pk, client_id=uuid.uuid4(), outcome="absent")
    # a phone that sends its old mark again after the close still gets its receipt
    assert not campaign_mark(
        user=worker_a01, target_id=target.pk, client_id=client_id, outcome="visited", marked_at=T0
    ).created
    assert _counts(campaign)["visited"] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_marks_and_retries_are_counted_exactly(
    registry: Registry, worker_a01: User, worker_a02: User, make_user: Callable
) -> None:
    # given: 9 targets, 3 threads per worker, each thread sending every mark of its worker's
    # cell (the same client ids: retries racing each other)
    campaign = campaign_create(
        actor_id=make_user("operator").pk, name="并发", kind="census", target_kind="households", cell_codes=["A"]
    )
    targets = list(CampaignTarget.objects.filter(campaign=campaign).select_related("grid_cell"))
    marks = {
        t.pk: (worker_a01 if t.grid_cell.code == "A-01" else worker_a02, uuid.uuid4(), ["visited", "refused"][t.pk % 2])
        for t in targets
    }
    errors: list[BaseException] = []

    def work(user: User) -> None:
        try:
            for target_id, (owner, client_id, outcome) in marks.items():
                if owner == user:
                    campaign_mark(user=user, target_id=target_id, client_id=client_id, outcome=outcome, marked_at=T0)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in (worker_a01, worker_a02) * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then
    assert not errors
    assert CampaignMark.objects.count() == 9
    hand = Counter(outcome for _owner, _id, outcome in marks.values())
    assert _counts(campaign) == {
        "total": 9,
        "pending": 0,
        "visited": hand["visited"],
        "absent": 0,
        "refused": hand["refused"],
    }


def test_an_inspection_round_over_the_key_businesses(registry: Registry, worker_a01: User, make_user: Callable) -> None:
    # given: three businesses in the east building, two of a key industry
    from command.services.registry import business_save

    for name, industry, key in (
        ("老王烧烤", "catering", "bottled_gas"),
        ("平安网吧", "entertainment", "crowded_venue"),
        ("小李理发", "services", ""),
    ):
        business_save(building=registry.a01_east, name=name, industry=industry, key_industry=key, contact_phone="")
    # when: a safety check of the key businesses of A-01
    campaign = campaign_create(
        actor_id=make_user("operator").pk,
        name="燃气安全检查",
        kind="safety_check",
        target_kind="businesses",
        cell_codes=["A-01"],
        filters=CampaignFilter(key_only=True),
    )
    # then
    labels = sorted(CampaignTarget.objects.filter(campaign=campaign).values_list("label", flat=True))
    assert labels == ["平安网吧", "老王烧烤"]
    target = CampaignTarget.objects.get(campaign=campaign, label="老王烧烤")
    campaign_mark(user=worker_a01, target_id=target.pk, client_id=uuid.uuid4(), outcome="visited")
    assert _counts(campaign) == {"total": 2, "pending": 1, "visited": 1, "absent": 0, "refused": 0}
