"""One websocket frame, built once, written to many sockets.

A broadcast sends the same bytes to every screen with the same view of an event (and every
heartbeat is the same frame for every screen at the same ``seq``), so the frame is built once
(``text_frame``, cached by the caller) and written as it is.

Through ASGI each send costs Daphne, per socket: the ``websocket.send`` message, autobahn's
``sendMessage`` (header, stats, debug-log arguments built eagerly) and Twisted's write, which
never writes at once: it buffers, registers the socket with the event loop (an ``epoll_ctl``),
writes on the next turn of the loop and unregisters it (another ``epoll_ctl``). Profiled during a
fan-out to 300 screens that was ~0.9 ms of the process's time per delivery, most of a
broadcast's cost; a raw ``websockets`` server writes at once (one ``send`` syscall).

``direct_writer`` gives a consumer served by Daphne a function that writes a ready frame the
way the raw server does: straight to the socket when nothing is waiting in Twisted's or
autobahn's buffers (otherwise behind what waits, through Twisted's buffer, so order is kept),
and anything the socket did not take goes to Twisted's buffer. It answers ``False`` when the
socket is not in the plain open state (closing, compression negotiated, TLS in Daphne itself):
the caller then sends through ASGI as before. With another ASGI server (or channels' test
communicator) there is no direct writer and every send goes through ASGI.
"""

from __future__ import annotations

import functools
import struct
import time
import types
from collections import deque
from collections.abc import Callable
from typing import Any

Writer = Callable[[bytes], bool]

TEXT_FIN = 0x81  # FIN + opcode 1 (text); a server's frames are not masked (RFC 6455 5.1)


def text_frame(text: str) -> bytes:
    """``text`` as one unfragmented, unmasked websocket text frame."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = bytes((TEXT_FIN, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", TEXT_FIN, 126, size)
    else:
        header = struct.pack("!BBQ", TEXT_FIN, 127, size)
    return header + payload


def daphne_protocol(base_send: Any) -> Any | None:
    """The autobahn protocol of the socket behind ``base_send`` when Daphne serves it, else None.
    Daphne gives the application ``functools.partial(server.handle_reply, protocol)``; a
    wrapper's ``send`` (channels' session middleware) has the next ``send`` in ``real_send``."""
    send = base_send
    while not isinstance(send, functools.partial):
        send = getattr(getattr(send, "__self__", None), "real_send", None)
        if send is None:
            return None
    if not send.args:
        return None
    try:
        from autobahn.websocket.protocol import WebSocketProtocol
    except ImportError:  # not served by Daphne
        return None
    return send.args[0] if isinstance(send.args[0], WebSocketProtocol) else None


def direct_writer(protocol: Any) -> Writer:
    """A frame writer for ``protocol``'s socket (see the module's docstring)."""
    from autobahn.websocket.protocol import WebSocketProtocol

    open_state, ground = WebSocketProtocol.STATE_OPEN, WebSocketProtocol.SEND_STATE_GROUND

    def write(frame: bytes) -> bool:
        transport = protocol.transport
        if (
            protocol.state != open_state
            or protocol.send_state != ground
            or protocol.send_queue
            or protocol._perMessageCompress is not None
            or protocol.autoFragmentSize
            or protocol.trackedTimings
            or transport is None
            or getattr(transport, "TLS", False)
            or not getattr(transport, "connected", False)
            or getattr(transport, "disconnecting", True)
            or getattr(transport, "_writeDisconnected", True)
        ):
            return False
        if transport.dataBuffer or transport._tempDataLen:
            transport.write(frame)  # behind what is waiting: Twisted writes it in order
            return True
        try:
            sent = transport.socket.send(frame)
        except OSError:  # would block, or the peer is gone: Twisted's write finds out and closes
            sent = 0
        if sent < len(frame):
            transport.write(frame[sent:])
        return True

    return write


def direct_reader(protocol: Any, on_text: Callable[[str], bool]) -> None:
    """Hand each text message of ``protocol``'s socket to ``on_text`` first, on the reactor's
    turn: when it answers True (it dealt with the message: a screen's ack), the message is not
    queued for the application. The rest (and everything while Daphne has the socket muted)
    go through ASGI as before. Per ack that saves Daphne's message dict and queue, a turn of the
    consumer's task and channels' dispatch (idle CPU, docs/benchmarks.md)."""
    daphne_on_message = protocol.onMessage

    def on_message(payload: bytes, is_binary: bool) -> None:
        if not is_binary and not protocol.muted:
            try:
                text = payload.decode("utf8")
            except UnicodeDecodeError:  # autobahn validated it; Daphne's path answers as it always did
                text = None
            if text is not None and on_text(text):
                protocol.last_ping = time.time()  # as Daphne does for every message it takes
                return
        daphne_on_message(payload, is_binary)

    protocol.onMessage = on_message


# What autobahn and Daphne keep on an open socket that only its handshake used: the request's
# raw bytes, parsed headers and parameters, the response, the offered protocols and extensions.
HANDSHAKE_ATTRIBUTES = (
    "http_request_data",
    "http_status_line",
    "http_headers",
    "http_request_uri",
    "http_request_path",
    "http_request_params",
    "http_request_host",
    "http_response_data",
    "websocket_origin",
    "websocket_protocols",
    "websocket_extensions",
    "_wskey",
    "clean_headers",
    "application_deferred",
    "handshake_deferred",
)


class SendQueue(list[Any]):
    """autobahn's queue of frames to send in order (sync sends, fragments; Daphne makes
    neither), with what autobahn calls on it (``append``, ``popleft``, ``len``): an empty list
    is 56 bytes, an empty deque 760."""

    def popleft(self) -> Any:
        return self.pop(0)


class _RequestPath:
    """What Daphne reads of the handshake's request once the socket is open: its path (logs)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


