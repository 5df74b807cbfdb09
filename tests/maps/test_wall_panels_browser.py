"""The wall's panels (maps/static/wall/panels/) in headless Chromium against a real Daphne,
PostGIS and Redis, each moved live by events:

- #15: the door-to-door campaign progress on the wall moves as visits are posted from the field app;
- #16: resident requests by building on the map and in the panel, their status changing live,
  overdue flagged; a home alarm raises the banner with its own sound, the drawer shows the
  household and emergency contact (a logged personal-data view), a silent device shows offline;
- #14: a hotspot.raised event shows a notice; a grid cell falling behind is flagged;
- the police view shows none of the residents' data while all of that happens;
- screenshots at 1920×1080 and 3840×2160 with the panels, for a person to look at.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.gis.geos import Point
from django.utils import timezone

from command.models import (
    AlarmDevice,
    Campaign,
    Category,
    GridCell,
    Incident,
    PersonalDataAccess,
    ServiceRequest,
)
from command.services.alarms import alarm_device_register
from command.services.campaigns import campaign_create, campaign_mark
from command.services.dataset import dataset_load
from command.services.hotspots import hotspots_refresh
from command.services.reports import report_submit
from tests.field_api.test_pwa_offline import outside_the_loop
from tests.maps.test_wall_browser import OUTPUT, api_post, token_of, wall_page
from tests.realtime.conftest import session_cookie
from tests.registry_support import Registry
from tests.residents.test_alarms_live import _post as post_alarm
from tests.support import DaphneServer, daphne_server, field_app_login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.slow]

ENV = {"WHITENOISE_USE_FINDERS": "1", "PERIODIC_JOBS_SECONDS": "1"}  # SLA, heartbeat and request jobs every second
PANELS_READY = "() => window.GridWallPanels && GridWallPanels.ready && GridWallPanels.status === 'live'"
PASSWORD = "pw-for-tests-1"


def open_wall(
    chromium: Any, server: DaphneServer, cookie: str, size: tuple[int, int] = (1920, 1080), path: str = "/control/"
) -> Any:
    """The wall (tests/maps/test_wall_browser.py's), live, with its panels loaded."""
    page = wall_page(chromium, server, cookie, size=size, path=path)
    page.wait_for_function(PANELS_READY, timeout=20000)
    return page


def fn(body: str) -> str:
    """A function for wait_for_function (the page's CSP refuses eval of an expression)."""
    return f"() => {{ {body} }}"


# --- #15: campaign progress on the wall, visits from the field app -------------------------------


@pytest.fixture
def census(registry: Registry, worker_a01: User, make_user: Callable[..., User]) -> dict[str, Any]:
    # Made before ``chromium`` starts its event loop. 9 households: 6 in A-01 (2 buildings), 3 in A-02.
    operator = make_user("operator", username="wall-panels-op")
    worker_a01.set_password(PASSWORD)
    worker_a01.save()
    campaign = campaign_create(
        actor_id=None, name="入户普查", kind="census", target_kind="households", cell_codes=["A"]
    )
    return {"campaign": campaign, "cookie": session_cookie(operator)}


def test_campaign_progress_on_the_wall_moves_as_visits_are_posted_from_the_field_app(census, chromium) -> None:
    campaign: Campaign = census["campaign"]
    panel = f'.wp-campaign[data-campaign-id="{campaign.pk}"]'
    paths = f'path[data-campaign-id="{campaign.pk}"]'
    fills_js = f"[...document.querySelectorAll('{paths}')].map(e => [e.dataset.buildingId, e.getAttribute('fill')])"
    with daphne_server(extra_env=ENV) as server:
        # given: the wall, with the campaign's panel (the progress page's code) at 0 % and its 3
        # buildings drawn on the wall's map, grey (not started)
        wall = open_wall(chromium, server, census["cookie"])
        wall.wait_for_function(fn(f"return document.querySelectorAll('{paths}').length === 3;"), timeout=10000)
        wall.wait_for_function(fn(f"return document.querySelector('{panel}').dataset.percent === '0';"), timeout=10000)
        before = dict(wall.evaluate(fills_js))
        # and the A-01 worker's field app in a second page, door-to-door tab
        phone_context = chromium.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
        phone = phone_context.new_page()
        phone.on("pageerror", lambda exc: wall.wall_errors.append(str(exc)))
        field_app_login(phone, server.url, "wang", PASSWORD)
        phone.click("[data-tab=campaigns]")
        phone.wait_for_function(fn("return document.querySelectorAll('#targets li[data-target-id]').length === 6;"))
        # when: a visit is posted from the field app
        phone.click("#targets li[data-target-id] >> nth=0 >> button[data-outcome=visited]")
        # then: the wall's percentage moves (1 of 9) and that household's building changes colour
        wall.wait_for_function(
            fn(f"return document.querySelector('{panel}').dataset.percent === '11.1';"), timeout=10000
        )
        after_one = dict(wall.evaluate(fills_js))
        # when: a refusal (covered too) and a nobody-home (not covered)
        phone.click("#targets li[data-target-id] >> nth=0 >> button[data-outcome=refused]")
        wall.wait_for_function(
            fn(f"return document.querySelector('{panel}').dataset.percent === '22.2';"), timeout=10000
        )
        phone.click("#targets li[data-target-id] >> nth=0 >> button[data-outcome=absent]")
        phone.wait_for_function(
            fn("return document.querySelectorAll('#marks li[data-state=delivered]').length === 3;"), timeout=10000
        )
        wall.wait_for_timeout(1000)  # an absent mark moves no percentage: give it time to show if it wrongly did
        shown = wall.text_content(f"{panel} [data-testid=campaign-percent]")
        errors = wall.wall_errors
        phone_context.close()
        wall.context.close()
    changed = [b for b in before if before[b] != after_one[b]]
    assert set(before.values()) == {"#5f6b7a"}, before  # not started: grey
    assert len(changed) == 1 and after_one[changed[0]] != "#5f6b7a", (before, after_one)
    assert shown == "22.2"
    db = outside_the_loop(lambda: Campaign.objects.get(pk=campaign.pk))
    assert (db.visited, db.refused, db.absent) == (1, 1, 1)
    assert errors == []


# --- #16: resident requests and home alarms ------------------------------------------------------


def _webhook(server: DaphneServer, code: str, secret: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return post_alarm(f"{server.url}/api/v1/alarms/webhook/", code, secret, body)


@pytest.fixture
def residents(registry: Registry, make_user: Callable[..., User]) -> dict[str, Any]:
    """An operator (session and token), a police officer (session), two home alarm devices on the
    east building's household 102 (the elderly man living alone): an SOS button and a gas alarm
    that has gone quiet; before ``chromium``."""
    operator = make_user("operator", username="wall-panels-op")
    police = make_user("police", username="wall-panels-police")
    household = registry.households["east/102"]
    sos, secret = alarm_device_register(
        actor=operator,
        code="SOS-102",
        kind="sos",
        household_id=household.pk,
        heartbeat_seconds=600,
        contact_name="王小红",
        contact_phone="13911112222",
    )
    gas, _gas_secret = alarm_device_register(
        actor=operator, code="GAS-102", kind="gas", household_id=household.pk, heartbeat_seconds=10
    )
    return {
        "operator": operator,
        "cookie": session_cookie(operator),
        "token": token_of(operator),
        "police_cookie": session_cookie(police),
        "registry": registry,
        "sos": sos,
        "secret": secret,
        "gas": gas,
    }


def test_requests_by_building_change_status_live_and_overdue_is_flagged(residents, chromium) -> None:
    registry: Registry = residents["registry"]
    building = registry.a01_east.pk
    marker = f'[data-request-building="b{building}"]'
    with daphne_server(extra_env=ENV) as server:
        wall = open_wall(chromium, server, residents["cookie"])
        # when: an operator enters a phone call's request for the east building
        made = api_post(
            server,
            "/api/v1/requests/",
            residents["token"],
            {"channel": "phone", "title": "电梯停运", "requester_phone": "13800009999", "building_id": building},
        )
        rid = made["id"]
        row = f'#wall-requests [data-request-id="{rid}"]'
        # then: it is on the map at its building and in the panel, status "submitted", counted open
        wall.wait_for_selector(f"{row}[data-status=submitted]", timeout=10000)
        wall.wait_for_selector(f"{marker}[data-count='1'][data-overdue='0']", state="attached", timeout=10000)
        wall.wait_for_function(fn("return document.querySelector('.wp-requests').dataset.open === '1';"), timeout=10000)
        # when: a second request for the same building, and the first is triaged to a team
        second = api_post(
            server,
            "/api/v1/requests/",
            residents["token"],
            {"channel": "in_person", "title": "邻里纠纷", "building_id": building},
        )["id"]
        api_post(server, f"/api/v1/requests/{rid}/triage/", residents["token"], {"category": "elevator_fault"})
        # then: its status changes live, and the building's marker counts both
        wall.wait_for_selector(f"{row}[data-status=triaged]", timeout=10000)
        wall.wait_for_selector(f"{marker}[data-count='2']", state="attached", timeout=10000)
        # when: the second one passes its due time: the periodic job flags it overdue (an event)
        outside_the_loop(
            lambda: ServiceRequest.objects.filter(pk=second).update(due_at=timezone.now() - timedelta(minutes=1))
        )
        # then: flagged on the wall: the row, the building's marker and the overdue count
        wall.wait_for_selector(f'#wall-requests [data-request-id="{second}"].overdue', timeout=15000)
        wall.wait_for_selector(f"{marker}[data-overdue='1']", state="attached", timeout=10000)
        wall.wait_for_function(
            fn("return document.querySelector('.wp-requests').dataset.overdue === '1';"), timeout=10000
        )
        page_text = wall.inner_text("#wall-panels")
        errors = wall.wall_errors
        wall.context.close()
    assert "电梯停运" not in page_text and "13800009999" not in page_text  # personal data stays off the wall
    assert errors == []


def test_a_home_alarm_has_its_own_sound_the_household_logged_and_a_silent_device_shows_offline(
    residents, chromium
) -> None:
    sos: AlarmDevice = residents["sos"]
    gas: AlarmDevice = residents["gas"]
    with daphne_server(extra_env=ENV) as server:
        wall = open_wall(chromium, server, residents["cookie"])
        ordinary_sound = wall.get_attribute("#alarm-sound", "src")
        # when: the SOS button is pressed (a signed call to the webhook)
        status, answer = _webhook(server, sos.code, residents["secret"], {"type": "alarm", "n": 1})
        assert status == 201, answer
        incident_id = answer["incident_id"]
        alarm = f'#alarm-list [data-alarm-id="{incident_id}"]'
        # then: the banner shows it as a home alarm, with the home alarm's own sound
        wall.wait_for_selector(f"{alarm}[data-home='1']", timeout=10000)
        wall.wait_for_function(
            fn("return document.getElementById('alarm-sound').getAttribute('src').endsWith('home-alarm.wav');"),
            timeout=5000,
        )
        # ... and the device raising it is on the map and in the devices panel
        wall.wait_for_selector(f'#wall-devices [data-device-id="{sos.pk}"][data-status=alarm]', timeout=10000)
        # when: the operator opens it from the banner
        wall.click(f"{alarm} a")
        # then: the drawer shows the household and the emergency contact (unmasked: the alarm response)
        wall.wait_for_selector("#drawer-home-alarm [data-field=contact]", timeout=10000)
        contact = wall.inner_text("#drawer-home-alarm")
        # when: the gas alarm misses its heartbeats (its last call 5 minutes ago, every 10 s)
        outside_the_loop(
            lambda: AlarmDevice.objects.filter(pk=gas.pk).update(
                last_heartbeat_at=timezone.now() - timedelta(minutes=5)
            )
        )
        # then: the periodic job marks it offline and the wall shows it, live: list, map, count
        wall.wait_for_selector(f'#wall-devices [data-device-id="{gas.pk}"][data-status=offline]', timeout=15000)
        wall.wait_for_selector(f'path[data-device-id="{gas.pk}"][data-device-status=offline]', state="attached")
        wall.wait_for_function(fn("return document.querySelector('.wp-home_alarms').dataset.offline === '1';"))
        # when: the alarm is acknowledged: the banner clears and the sound goes back to the ordinary one
        wall.click(f'[data-ack="{incident_id}"]')
        wall.wait_for_function(fn("return document.getElementById('alarms').hidden;"), timeout=5000)
        sound_after = wall.get_attribute("#alarm-sound", "src")
        errors = wall.wall_errors
        wall.context.close()
    assert ordinary_sound is not None and ordinary_sound.endswith("/alarm.wav")
    assert sound_after == ordinary_sound
    assert "王小红" in contact and "13911112222" in contact  # the contact, to call
    assert "王老汉" in contact  # the household's head: the elderly man living alone
    logged = outside_the_loop(
        lambda: list(
            PersonalDataAccess.objects.filter(username="wall-panels-op", purpose="alarm response").values_list(
                "layer", flat=True
            )
        )
    )
    assert {"alarm_devices", "households"} <= set(logged)
    assert errors == []


# --- #14: hotspot notices and cells falling behind -----------------------------------------------


@pytest.fixture
def operator_cookie(grid: dict[str, GridCell], reference: dict[str, Category], make_user: Callable[..., User]) -> str:
    return session_cookie(make_user("operator", username="wall-panels-op"))


def _crashes_at_the_crossing(reference: dict[str, Category], n: int) -> None:
    """``n`` traffic accidents within ~10 m in A-02 (a hotspot from 5 on), opened over the last hours,
    each resolved in time."""
    now = timezone.now()
    cat = reference["traffic_accident"]
    dataset_load(
        incidents=[
            Incident(
                category=cat,
                status="resolved",
                priority=cat.priority,
                location=Point(117.0015 + 0.00002 * i, 39.0005, srid=4326),
                opened_at=now - timedelta(hours=3 + i),
                last_report_at=now - timedelta(hours=3 + i),
                resolved_at=now - timedelta(hours=2 + i),
                due_at=now - timedelta(hours=1 + i),
                updated_at=now,
            )
            for i in range(n)
        ]
    )


def test_a_hotspot_notice_and_a_cell_falling_behind_are_flagged_live(operator_cookie, reference, chromium) -> None:
    with daphne_server(extra_env=ENV) as server:
        wall = open_wall(chromium, server, operator_cookie)
        wall.wait_for_selector(".wp-cells .wp-empty:not([hidden])", timeout=10000)  # no cell behind yet
        # when: five crashes at one crossing and the hotspot refresh (cron's analysis_refresh)
        outside_the_loop(lambda: _crashes_at_the_crossing(reference, 5))
        raised = outside_the_loop(hotspots_refresh)
        assert len(raised) == 1
        # then: a notice on the wall, and its hull outlined on the map
        notice = f'.wall-notice[data-hotspot-id="{raised[0].object_id}"]'
        wall.wait_for_selector(f"{notice}[data-trend=new]", timeout=10000)
        wall.wait_for_selector("path.gc-hotspot-raised", state="attached")
        notice_text = wall.inner_text(notice)
        # and a wall opened afterwards shows it too (announced in the last 24 h)
        later = open_wall(chromium, server, operator_cookie)
        later.wait_for_selector(".wall-notice[data-trend=new]", timeout=10000)
        later_text = later.inner_text(".wall-notice")
        later.context.close()

        # when: a falling object (30 min SLA) and a road accident (20 min) reported an hour ago in
        # A-01 are not dealt with in time (one late incident alone does not flag a cell)
        def late_report(category: str, lon: float, lat: float) -> Any:
            return report_submit(
                reporter_id=None,
                client_id=uuid.uuid4(),
                category=reference[category],
                location=Point(lon, lat, srid=4326),
                note=category,
                received_at=timezone.now() - timedelta(hours=1),
            )

        outside_the_loop(lambda: late_report("traffic_accident", 117.0008, 39.0002))
        late = outside_the_loop(lambda: late_report("falling_object", 117.0002, 39.0008))
        # then: A-01 is flagged behind: outlined on the map and listed
        a01 = outside_the_loop(lambda: GridCell.objects.get(code="A-01").pk)
        wall.wait_for_selector(f'#wall-cells-behind [data-cell-id="{a01}"]', timeout=15000)
        wall.wait_for_selector('.leaflet-overlay-pane path[data-behind="1"]', state="attached")
        behind_text = wall.inner_text(f'#wall-cells-behind [data-cell-id="{a01}"]')
        # when: the operator dismisses the notice
        wall.click(f"{notice} button")
        wall.wait_for_selector(notice, state="detached")
        errors = wall.wall_errors
        wall.context.close()
    assert late.report.incident_id is not None
    assert "交通事故" in notice_text and "5" in notice_text
    assert "交通事故" in later_text and "5" in later_text
    assert "A-01" in behind_text
    assert errors == []


# --- police: none of the residents' data in any channel ------------------------------------------


def test_the_police_view_shows_none_of_the_residents_data(residents, chromium) -> None:
    registry: Registry = residents["registry"]
    secrets = ["王老汉", "王小红", "13911112222", "电梯停运", "13800009999", "入户普查", "SOS-102"]
    with daphne_server(extra_env=ENV) as server:
        # given: residents' data moving: a campaign, a request, a home alarm
        outside_the_loop(
            lambda: campaign_create(
                actor_id=None, name="入户普查", kind="census", target_kind="households", cell_codes=["A"]
            )
        )
        context = chromium.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        context.add_cookies([{"name": "sessionid", "value": residents["police_cookie"], "url": server.url}])
        page = context.new_page()
        seen: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: seen.append(str(payload))))
        page.goto(server.url + "/police/")
        page.wait_for_function(fn("return document.documentElement.dataset.live === 'live';"), timeout=20000)
        api_post(
            server,
            "/api/v1/requests/",
            residents["token"],
            {
                "channel": "phone",
                "title": "电梯停运",
                "requester_phone": "13800009999",
                "building_id": registry.a01_east.pk,
            },
        )
        status, answer = _webhook(server, residents["sos"].code, residents["secret"], {"type": "alarm", "n": 2})
        assert status == 201, answer
        # then: the police map shows the alarm's incident (incidents are granted) ...
        page.wait_for_function(fn("return GridMapIncidents.count() >= 1;"), timeout=10000)
        # ... and, asked directly, the panels, the wall and the residents' layers answer no
        answers = {
            path: page.evaluate("(path) => fetch(path, {credentials: 'same-origin'}).then(r => r.status)", path)
            for path in (
                "/control/",
                "/control/api/panels.json",
                "/maps/layers/requests.geojson",
                "/maps/layers/alarm_devices.geojson",
                "/maps/layers/campaign_buildings.geojson",
                "/maps/layers/households.geojson",
                f"/api/v1/incidents/{answer['incident_id']}/alarms/",
            )
        }
        html = page.content()
        context.close()
    assert all(code in (403, 404) for code in answers.values()), answers
    for secret in secrets:
        assert secret not in html, secret
        assert not any(secret in frame for frame in seen), secret


