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
def test_household_pages_in_the_admin_are_logged(admin_client_logged_in, grid):
    # given
    building = building_save(footprint=Polygon.from_bbox((117.0002, 39.0002, 117.0004, 39.0004)), address="1号")
    household = models.Household.objects.create(
        building=building, unit="101", resident_type="registered", members=2, head_name="王伟", phone="13800000000"
    )
    # when
    admin_client_logged_in.get(reverse("admin:command_household_changelist"))
    admin_client_logged_in.get(reverse("admin:command_household_change", args=[household.pk]))
    # then
    logged = list(models.PersonalDataAccess.objects.filter(channel="admin", layer="households").order_by("at"))
    assert [entry.object_ids for entry in logged] == [[str(household.pk)], [str(household.pk)]]


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
