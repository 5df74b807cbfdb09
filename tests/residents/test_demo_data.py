"""The demo village's resident services (fixtures/residents.py): what `make demo` shows, the same
on every seed."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from command.models import AlarmDevice, Notice, NoticePhoto, PointEntry, ServiceRequest, SupervisionTip
from command.services.tips import tips_verify


def _requests() -> list[tuple[str, str, int | None, str]]:
    return list(ServiceRequest.objects.order_by("title").values_list("title", "status", "building_id", "channel"))


@pytest.mark.django_db
def test_the_demo_shows_every_resident_service_and_is_the_same_on_every_seed() -> None:
    # when
    call_command("seed", seed=7)
    # then: requests in every state, one entered by phone
    first = _requests()
    assert {status for _t, status, _b, _c in first} == set(ServiceRequest.Status.values)
    assert "phone" in {channel for *_rest, channel in first}
    assert all(building is not None for _t, _s, building, _c in first)
    # alarm devices: online ones, one offline (missed heartbeats), one that raised an alarm
    statuses = sorted(AlarmDevice.objects.values_list("status", flat=True))
    assert statuses.count("offline") == 1 and statuses.count("alarm") == 1 and statuses.count("online") == 3
    assert AlarmDevice.objects.get(status="alarm").alarms.get().report.incident.priority == 1
    # notices: for everyone, for each big grid, and one for a cell with an image
    assert Notice.objects.filter(target__isnull=True).count() == 1
    assert Notice.objects.filter(target__level="big").count() == 4
    assert NoticePhoto.objects.count() == 1
    # tips, their chain intact; volunteers with points for orders and the activity
    assert SupervisionTip.objects.count() == 3 and tips_verify().ok
    assert set(PointEntry.objects.values_list("kind", flat=True)) == {"order", "activity"}
    # and a second seed gives the same requests (titles, places, states), tips not doubled
    call_command("seed", seed=7)
    assert _requests() == first
    assert SupervisionTip.objects.count() == 3 and tips_verify().ok
