"""realtime/wire.py leans on autobahn's and Twisted's internals to trim idle sockets and read
acks on the reactor's turn (docs/benchmarks.md, idle sockets). pyproject.toml holds both to the
series they were tested with; this test says which internal a new release took away, rather
than the product quietly falling back to the slower path (``internals_known``)."""

from __future__ import annotations

from daphne.ws_protocol import WebSocketServerProtocol
from twisted.internet.asyncioreactor import AsyncioSelectorReactor

from realtime.wire import PROTOCOL_INTERNALS, internals_known


def test_daphnes_protocol_has_what_the_trim_and_the_direct_reads_use():
    missing = [name for name in PROTOCOL_INTERNALS if not hasattr(WebSocketServerProtocol, name)]
    assert missing == [], f"autobahn no longer has {missing}: realtime/wire.py falls back to the plain path"
    assert {"_readOrWrite"} <= set(dir(AsyncioSelectorReactor))


def test_an_unknown_protocol_takes_the_plain_path():
    class Other:
        pass

    assert not internals_known(Other())
