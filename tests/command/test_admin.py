"""The admin: every model's pages render, edits go through the services, and the map widget
loads with no request leaving the server."""

from urllib.parse import urlparse

import pytest
from django.contrib.gis.geos import Point, Polygon
from django.urls import reverse

from command import models
from command.services.places import building_save, camera_save

ADMIN_MODELS = [
    models.GridCell,
    models.Road,
    models.Building,
    models.Household,
    models.Camera,
    models.Team,
    models.Worker,
    models.Category,
    models.Incident,
    models.Report,
    models.Event,
    models.PersonalDataAccess,
    models.AccessGrant,
]


@pytest.fixture
def admin_client_logged_in(client, make_user):
    admin = make_user("admin")
    client.force_login(admin)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("model", ADMIN_MODELS, ids=lambda m: m.__name__)
def test_changelist_renders(admin_client_logged_in, model, grid):
    url = reverse(f"admin:command_{model._meta.model_name}_changelist")
    assert admin_client_logged_in.get(url).status_code == 200


@pytest.mark.django_db
def test_camera_added_in_the_admin_gets_its_cone_and_cell(admin_client_logged_in, grid):
    # given: a camera in cell A-01, as the admin form posts it (geometry as GeoJSON in 4326)
    data = {
        "code": "CAM-A1",
        "name": "门口",
        # the widget posts in its map projection, web mercator
        "location": Point(117.0005, 39.0005, srid=4326).transform(3857, clone=True).json,
        "heading": "45",
        "fov": "90",
        "range_m": "40",
        "status": "online",
        "owner": "",
        "stream_url": "",
        "snapshot_url": "",
    }
    # when
    response = admin_client_logged_in.post(reverse("admin:command_camera_add"), data)
    # then
    assert response.status_code == 302, response.content[:2000]
    camera = models.Camera.objects.get(code="CAM-A1")
    assert camera.grid_cell_id == grid["A-01"].pk
    assert camera.view_cone is not None
    assert models.Event.objects.filter(kind="camera.updated", object_id=str(camera.pk)).exists()


@pytest.mark.django_db
def test_building_change_page_uses_the_local_map_widget(admin_client_logged_in, grid):
    building = building_save(footprint=Polygon.from_bbox((117.0002, 39.0002, 117.0004, 39.0004)), address="1号")
    html = admin_client_logged_in.get(reverse("admin:command_building_change", args=[building.pk])).content.decode()
    assert "vendor/ol-7.2.2/ol.js" in html
    assert "cdn.jsdelivr.net" not in html
    assert "ol.source.OSM" not in html


@pytest.mark.django_db
def test_household_pages_in_the_admin_are_masked_and_unmasked_with_a_purpose_logged(admin_client_logged_in, grid):
    # given
    building = building_save(footprint=Polygon.from_bbox((117.0002, 39.0002, 117.0004, 39.0004)), address="1号")
    household = models.Household.objects.create(
        building=building, unit="101", resident_type="registered", members=2, head_name="王伟", phone="13800000000"
    )
    url = reverse("admin:command_household_change", args=[household.pk])
    # when the list and the change page without a purpose are opened
    listing = admin_client_logged_in.get(reverse("admin:command_household_changelist")).content.decode()
    asked = admin_client_logged_in.get(url).content.decode()
    # then the list shows them masked, the page asks for a purpose, and nothing is logged
    assert "王*" in listing and "13800000000" not in listing and "王伟" not in listing
    assert 'name="purpose"' in asked and "13800000000" not in asked
    assert not models.PersonalDataAccess.objects.exists()
    # when it is opened with a purpose, then it shows the data and the view is logged with it
    shown = admin_client_logged_in.get(url, {"purpose": "更正电话"}).content.decode()
    assert "13800000000" in shown
    logged = models.PersonalDataAccess.objects.get(channel="admin", layer="households")
    assert (logged.object_ids, logged.purpose, logged.role) == ([str(household.pk)], "更正电话", "admin")
    assert len(logged.request_id) == 32


@pytest.mark.browser
def test_admin_map_loads_with_the_network_blocked(live_daphne, chromium, make_user):
    # given
    make_user("admin", username="boss", password="a-long-demo-password")
    camera = camera_save(
        code="CAM-B1", name="x", location=Point(117.0005, 39.0005, srid=4326), heading=0, fov=90, range_m=40
    )
    page = chromium.new_page()
    outside: list[str] = []
    failed: list[str] = []

    def route(r):
        if urlparse(r.request.url).hostname != "127.0.0.1":
            outside.append(r.request.url)
            return r.abort()
        return r.continue_()

    page.route("**/*", route)
    page.on("requestfailed", lambda req: failed.append(req.url))
    # when
    page.goto(f"{live_daphne.url}/admin/login/?next=/admin/command/camera/{camera.pk}/change/")
    page.fill("input[name=username]", "boss")
    page.fill("input[name=password]", "a-long-demo-password")
    page.click("input[type=submit]")
    page.wait_for_selector(".dj_map canvas", timeout=15000)
    # then
    assert outside == []
    assert failed == []


# --- every write through a service (issue 11) -------------------------------------------------


