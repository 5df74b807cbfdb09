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


def direct_writer(base_send: Any) -> Writer | None:
    """A frame writer for the socket behind ``base_send``, or None. Daphne gives the application
    ``functools.partial(server.handle_reply, protocol)``; channels' session middleware wraps it
    in its instance's ``send``, which passes ``websocket.send`` through as it is (it acts only on
    HTTP responses), with the next ``send`` in ``real_send``."""
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
    if not isinstance(send.args[0], WebSocketProtocol):
        return None
    protocol: Any = send.args[0]
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