# --- screenshots with the panels ------------------------------------------------------------------


def test_wall_panels_screenshots_at_both_sizes(residents, reference, chromium) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    registry: Registry = residents["registry"]
    outside = outside_the_loop
    campaign = outside(
        lambda: campaign_create(
            actor_id=None, name="独居老人巡访", kind="screening", target_kind="households", cell_codes=["A"]
        )
    )
    targets = outside(lambda: list(campaign.targets.order_by("pk")[:4]))
    for outcome, target in zip(("visited", "refused", "visited", "absent"), targets, strict=True):
        outside(
            lambda t=target, o=outcome: campaign_mark(
                user=residents["operator"], target_id=t.pk, client_id=uuid.uuid4(), outcome=o
            )
        )
    outside(
        lambda: AlarmDevice.objects.filter(pk=residents["gas"].pk).update(
            last_heartbeat_at=timezone.now() - timedelta(minutes=5)
        )
    )
    shots = []
    with daphne_server(extra_env=ENV) as server:
        for _i, body in enumerate(
            [
                {"channel": "phone", "title": "电梯停运", "building_id": registry.a01_east.pk},
                {"channel": "in_person", "title": "楼道灯坏", "building_id": registry.a01_east.pk},
                {"channel": "phone", "title": "噪音扰民", "building_id": registry.a02.pk},
            ]
        ):
            api_post(server, "/api/v1/requests/", residents["token"], body)
        for name, size, path in (
            ("wall-panels-1920x1080", (1920, 1080), "/control/"),
            ("wall-panels-3840x2160", (3840, 2160), "/control/"),
            ("desk-panels-1920x1080", (1920, 1080), "/control/?mode=desk"),
        ):
            page = open_wall(chromium, server, residents["cookie"], size=size, path=path)
            if not shots:  # once: the live parts arrive while the first wall watches
                _webhook(server, residents["sos"].code, residents["secret"], {"type": "alarm", "n": 3})
                outside(lambda: _crashes_at_the_crossing(reference, 5))
                outside(hotspots_refresh)
            page.wait_for_selector("#alarm-list [data-home='1']", timeout=10000)
            page.wait_for_selector("#wall-devices [data-status=offline]", timeout=15000)
            page.wait_for_selector(".wp-campaign[data-percent]", timeout=10000)
            if not shots:
                page.wait_for_selector(".wall-notice", timeout=10000)
            if "desk" in name:
                page.wait_for_selector("#desk-rows tr", timeout=10000)
            else:
                page.wait_for_function(fn("return document.querySelectorAll('#chart-hourly canvas').length > 0;"))
            page.wait_for_function(fn("return GridWall.mapLoaded === true;"))
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1000)  # the map's fit and the notice's slide-in, for the eye
            shot = OUTPUT / f"{name}.png"
            page.screenshot(path=str(shot))
            shots.append(shot)
            errors = page.wall_errors
            page.context.close()
            assert errors == []
    for shot in shots:
        assert shot.stat().st_size > 50_000, shot