# What socket_trim, direct_reader and their reads lean on of autobahn's protocol (pyproject.toml
# holds autobahn and Twisted to the series they were tested with). A release without one of them
# gets the plain path: nothing trimmed, every message through ASGI; tests/realtime/test_wire.py
# fails loudly instead, so an upgrade is a decision, not a surprise.
PROTOCOL_INTERNALS = ("_dataReceived", "_onMessage", "onMessageEnd", "onMessage", "CONFIG_ATTRS")
OPEN_SOCKET_INTERNALS = ("failedByMe", "trackedTimings", "transport", "factory", "muted")


def internals_known(protocol: Any) -> bool:
    """Does ``protocol`` (an open socket) have what ``socket_trim`` and ``direct_reader`` use?"""
    cls = type(protocol)
    return all(hasattr(cls, name) for name in PROTOCOL_INTERNALS) and all(
        hasattr(protocol, name) for name in OPEN_SOCKET_INTERNALS
    )


def socket_trim(protocol: Any) -> None:
    """Let go of what an open socket served by Daphne keeps but no longer uses, so that
    thousands of idle screens cost less memory each (docs/benchmarks.md, idle sockets):

    - the HTTP request it was upgraded from: Twisted's ``HTTPChannel`` stays registered as the
      transport's producer, holding the request, its headers and body buffer (Daphne resumes
      reading right after the upgrade; nothing pauses a websocket through it);
    - the handshake's data (``HANDSHAKE_ATTRIBUTES``), and the request but for its path;
    - the empty deque of frames waiting to be sent in order (a ``SendQueue`` instead);
    - autobahn's copy of each of the factory's settings on every connection (``CONFIG_ATTRS``;
      autobahn copies one only when the protocol has no such attribute): the socket becomes an
      instance of a subclass of its protocol made once per factory, with the factory's settings
      as class attributes, so it keeps only values that differ, and the sockets after it are
      made of that subclass and copy none;

    then the instance's attribute table is rebuilt at its new size (a dict does not shrink).
    Reads cost less too: no eager debug-log line per read (``_data_received``), no Deferreds
    per message for observers there are none of (``_message_end``), no logging context per
    read (``_read_directly``)."""
    transport = protocol.transport
    producer = getattr(transport, "producer", None)
    if producer is not None and type(producer).__name__ == "HTTPChannel":
        transport.unregisterProducer()
    state = protocol.__dict__
    for name in HANDSHAKE_ATTRIBUTES:
        state.pop(name, None)
    if type(state.get("send_queue")) is deque and not state["send_queue"]:
        state["send_queue"] = SendQueue()
    request = state.get("request")
    if request is not None and not isinstance(request, _RequestPath):
        state["request"] = _RequestPath(request.path)
    cls: Any = _settings_class(protocol)
    if type(protocol) is not cls:
        protocol.__class__ = cls
    for name in cls.CONFIG_ATTRS:
        if name in state and state[name] is getattr(cls, name):
            del state[name]
    protocol.__dict__ = dict(state)
    _read_directly(protocol)