def test_writable_admins_go_through_services(rf, django_user_model):
    """A model the admin may add, change or delete must save and delete through a service (its
    event tells the screens and stales the tiles): ModelAdmin's own save/delete write straight
    to the table. A new admin that forgets fails here."""
    from django.contrib import admin as django_admin
    from django.contrib.admin import ModelAdmin

    request = rf.get("/admin/")
    request.user = django_user_model(is_superuser=True, is_staff=True, is_active=True)
    bypassing = []
    for model, model_admin in django_admin.site._registry.items():
        if model._meta.app_label != "command":
            continue
        writes = {
            "save_model": model_admin.has_add_permission(request) or model_admin.has_change_permission(request),
            "delete_model": model_admin.has_delete_permission(request),
            "delete_queryset": model_admin.has_delete_permission(request),
        }
        for method, allowed in writes.items():
            if allowed and getattr(type(model_admin), method) is getattr(ModelAdmin, method):
                bypassing.append(f"{model.__name__}.{method}")
    assert bypassing == []


def _road_form(road, **changes):
    data = {
        "name": road.name,
        "road_class": road.road_class,
        "geom": road.geom.transform(3857, clone=True).json,
    }
    data.update(changes)
    return data


@pytest.mark.django_db(transaction=True)
def test_admin_edits_reach_a_live_screen_and_stale_the_tiles(live_daphne, client, make_user, grid):
    from django.contrib.gis.geos import LineString

    from tests.field_api.conftest import client_for, report_body
    from tests.maps.conftest import tile_of
    from tests.realtime.conftest import user_token
    from tests.realtime.live_client import LiveClient

    operator = make_user("operator", username="watcher")
    client.force_login(make_user("admin", username="editor"))
    road = models.Road.objects.create(
        name="幸福路", road_class="main", geom=LineString((117.0001, 39.0005), (117.0009, 39.0005), srid=4326)
    )
    api = client_for(operator)
    incident_id = (
        client_for(make_user("grid_worker", username="reporter", team="road"))
        .post("/api/v1/reports/", report_body(), format="json")
        .json()["incident"]["id"]
    )
    x, y = tile_of(117.0005, 39.0005, 16)
    tile = f"/maps/tiles/roads/16/{x}/{y}.pbf"
    assert api.get(tile)["X-Tile-Cache"] in {"miss", "stored"}
    assert api.get(tile)["X-Tile-Cache"] == "hit"
    screen = LiveClient(f"{live_daphne.ws_url}/ws/live/", token=user_token(operator))
    try:
        screen.subscribe(["roads", "incidents"])
        # when: the admin renames the road and raises the incident's priority
        answer = client.post(reverse("admin:command_road_change", args=[road.pk]), _road_form(road, name="幸福大道"))
        assert answer.status_code == 302, answer.content[:2000]
        incident = models.Incident.objects.get(pk=incident_id)
        answer = client.post(
            reverse("admin:command_incident_change", args=[incident_id]),
            {"priority": "1", "due_at_0": incident.due_at.date().isoformat(), "due_at_1": "23:00:00"},
        )
        assert answer.status_code == 302, answer.content[:2000]
        # then: the screen hears both, and the road's cached tile is stale
        assert screen.wait_for(lambda c: {e["kind"] for e in c.events} >= {"road.updated", "incident.updated"})
        road_event = next(e for e in screen.events if e["kind"] == "road.updated")
        assert road_event["payload"]["properties"]["name"] == "幸福大道"
        incident_event = next(e for e in screen.events if e["kind"] == "incident.updated")
        assert incident_event["payload"]["properties"]["priority"] == 1
        assert api.get(tile)["X-Tile-Cache"] != "hit"
        # and a delete is an event too
        answer = client.post(reverse("admin:command_road_delete", args=[road.pk]), {"post": "yes"})
        assert answer.status_code == 302
        assert screen.wait_for(lambda c: any(e["kind"] == "record.deleted" for e in c.events))
    finally:
        screen.close()
    assert not models.Road.objects.filter(pk=road.pk).exists()
    assert models.Event.objects.filter(kind="record.deleted", layer="roads", object_id=str(road.pk)).exists()


@pytest.mark.django_db
def test_admin_incident_page_cannot_change_the_status(admin_client_logged_in, grid):
    from tests.field_api.conftest import client_for, report_body

    worker = models.Worker.objects.first()
    assert worker is None  # no worker in this grid: the incident stays new
    from command.services.accounts import user_ensure

    reporter = user_ensure(username="r1", password="pw-for-tests-1", role="grid_worker")
    incident_id = client_for(reporter).post("/api/v1/reports/", report_body(), format="json").json()["incident"]["id"]
    url = reverse("admin:command_incident_change", args=[incident_id])
    incident = models.Incident.objects.get(pk=incident_id)
    answer = admin_client_logged_in.post(
        url,
        {
            "priority": "2",
            "status": "closed",
            "due_at_0": incident.due_at.date().isoformat(),
            "due_at_1": "22:00:00",
        },
    )
    assert answer.status_code == 302, answer.content[:2000]
    incident.refresh_from_db()
    assert incident.status == "new" and incident.priority == 2
    assert models.Event.objects.filter(kind="incident.updated", object_id=str(incident_id)).exists()
