"""Volunteer points after a scripted year equal a hand computation; stars; card and leaderboard."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from command.models import CampaignTarget, PointEntry, Worker
from command.services.campaigns import campaign_create, campaign_mark
from command.services.phone_login import resident_ensure
from command.services.points import activity_check_in, activity_create, points_for_year, points_sync_visits
from command.services.requests import request_publish, request_resolve, request_submit, request_take


def at(month: int, day: int = 1) -> datetime:
    return datetime(2026, month, day, 10, 0, tzinfo=UTC)


def test_points_after_a_scripted_year_equal_the_hand_computation(grid, household, make_user, settings) -> None:
    # given the rules: an order 10, a visit 2, an activity 5; stars at 30 / 80 / 150 / 300
    settings.VOLUNTEER_POINTS = {"order": 10, "visit": 2, "activity": 5}
    settings.VOLUNTEER_STAR_THRESHOLDS = [30, 80, 150, 300]
    operator = make_user("operator")
    ana = Worker.objects.get(user=make_user("grid_worker", team="volunteer"))
    ana.cells.add(grid["A-01"])
    bo = Worker.objects.get(user=make_user("grid_worker", team="volunteer"))
    resident = resident_ensure(phone="13912345678")
    # when, through the year: Ana completes 3 orders (one from last December does not count),
    # Bo completes 1 and takes 1 he never resolves
    for i, (worker, when) in enumerate(
        [(ana, at(2)), (ana, at(5)), (ana, at(11)), (bo, at(7)), (ana, at(1) - timedelta(days=20))]
    ):
        request = request_submit(channel="resident_page", title=f"心愿 {i}", requester=resident, at=when)
        request_publish(request_id=request.pk, actor=operator, at=when)
        request_take(request_id=request.pk, worker=worker, at=when)
        request_resolve(request_id=request.pk, worker=worker, note="done", at=when + timedelta(hours=2))
    open_one = request_submit(channel="resident_page", title="未办", requester=resident, at=at(8))
    request_publish(request_id=open_one.pk, actor=operator, at=at(8))
    request_take(request_id=open_one.pk, worker=bo, at=at(8))
    # Ana checks in to 2 activities (twice to the first), Bo to 1; a check-in outside the hours does not count
    first = activity_create(actor=operator, title="植树", starts_at=at(3), ends_at=at(3) + timedelta(hours=4))
    second = activity_create(actor=operator, title="敬老", starts_at=at(9), ends_at=at(9) + timedelta(hours=4))
    for worker, activity in [(ana, first), (ana, first), (ana, second), (bo, second)]:
        activity_check_in(worker=worker, token=activity.token, at=activity.starts_at + timedelta(hours=1))
    from command.services.points import CheckInRefused

    with pytest.raises(CheckInRefused):
        activity_check_in(worker=bo, token=first.token, at=first.ends_at + timedelta(minutes=1))
    # Ana visits the household in a door-to-door campaign (one visited, then absent: one visit)
    campaign = campaign_create(
        actor_id=operator.pk, name="入户", kind="census", target_kind="households", cell_codes=["A-01"]
    )
    target = CampaignTarget.objects.get(campaign=campaign)
    campaign_mark(user=ana.user, target_id=target.pk, client_id=uuid.uuid4(), outcome="visited", marked_at=at(4))
    campaign_mark(user=ana.user, target_id=target.pk, client_id=uuid.uuid4(), outcome="absent", marked_at=at(4, 2))
    assert points_sync_visits() == 1 and points_sync_visits() == 0
    # then: by hand, Ana = 3x10 + 2x5 + 1x2 = 42 (2 stars), Bo = 1x10 + 1x5 = 15 (1 star)
    records = {r.worker.pk: r for r in points_for_year(2026)}
    assert (records[ana.pk].points, records[ana.pk].stars) == (42, 2)
    assert (records[ana.pk].orders, records[ana.pk].activities, records[ana.pk].visits) == (3, 2, 1)
    assert (records[bo.pk].points, records[bo.pk].stars) == (15, 1)
    assert [r.worker.pk for r in points_for_year(2026)] == [ana.pk, bo.pk]
    assert {r.worker.pk: r.points for r in points_for_year(2025)} == {ana.pk: 10}
    assert PointEntry.objects.count() == 9
    # and a volunteer's card has a QR code, the leaderboard the ranks
    client = Client()
    client.force_login(ana.user)
    card = client.get("/field/card/?year=2026").content.decode()
    assert "<svg" in card and ">42<" in card and "★★" in card
    board = client.get("/volunteers/leaderboard/?year=2026").content.decode()
    assert board.index(f'id="w{ana.pk}"') < board.index(f'id="w{bo.pk}"')
    client.force_login(resident)
    assert client.get("/volunteers/leaderboard/").status_code == 404
