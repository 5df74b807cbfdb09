"""The wall's panels on the server: which panels a viewer's wall has (the layer policy), the
numbers of /control/api/panels.json against hand counts, the home-alarm flag on the banner's
alarms, the home alarm's own generated sound, and the police kept out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from command.layers import layers_for_user
from command.models import AlarmDevice, Category, Report, ServiceRequest
from command.services.alarms import alarm_device_register
from command.services.campaigns import campaign_close, campaign_create
from command.services.hotspots import hotspots_refresh
from command.services.requests import request_submit, requests_mark_overdue
from command.wall_panel_selectors import WALL_PANELS, wall_cells_behind, wall_hotspot_notices, wall_panels_for
from command.wall_selectors import wall_alarms
from maps.alarm_sound import HOME_PATH, PATH, alarm_wav_bytes, home_alarm_wav_bytes
from tests.maps.test_wall_browser import submit
from tests.maps.test_wall_panels_browser import _crashes_at_the_crossing
from tests.registry_support import Registry

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_panels_follow_the_layer_policy(make_user: Callable[..., User]) -> None:
    # given: an operator (every layer) and a police officer (no residents' layer)
    operator, police = make_user("operator"), make_user("police")
    # then: the operator's wall has every panel; the police has no wall, and of the panels'
    # layers holds only the hotspots and cells (the analysis, no residents' data)
    assert [p.name for p in wall_panels_for(layers_for_user(operator))] == [p.name for p in WALL_PANELS]
    police_panels = {p.name for p in wall_panels_for(layers_for_user(police))}
    assert police_panels <= {"hotspots", "cells"}
    assert _client(police).get("/control/").status_code == 403
    answer = _client(police).get("/control/api/panels.json")
    assert answer.status_code == 403 and "requests" not in answer.content.decode()


def test_the_wall_page_mounts_one_script_per_panel_and_the_progress_panels_code(make_user) -> None:
    html = _client(make_user("operator")).get("/control/").content.decode()
    for panel in WALL_PANELS:
        assert f"/static/wall/panels/{panel.name}.js" in html
    assert "/static/maps/campaign-progress.js" in html  # reused, not copied
    assert html.index("/static/wall/wall.js") < html.index("/static/wall/panels/panels.js")
    assert 'id="wall-panels"' in html and 'id="wall-notices"' in html


def test_panel_numbers_equal_a_hand_count(
    registry: Registry, reference: dict[str, Category], make_user: Callable[..., User]
) -> None:
    operator = make_user("operator")
    now = timezone.now()
    # given: three requests (one cancelled later would not count; one past due), two devices
    # (one silent), two campaigns (one closed), and two incidents left past their SLA in A-01
    # (one late incident alone does not flag a cell: command/analysis/cells.py, one incident's slack)
    first = request_submit(channel="phone", title="电梯", actor=operator, building_id=registry.a01_east.pk)
    request_submit(channel="in_person", title="噪音", actor=operator, building_id=registry.a02.pk)
    late = request_submit(
        channel="phone", title="漏水", actor=operator, building_id=registry.a01_west.pk, at=now - timedelta(days=2)
    )
    assert requests_mark_overdue(now=now) == [late.pk]
    household = registry.households["east/102"]
    alarm_device_register(actor=operator, code="SOS-1", kind="sos", household_id=household.pk, heartbeat_seconds=60)
    quiet, _s = alarm_device_register(
        actor=operator, code="GAS-1", kind="gas", household_id=household.pk, heartbeat_seconds=60
    )
    AlarmDevice.objects.filter(pk=quiet.pk).update(status="offline")
    active = campaign_create(actor_id=None, name="普查", kind="census", target_kind="households", cell_codes=["A"])
    closed = campaign_create(actor_id=None, name="旧普查", kind="census", target_kind="households", cell_codes=["A"])
    campaign_close(actor_id=None, campaign=closed)
    submit(reference, "falling_object", 117.0002, 39.0008, received_at=now - timedelta(hours=1))
    submit(reference, "traffic_accident", 117.0008, 39.0002, received_at=now - timedelta(hours=1))
    # when
    numbers: dict[str, Any] = _client(operator).get("/control/api/panels.json").json()
    # then
    open_rows = ServiceRequest.objects.filter(status__in=ServiceRequest.OPEN_STATUSES)
    assert numbers["requests"]["open"] == open_rows.count() == 3
    assert numbers["requests"]["overdue"] == open_rows.filter(overdue=True).count() == 1
    assert numbers["requests"]["by_status"]["submitted"] == 3 and first.status == "submitted"
    assert numbers["home_alarms"] == {"online": 1, "offline": 1, "alarm": 0}
    assert numbers["campaigns"] == [{"id": active.pk, "name": "普查"}]
    assert [c["code"] for c in numbers["cells"]] == ["A-01"]
    assert numbers["cells"][0]["sla_compliance"] == 0.0 and numbers["cells"][0]["sla_due"] == 2


def test_a_home_alarm_is_flagged_on_the_banner(registry: Registry, reference, make_user) -> None:
    operator = make_user("operator")
    # given: an ordinary emergency call, and one from a home SOS button (a report of source alarm)
    ordinary = submit(reference, "emergency_call", 117.0002, 39.0002)
    home = submit(reference, "emergency_call", 117.0015, 39.0005, source=Report.Source.ALARM)
    # then
    flags = {a["id"]: a["home"] for a in wall_alarms()}
    assert flags == {ordinary.incident_id: False, home.incident_id: True}
    assert _client(operator).get("/control/api/state.json").json()["alarms"][0]["home"] is True


def test_the_home_alarm_sound_is_generated_and_distinct() -> None:
    assert HOME_PATH.read_bytes() == home_alarm_wav_bytes()
    assert PATH.read_bytes() == alarm_wav_bytes() != home_alarm_wav_bytes()


def test_hotspot_notices_are_those_announced_lately(grid, reference, make_user) -> None:
    operator = make_user("operator")
    # given: five crashes at one crossing, announced by the hotspot refresh
    _crashes_at_the_crossing(reference, 5)
    (event,) = hotspots_refresh()
    # when
    notices = _client(operator).get("/control/api/panels.json").json()["hotspots"]
    # then: shaped like the event, with its category and count
    assert len(notices) == 1
    props = notices[0]["payload"]["properties"]
    assert (props["category_id"], props["count"], props["trend"]) == (reference["traffic_accident"].pk, 5, "new")
    assert event.payload["properties"]["count"] == 5
    # and a day later they are gone from the wall's opening
    assert wall_hotspot_notices(layers_for_user(operator)["hotspots"], timezone.now() + timedelta(hours=25)) == []


def test_cells_behind_are_computed_once_per_event_and_minute(
    grid, reference, make_user, django_assert_num_queries
) -> None:
    # given: A-01 behind (two incidents past their SLA), asked once
    submit(reference, "falling_object", 117.0002, 39.0008, received_at=timezone.now() - timedelta(hours=1))
    submit(reference, "traffic_accident", 117.0008, 39.0002, received_at=timezone.now() - timedelta(hours=1))
    grant = layers_for_user(make_user("operator"))["cells"]
    now = timezone.now()
    first = wall_cells_behind(grant, now)
    # when: another wall asks in the same minute with nothing new in the event log
    with django_assert_num_queries(1):  # the latest seq; the rest from the shared cache
        again = wall_cells_behind(grant, now)
    # then: the same answer; and after a new event it is computed again
    assert again == first and [c["code"] for c in first] == ["A-01"]
    submit(reference, "sanitation", 117.0015, 39.0005)
    with django_assert_num_queries(3):  # the latest seq, this period's and the period before's statistics
        assert wall_cells_behind(grant, now) == first
