"""``seq`` is gap-free in commit order under concurrent writers (DESIGN.md, "The one write path").

Several writer threads, each on its own database connection, append events in transactions that
stay open for a random while after appending; a reader on another connection polls the log.
With a plain sequence the reader would see seq N+1 committed before N; with the counter row it
must only ever see a gap-free prefix 1..max.
"""

import random
import threading
import time

import pytest
from django.db import connection, connections, transaction

from command.eventlog import event_append
from command.layers import LAYERS
from command.models import Event

WRITERS = 6
EVENTS_PER_WRITER = 40


def _append(object_id: str) -> Event:
    return event_append(
        kind="worker.updated",
        layer="workers",
        object_id=object_id,
        actor_id=None,
        payload={"id": object_id, "geometry": None, "properties": dict.fromkeys(LAYERS["workers"].all_fields)},
    )


def _writer(index: int, errors: list[BaseException]) -> None:
    rng = random.Random(index)
    try:
        for n in range(EVENTS_PER_WRITER):
            with transaction.atomic():
                _append(f"{index}-{n}")
                time.sleep(rng.uniform(0, 0.004))  # hold the transaction open: commits interleave
    except BaseException as exc:  # surfaced in the main thread
        errors.append(exc)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_seq_is_gap_free_in_commit_order_under_concurrent_writers():
    # given
    errors: list[BaseException] = []
    writers = [threading.Thread(target=_writer, args=(i, errors)) for i in range(WRITERS)]
    observed_gaps: list[tuple[int, list[int]]] = []
    snapshots = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal snapshots
        try:
            while not done.is_set():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT seq FROM command_event ORDER BY seq")
                    seqs = [row[0] for row in cursor.fetchall()]
                snapshots += 1
                if seqs and seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                    observed_gaps.append((len(seqs), seqs[-5:]))
        finally:
            connections.close_all()

    reading = threading.Thread(target=reader)
    # when
    reading.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    done.set()
    reading.join(10)
    # then
    assert not errors, errors
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    assert len(seqs) == WRITERS * EVENTS_PER_WRITER
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert snapshots > 10, "the reader must have looked while writers were committing"
    assert observed_gaps == [], f"a reader saw a later seq before an earlier one committed: {observed_gaps[:3]}"


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transaction_leaves_no_gap():
    with transaction.atomic():
        first = _append("a")
    with pytest.raises(RuntimeError), transaction.atomic():
        _append("b")
        raise RuntimeError("roll back")
    with transaction.atomic():
        third = _append("c")
    assert third.seq == first.seq + 1