def _data_received(protocol: Any, data: bytes) -> None:
    """autobahn's ``dataReceived`` without its debug-log line, whose arguments (the method's
    name coloured with click, the peer) it builds eagerly for every read: ~10 % of an idle
    Daphne's CPU, for a line that is never written."""
    protocol._dataReceived(data)


def _message_end(protocol: Any) -> None:
    """autobahn's ``onMessageEnd`` when nothing observes the socket's messages (Daphne's
    sockets: no ``on("message")`` listener, no parent): the message is handed on as autobahn
    does, without firing the "message" event, which makes and gathers Deferreds for no one on
    every message. With an observer, autobahn's own."""
    listeners = protocol._listeners
    if (listeners and listeners.get("message")) or getattr(protocol, "_parent", None) is not None:
        protocol.gridcommand_base.onMessageEnd(protocol)
        return
    if not protocol.failedByMe:
        payload = b"".join(protocol.message_data)
        if protocol.trackedTimings:
            protocol.trackedTimings.track("onMessage")
        protocol._onMessage(payload, protocol.message_is_binary)
    protocol.message_data = None


def _read_directly(protocol: Any) -> None:
    """Twisted's asyncio reactor calls a socket's ``doRead`` through ``callWithLogger`` (a
    logging context made of two dicts, four calls deep, on every read); the socket's reader is
    registered with the loop again without it. Twisted registers it as before whenever it stops
    and starts reading."""
    transport = protocol.transport
    reactor = getattr(transport, "reactor", None)
    loop = getattr(reactor, "_asyncioEventloop", None)
    read_or_write = getattr(reactor, "_readOrWrite", None)
    readers = getattr(reactor, "_readers", None)
    if loop is None or read_or_write is None or not isinstance(readers, dict) or transport not in readers:
        return
    fd = readers[transport]
    if fd == transport.fileno():
        loop.add_reader(fd, read_or_write, transport, True)


def _settings_class(protocol: Any) -> type:
    """The subclass of ``protocol``'s class that holds its factory's settings (made once)."""
    factory = protocol.factory
    cls: type | None = factory.__dict__.get("protocol")
    if cls is None or not getattr(cls, "gridcommand_settings", False):
        base = type(protocol)
        # a function (a setting that is a callable) stays one: not bound as a method
        settings = {
            name: staticmethod(value) if isinstance(value, types.FunctionType) else value
            for name in base.CONFIG_ATTRS
            for value in [getattr(factory, name)]
        }
        cls = type(
            base.__name__,
            (base,),
            {
                **settings,
                "__module__": base.__module__,
                "gridcommand_settings": True,
                "gridcommand_base": base,
                "dataReceived": _data_received,
                "onMessageEnd": _message_end,
            },
        )
        factory.protocol = cls
    return cls
