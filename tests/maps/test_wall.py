"""The control-room wall's reads, services, endpoints and access (no browser: see
test_wall_browser.py for the page itself in Chromium)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone, translation
from rest_framework.test import APIClient

from command.event_payloads import payload_validate
from command.eventlog import latest_seq
from command.models import Event, Incident, Report, Team, Worker
from command.selectors import cameras_covering
from command.services import incidents as services
from command.services.reports import report_submit
from command.wall_selectors import day_start, wall_alarms, wall_kpis, wall_trends, workers_nearest_available
from maps.alarm_sound import PATH as ALARM_PATH
from maps.alarm_sound import alarm_wav_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english() -> Any:
    """Messages are matched in English (zh-Hans is the default language)."""
    with translation.override("en"):
        yield


def _report(
    reference: Any, category: str = "elevator_fault", *, lon: float = 117.0005, lat: float = 39.0005, **kw: Any
) -> Report:
    return report_submit(
        reporter_id=None,
        client_id=uuid.uuid4(),
        category=reference[category],
        location=Point(lon, lat, srid=4326),
        note="测试",
        **kw,
    ).report


def _events(kind: str, incident: Incident) -> list[Event]:
    return list(Event.objects.filter(kind=kind, object_id=str(incident.pk)).order_by("seq"))


# --- selectors ------------------------------------------------------------------------------------


def test_cameras_covering_inside_on_the_apex_and_outside(village):
    # given: camera C1 at (117.0005, 39.0005) looking east (heading 90°, 60° wide, 40 m);
    # C2 at (117.0015, 39.0005) looking south
    c1 = village.cameras[0]
    # then: 20 m east is inside C1's cone; the camera's own spot (the cone's apex, on its edge) too;
    # 20 m west is behind it
    assert [c.code for c in cameras_covering(Point(117.0005 + 20 / 86_000, 39.0005, srid=4326))] == ["C1"]
    assert c1.pk in {c.pk for c in cameras_covering(Point(117.0005, 39.0005, srid=4326))}
    assert list(cameras_covering(Point(117.0005 - 20 / 86_000, 39.0005, srid=4326))) == []


def test_kpis_count_what_the_database_holds(village, reference):
    # given: the village's 6 open hot incidents (neighbour disputes, team volunteer, due in 4 h),
    # one closed, one old (road damage, opened 10 days ago and due long since: overdue), and a
    # sanitation report from today; plus a report accepted and resolved today
    t0 = timezone.now()
    received = max(t0 - timedelta(minutes=60), day_start(t0) + timedelta(seconds=1))  # today, before t0
    accepted, resolved = received + (t0 - received) / 2, received + (t0 - received) * 0.9
    worker = village.worker
    worker_team = Team.objects.get(pk=worker.team_id)
    # road team: the worker's
    report = _report(reference, "parking_dispute", lon=117.0003, lat=39.0006, received_at=received)
    services.incident_accept(incident_id=report.incident_id, worker=worker, at=accepted)
    services.incident_resolve(incident_id=report.incident_id, worker=worker, note="好了", at=resolved)
    Worker.objects.filter(pk=worker.pk).update(on_duty=True)
    # when
    now = timezone.now()
    k = wall_kpis(now)
    # then
    open_rows = Incident.objects.filter(status__in=Incident.OPEN_STATUSES)
    assert k["open_total"] == open_rows.count() == 8  # 6 hot + old + the sanitation report's
    assert k["open_by_status"] == {"new": 8, "dispatched": 0, "accepted": 0, "on_scene": 0}
    assert k["overdue"] == open_rows.filter(due_at__lt=now).count() == 1
    assert sum(k["open_by_team"].values()) == 8
    assert k["reports_today"] == Report.objects.filter(received_at__gte=day_start(now)).count() == 2
    assert k["median_response_s"] == round((accepted - received).total_seconds())
    assert k["median_resolution_s"] == round((resolved - received).total_seconds())
    assert k["workers_on_duty"] == 1
    assert worker_team.code == "road"


def test_trends_bucket_by_hour_and_team(village, reference):
    # given: a report now, the village's incidents (opened now, and 10 days ago)
    _report(reference, "gas_alarm")
    # when
    now = timezone.now()
    t = wall_trends(now)
    # then: 24 hourly buckets, the newest last; every incident opened in the last 24 h counted once
    assert len(t["hours"]) == 24
    total = sum(sum(series) for series in t["per_category"].values())
    assert total == Incident.objects.filter(opened_at__gt=now - timedelta(hours=24), opened_at__lte=now).count()
    assert t["per_category"][str(reference["gas_alarm"].pk)][-1] == 1
    assert t["cell_load"][str(village.cells["A-01"].pk)] >= 1


def test_nearest_workers_by_distance_with_load(village, make_user, reference):
    # given: two workers on duty, 20 m and ~100 m from the spot; the nearer one holds an open incident
    near = village.worker
    far = Worker.objects.get(user=make_user("grid_worker", username="far", team="volunteer"))
    spot = Point(117.0003, 39.0006, srid=4326)
    Worker.objects.filter(pk=near.pk).update(on_duty=True)
    Worker.objects.filter(pk=far.pk).update(
        on_duty=True, last_position=Point(117.0015, 39.0006, srid=4326), last_position_at=timezone.now()
    )
    incident = village.hot_incidents[0]
    op = make_user("operator")
    services.incident_dispatch(incident_id=incident.pk, worker_id=near.pk, actor=op)
    # when
    rows = workers_nearest_available(spot)
    # then
    assert [r["id"] for r in rows] == [near.pk, far.pk]
    assert rows[0]["distance_m"] == 0 and rows[0]["load"] == 1
    assert 90 < rows[1]["distance_m"] < 115 and rows[1]["load"] == 0


# --- services: alarms, priority, team dispatch, the SLA job ---------------------------------------


def test_alarm_is_acknowledged_once_with_an_event(reference, grid, make_user):
    # given: an emergency call (priority 1): an alarm on the wall
    report = _report(reference, "emergency_call")
    assert [a["id"] for a in wall_alarms()] == [report.incident_id]
    op = make_user("operator")
    # when
    with transaction.atomic():
        services.alarm_acknowledge(incident_id=report.incident_id, actor=op)
    # then: gone from the alarms, one event whose payload fits its schema
    assert wall_alarms() == []
    (event,) = _events("alarm.acknowledged", Incident.objects.get(pk=report.incident_id))
    assert payload_validate("alarm.acknowledged", "incidents", event.payload)["id"] == str(report.incident_id)
    # a second acknowledgement says who was first; a police officer may not; a priority-3 incident has none
    with pytest.raises(services.IncidentStateError, match="already acknowledged"):
        services.alarm_acknowledge(incident_id=report.incident_id, actor=op)
    with pytest.raises(PermissionDenied):
        services.alarm_acknowledge(incident_id=report.incident_id, actor=make_user("police"))
    other = _report(reference, "neighbour_dispute", lon=117.0015)
    with pytest.raises(services.IncidentStateError, match="no alarm"):
        services.alarm_acknowledge(incident_id=other.incident_id, actor=op)


def test_priority_change_and_team_dispatch(reference, grid, make_user, teams):
    op = make_user("operator")
    report = _report(reference, "neighbour_dispute")
    # when: raised to priority 1, then dispatched to the road team
    incident = services.incident_priority_set(incident_id=report.incident_id, priority=1, actor=op)
    assert incident.priority == 1 and [a["id"] for a in wall_alarms()] == [incident.pk]
    incident = services.incident_dispatch_team(incident_id=incident.pk, team_id=teams["road"].pk, actor=op)
    # then
    assert (incident.status, incident.worker_id, incident.team_id) == ("dispatched", None, teams["road"].pk)
    actions = [e.payload["properties"]["action"] for e in _events("incident.updated", incident)]
    assert actions == ["priority", "dispatch_team"]
    # bad input: a clear error, nothing written
    with pytest.raises(ValidationError):
        services.incident_priority_set(incident_id=incident.pk, priority=7, actor=op)
    with pytest.raises(ValidationError):
        services.incident_dispatch_team(incident_id=incident.pk, team_id=999_999, actor=op)
    with pytest.raises(PermissionDenied):
        services.incident_priority_set(incident_id=incident.pk, priority=2, actor=make_user("police"))
    assert Incident.objects.get(pk=incident.pk).priority == 1


def test_sla_job_announces_each_overdue_incident_once(reference, grid):
    # given: a report 2 h ago (elevator fault, 60 min SLA: overdue) and one now
    late = _report(reference, received_at=timezone.now() - timedelta(hours=2))
    fresh = _report(reference, "neighbour_dispute", lon=117.0015)
    # when: the job runs twice
    assert services.incidents_overdue_mark() == 1
    assert services.incidents_overdue_mark() == 0
    # then: one incident.overdue event, for the late one only
    assert len(_events("incident.overdue", Incident.objects.get(pk=late.incident_id))) == 1
    assert _events("incident.overdue", Incident.objects.get(pk=fresh.incident_id)) == []
    assert Incident.objects.get(pk=late.incident_id).overdue_at is not None


def test_sla_job_is_one_of_the_periodic_jobs(reference, grid):
    # given: an overdue incident; when: the periodic jobs run once (as Daphne or cron does)
    from command.periodic import periodic_jobs_run

    late = _report(reference, received_at=timezone.now() - timedelta(hours=2))
    with transaction.atomic():
        periodic_jobs_run()
    # then
    assert len(_events("incident.overdue", Incident.objects.get(pk=late.incident_id))) == 1


@pytest.mark.django_db(transaction=True)
def test_sla_job_runs_in_one_process_at_a_time(reference, grid):
    # given: another process holds the job's advisory lock
    _report(reference, received_at=timezone.now() - timedelta(hours=2))
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN; SELECT pg_advisory_xact_lock(%s)", [services.SLA_LOCK_KEY])
            # when / then: this one does nothing (and does not wait)
            assert services.incidents_overdue_mark() == 0
            cursor.execute("COMMIT")
    finally:
        other.close()
    assert services.incidents_overdue_mark() == 1
    assert connection.in_atomic_block is False


# --- endpoints ---------------------------------------------------------------------------------


def test_wall_page_is_for_operators(login, village):
    # the page and its JSON need use_control_room and the incidents layer
    assert login("operator").get("/control/").status_code == 200
    for role in ("police", "grid_worker"):
        client = login(role)
        assert client.get("/control/").status_code == 403
        assert client.get("/control/api/state.json").status_code == 403
    anonymous = Client()
    assert anonymous.get("/control/").status_code == 302
    assert anonymous.get("/control/api/state.json").status_code == 302
    # the old URL moved
    response = login("operator").get("/maps/control-room/")
    assert response.status_code == 301 and response["Location"] == "/control/"


def test_wall_page_is_air_gapped_and_translated(login, village):
    html = login("operator").get("/control/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "事件动态" in html and "今日上报" in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "/static/vendor/echarts/echarts.min.js" in html and "/static/wall/wall.js" in html
    english = login("operator").get("/control/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Incident feed" in english


def test_state_and_desk_answer_from_the_selectors(login, village):
    client = login("operator")
    state = client.get("/control/api/state.json").json()
    assert state["seq"] == latest_seq()  # counts every event up to it (wall.js: a resync at it takes it)
    assert state["kpis"]["open_total"] == Incident.objects.filter(status__in=Incident.OPEN_STATUSES).count()
    assert {row["id"] for row in state["feed"]} >= {i.pk for i in village.hot_incidents}
    rows = client.get("/control/api/incidents.json?hours=24&status=open").json()["incidents"]
    assert {r["id"] for r in rows} == set(
        Incident.objects.filter(
            status__in=Incident.OPEN_STATUSES, opened_at__gt=timezone.now() - timedelta(hours=24)
        ).values_list("pk", flat=True)
    )
    cell = village.cells["A-02"].pk
    rows = client.get(f"/control/api/incidents.json?hours=720&cell={cell}").json()["incidents"]
    assert rows and all(r["grid_cell_id"] == cell for r in rows)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("hours=0", "between"),
        ("hours=abc", "whole number"),
        ("hours=100000", "between"),
        ("status=lost", "status must be"),
        ("category=-1", "between"),
        ("cell=" + "9" * 400, "between"),
    ],
)
def test_desk_bad_filters_are_a_400_with_a_reason(login, village, query, reason):
    response = login("operator").get(f"/control/api/incidents.json?{query}", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and reason in response.json()["detail"]


def test_drawer_has_reports_timeline_cameras_and_workers(login, village, reference, make_user):
    # given: a report next to camera C1 (inside its cone), a worker on duty nearby
    Worker.objects.filter(pk=village.worker.pk).update(on_duty=True)
    report = _report(reference, "gas_alarm", lon=117.0005 + 20 / 86_000, lat=39.0005)
    client = login("operator")
    # when
    d = client.get(f"/control/api/incidents/{report.incident_id}.json").json()
    # then
    assert d["incident"]["alarm"] is True
    assert [r["note"] for r in d["reports"]] == ["***"]  # masked on the wall (docs/privacy.md)
    unmasked = client.get(f"/control/api/incidents/{report.incident_id}.json", {"purpose": "核实警情"}).json()
    assert [r["note"] for r in unmasked["reports"]] == ["测试"]
    assert [c["code"] for c in d["cameras"]] == ["C1"]
    assert d["workers"][0]["id"] == village.worker.pk and d["workers"][0]["display_name"]
    assert [t["kind"] for t in d["timeline"]][:1] in (["incident.created"], ["report"])
    # a missing incident is a 404 like any other
    missing = client.get("/control/api/incidents/99999999.json", HTTP_ACCEPT_LANGUAGE="en")
    assert missing.status_code == 404 and missing.json() == {"detail": "No such incident."}
    huge = client.get("/control/api/incidents/" + "9" * 400 + ".json", HTTP_ACCEPT_LANGUAGE="en")
    assert huge.status_code == 404 and huge.json() == {"detail": "No such incident."}


def test_drawer_masks_what_the_grants_hide(village, reference, make_user):
    # given: a login with the wall and dispatch but without personal data (a custom grant)
    from django.contrib.auth.models import Permission

    user = make_user("police")
    for codename in ("use_control_room", "dispatch_incident"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    Worker.objects.filter(pk=village.worker.pk).update(on_duty=True)
    user.user_permissions.add(Permission.objects.get(codename="view_layer_workers"))
    client = Client()
    client.force_login(user)
    report = _report(reference, "gas_alarm")
    # when
    d = client.get(f"/control/api/incidents/{report.incident_id}.json").json()
    # then: no notes, no names
    assert d["reports"][0]["note"] is None and d["incident"]["note"] is None
    assert d["workers"][0]["display_name"] is None and d["workers"][0]["phone"] is None


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    client.credentials(HTTP_ACCEPT_LANGUAGE="en")
    return client


def test_rest_actions_priority_acknowledge_team_dispatch(reference, grid, make_user, teams):
    op = _api(make_user("operator"))
    report = _report(reference, "emergency_call")
    url = f"/api/v1/incidents/{report.incident_id}/"
    # acknowledge: 200 once, 409 after
    assert op.post(url + "acknowledge/", {}, format="json").status_code == 200
    second = op.post(url + "acknowledge/", {}, format="json")
    assert second.status_code == 409 and "already acknowledged" in second.json()["detail"]
    # priority: 200; out of range: 400 with the field
    assert op.post(url + "priority/", {"priority": 2}, format="json").json()["properties"]["priority"] == 2
    bad = op.post(url + "priority/", {"priority": 9}, format="json")
    assert bad.status_code == 400 and "priority" in bad.json()
    # dispatch: a team, or a worker, not both and not neither
    ok = op.post(url + "dispatch/", {"team_id": teams["road"].pk}, format="json")
    assert ok.status_code == 200 and ok.json()["properties"]["team_id"] == teams["road"].pk
    for body in ({}, {"team_id": teams["road"].pk, "worker_id": 1}):
        response = op.post(url + "dispatch/", body, format="json")
        assert response.status_code == 400 and "worker_id" in str(response.json())
    # a grid worker may do none of it
    worker = _api(make_user("grid_worker", team="road"))
    assert worker.post(url + "priority/", {"priority": 1}, format="json").status_code == 403
    assert worker.post(url + "acknowledge/", {}, format="json").status_code == 403


def test_alarm_sound_is_the_generated_one():
    assert ALARM_PATH.read_bytes() == alarm_wav_bytes()
