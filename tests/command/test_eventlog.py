"""The event log's read side and wakes: what real-time delivery relies on.

(Gap-free seq in commit order under concurrent writers: tests/command/test_seq_order.py.)
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from command import eventlog
from command.eventlog import (
    WAKE_GROUP,
    EventRecord,
    event_append,
    event_resumable,
    events_after,
    events_prune,
    latest_seq,
    wakes_flush,
)
from command.layers import LAYERS
from command.models import Event


def _append(layer: str = "workers", object_id: str = "1", kind: str = "worker.updated") -> Event:
    """An event of a made-up object whose every field is null (as its layer's schema allows)."""
    return event_append(
        kind=kind,  # type: ignore[arg-type]
        layer=layer,
        object_id=object_id,
        actor_id=None,
        payload={
            "id": object_id,
            "geometry": {"type": "Point", "coordinates": [117.0, 39.0]},
            "properties": dict.fromkeys(LAYERS[layer].all_fields),
        },
    )


@pytest.mark.django_db
def test_wake_goes_out_on_commit_and_not_on_rollback(django_capture_on_commit_callbacks, monkeypatch):
    sent: list[int] = []
    monkeypatch.setattr(eventlog, "wakes_send", lambda wires: sent.extend(w["seq"] for w in wires))
    # when: one transaction commits ...
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        committed = _append()
    # ... and one rolls back
    with (
        django_capture_on_commit_callbacks(execute=True) as rolled_back,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _append(object_id="2")
        raise RuntimeError
    # then
    assert sent == [committed.seq]
    assert rolled_back == []


@pytest.mark.django_db(transaction=True)
def test_event_append_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError, match="inside the writing transaction"):
        _append()


@pytest.mark.django_db(transaction=True)
def test_events_of_a_report_leave_in_one_wake_message(reference, grid):
    # given: a screen-like listener on the wake group, on the real Redis
    import uuid

    from django.contrib.gis.geos import Point

    from command.services.reports import report_submit

    layer = get_channel_layer()

    async def listen_submit_receive() -> dict:
        channel = await layer.new_channel()
        await layer.group_add(WAKE_GROUP, channel)
        from asgiref.sync import sync_to_async

        await sync_to_async(wakes_flush)()  # the grid fixture's wakes are out of the way
        while True:  # skip any earlier wake still in the channel
            await sync_to_async(
                lambda: report_submit(
                    reporter_id=None,
                    client_id=uuid.uuid4(),
                    category=reference["elevator_fault"],
                    location=Point(117.0005, 39.0005, srid=4326),
                )
            )()
            message = await asyncio.wait_for(layer.receive(channel), timeout=10)
            if message["events"][0]["kind"] != "layer.reloaded":
                await layer.group_discard(WAKE_GROUP, channel)
                return message

    # when
    message = async_to_sync(listen_submit_receive)()
    # then: one message, both events, in seq order, each valid against the schema
    kinds = [event["kind"] for event in message["events"]]
    assert kinds == ["incident.created", "report.created"]
    seqs = [event["seq"] for event in message["events"]]
    assert seqs == sorted(seqs) and message["seq"] == seqs[-1]
    for event in message["events"]:
        EventRecord.model_validate(event)


@pytest.mark.django_db
def test_events_after_reads_in_seq_order_with_layer_filter_and_upper_bound():
    with transaction.atomic():
        a = _append(layer="workers")
        b = _append(layer="cameras", kind="camera.updated")
        c = _append(layer="workers")
    assert [e["seq"] for e in events_after(a.seq - 1)] == [a.seq, b.seq, c.seq]
    assert [e["seq"] for e in events_after(a.seq - 1, layers=["workers"])] == [a.seq, c.seq]
    assert [e["seq"] for e in events_after(a.seq, upto_seq=b.seq)] == [b.seq]
    assert [e["seq"] for e in events_after(a.seq - 1, limit=2)] == [a.seq, b.seq]
    assert events_after(c.seq) == []
    assert latest_seq() == c.seq


@pytest.mark.django_db
def test_event_resumable(settings):
    with transaction.atomic():
        first = _append()
        last = _append()
    assert event_resumable(first.seq - 1, latest=last.seq)
    assert event_resumable(last.seq, latest=last.seq)  # nothing to replay
    assert not event_resumable(last.seq + 1, latest=last.seq)  # ahead of the log
    settings.EVENT_RETENTION_HOURS = 0
    assert not event_resumable(first.seq - 1, latest=last.seq)  # older than the window


@pytest.mark.django_db
def test_events_prune_drops_what_is_older_than_the_window():
    with transaction.atomic():
        old = _append()
        new = _append()
    assert events_prune() == 0  # both inside the 72 h window
    assert events_prune(before=timezone.now() + timedelta(seconds=1)) == 2
    assert not Event.objects.filter(seq__in=[old.seq, new.seq]).exists()
    assert not event_resumable(old.seq - 1, latest=new.seq)


@pytest.mark.django_db
def test_events_prune_command(capsys):
    from django.core.management import call_command

    call_command("events_prune")
    assert "events_prune: 0 events deleted" in capsys.readouterr().out


@pytest.mark.django_db
def test_event_schema_forbids_unknown_kinds_and_fields():
    with pytest.raises(ValidationError), transaction.atomic():
        _append(kind="report.deleted")
    with pytest.raises(ValidationError), transaction.atomic():
        event_append(
            kind="worker.updated",
            layer="workers",
            object_id="1",
            actor_id=None,
            payload={"id": "1", "geometry": None, "properties": {}, "secret": 1},
        )
