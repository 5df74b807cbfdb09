"""The incident steps: each allowed from the right status by the right person, each stamped
and announced with one incident.updated event."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from command.models import Event, Incident, Worker
from command.services import incidents as svc
from command.services.reports import report_submit
from command.services.workers import NotOnDuty, Ping, worker_duty_set, worker_pings_record


@pytest.fixture
def road_worker(make_user, grid):
    worker = Worker.objects.get(user=make_user("grid_worker", username="wang", team="road"))
    worker.cells.set([grid["A-01"]])
    return worker


@pytest.fixture
def incident(reference, grid, road_worker):
    return report_submit(
        reporter_id=None,
        client_id=uuid.uuid4(),
        category=reference["road_damage"],
        location=Point(117.0005, 39.0005, srid=4326),
    ).report.incident


def actions(incident):
    return [
        e.payload["properties"]["action"]
        for e in Event.objects.filter(layer="incidents", object_id=str(incident.pk), kind="incident.updated").order_by(
            "seq"
        )
    ]


def test_accept_arrive_resolve_stamps_times_and_events(incident, road_worker):
    # given: dispatched to the cell's road worker at t0
    t0 = incident.dispatched_at
    assert incident.worker_id == road_worker.pk
    # when
    svc.incident_accept(incident_id=incident.pk, worker=road_worker, at=t0 + timedelta(minutes=2))
    svc.incident_arrive(incident_id=incident.pk, worker=road_worker, at=t0 + timedelta(minutes=9))
    done = svc.incident_resolve(
        incident_id=incident.pk, worker=road_worker, note="已修补", at=t0 + timedelta(minutes=30)
    )
    # then: response and resolution times are measurable
    assert done.status == Incident.Status.RESOLVED
    assert done.accepted_at - t0 == timedelta(minutes=2)
    assert done.arrived_at - t0 == timedelta(minutes=9)
    assert done.resolved_at - t0 == timedelta(minutes=30)
    assert done.resolution_note == "已修补"
    assert actions(incident) == ["accept", "arrive", "resolve"]


def test_wrong_order_is_refused_without_writing(incident, road_worker):
    with pytest.raises(svc.IncidentStateError):
        svc.incident_arrive(incident_id=incident.pk, worker=road_worker)
    with pytest.raises(svc.IncidentStateError):
        svc.incident_resolve(incident_id=incident.pk, worker=road_worker, note="x")
    assert Incident.objects.get(pk=incident.pk).status == Incident.Status.DISPATCHED
    assert actions(incident) == []


def test_worker_of_another_team_and_cell_cannot_see_or_act(incident, make_user):
    other = Worker.objects.get(user=make_user("grid_worker", username="chen", team="sanitation"))
    with pytest.raises(svc.IncidentNotFound):
        svc.incident_accept(incident_id=incident.pk, worker=other)


def test_hand_back_returns_to_team_with_reason(incident, road_worker):
    svc.incident_accept(incident_id=incident.pk, worker=road_worker)
    back = svc.incident_hand_back(incident_id=incident.pk, worker=road_worker, reason="需要专业设备")
    assert back.status == Incident.Status.NEW
    assert back.worker_id is None
    event = Event.objects.filter(layer="incidents", object_id=str(incident.pk)).latest("seq")
    assert event.payload["properties"]["reason"] == "需要专业设备"
    with pytest.raises(ValidationError):
        svc.incident_hand_back(incident_id=incident.pk, worker=road_worker, reason="  ")


def test_dispatch_close_cancel_need_the_permission(incident, make_user, road_worker):
    worker_user = road_worker.user
    operator = make_user("operator")
    with pytest.raises(PermissionDenied):
        svc.incident_cancel(incident_id=incident.pk, actor=worker_user, reason="误报")
    other = Worker.objects.get(user=make_user("grid_worker", username="sun", team="volunteer"))
    moved = svc.incident_dispatch(incident_id=incident.pk, worker_id=other.pk, actor=operator)
    assert (moved.worker_id, moved.team_id, moved.status) == (other.pk, other.team_id, "dispatched")
    closed = svc.incident_close(incident_id=incident.pk, actor=operator, note="已核实")
    assert closed.status == Incident.Status.CLOSED
    with pytest.raises(svc.IncidentStateError):
        svc.incident_cancel(incident_id=incident.pk, actor=operator, reason="too late")
    assert actions(incident) == ["dispatch", "close"]


def test_pings_update_last_position_and_track(road_worker):
    # given
    now = timezone.now()
    pings = [
        Ping(location=Point(117.0001 * (1 + i * 1e-6), 39.0005, srid=4326), recorded_at=now - timedelta(seconds=30 - i))
        for i in range(3)
    ]
    # when: the batch, then the same batch again (a retry)
    first = worker_pings_record(worker=road_worker, pings=pings, now=now)
    worker_pings_record(worker=road_worker, pings=pings, now=now)
    # then
    road_worker.refresh_from_db()
    assert first.accepted == 3
    assert road_worker.pings.count() == 3
    assert road_worker.last_position_at == pings[-1].recorded_at
    assert Event.objects.filter(kind="worker.moved", object_id=str(road_worker.pk)).count() == 1


def test_old_track_is_pruned_and_off_duty_pings_refused(road_worker, settings):
    settings.WORKER_TRACK_RETENTION_DAYS = 1
    now = timezone.now()
    worker_pings_record(
        worker=road_worker,
        pings=[Ping(location=Point(117, 39, srid=4326), recorded_at=now - timedelta(hours=20))],
        now=now - timedelta(hours=0),
    )
    worker_pings_record(
        worker=road_worker,
        pings=[Ping(location=Point(117, 39, srid=4326), recorded_at=now)],
        now=now + timedelta(hours=5),
    )
    assert road_worker.pings.count() == 1
    worker_duty_set(worker=road_worker, on_duty=False)
    with pytest.raises(NotOnDuty):
        worker_pings_record(worker=road_worker, pings=[Ping(location=Point(117, 39, srid=4326), recorded_at=now)])
