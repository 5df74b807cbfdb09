"""Every websocket message, both directions, as a strict schema (docs/websocket-api.md).

Server → client messages are built by ``realtime.consumers`` and validated in the tests with
``server_message_validate``; client → server messages are parsed here, and anything that does
not fit is answered with an ``error`` message, never a server error.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from command.eventlog import EventKind
from command.layers import LAYERS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- client → server --------------------------------------------------------------------------

Bbox = tuple[float, float, float, float]


class Subscribe(_Strict):
    type: Literal["subscribe"]
    layers: list[str] = Field(max_length=len(LAYERS) * 2)
    bbox: Bbox | None = None

    @field_validator("layers")
    @classmethod
    def _known_layers(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(LAYERS))
        if unknown:
            raise ValueError(f"unknown layers: {', '.join(unknown)}")
        return list(dict.fromkeys(value))

    @field_validator("bbox")
    @classmethod
    def _valid_bbox(cls, value: Bbox | None) -> Bbox | None:
        if value is None:
            return None
        min_lon, min_lat, max_lon, max_lat = value
        if not all(math.isfinite(v) for v in value):
            raise ValueError("bbox values must be finite numbers")
        if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
            raise ValueError("bbox must be [minLon, minLat, maxLon, maxLat] in WGS 84 degrees")
        return value


class Ack(_Strict):
    type: Literal["ack"]
    seq: int = Field(ge=0)


ClientMessage = Annotated[Subscribe | Ack, Field(discriminator="type")]
client_message_adapter: TypeAdapter[Subscribe | Ack] = TypeAdapter(ClientMessage)


# --- server → client --------------------------------------------------------------------------


class Hello(_Strict):
    type: Literal["hello"]
    user: str
    layers: list[str]  # every layer this login may see; subscribe to some of them
    seq: int  # latest committed seq when the connection opened
    heartbeat: int  # seconds between heartbeats
    since: int | None  # the ?since= the client gave


class Subscribed(_Strict):
    type: Literal["subscribed"]
    layers: list[str]  # requested and granted
    denied: list[str]  # requested but not granted
    bbox: Bbox | None
    seq: int  # events after this seq follow (replay first when resuming)


class EventPayload(_Strict):
    id: str
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class EventMessage(_Strict):
    type: Literal["event"]
    seq: int
    kind: EventKind
    layer: str
    object_id: str
    payload: EventPayload
    created_at: datetime


class Heartbeat(_Strict):
    type: Literal["heartbeat"]
    seq: int  # every event up to here was delivered (or not meant for this subscriber)


class Resync(_Strict):
    type: Literal["resync"]
    seq: int  # reload the snapshot; events after this seq follow
    reason: Literal["initial", "retention", "too_far", "ahead", "granted", "slow", "reset"]


class Access(_Strict):
    type: Literal["access"]
    layers: list[str]  # the layers now delivered on this connection
    revoked: list[str]  # no longer delivered: drop their features
    granted: list[str]  # now delivered (a resync follows)


class Error(_Strict):
    type: Literal["error"]
    code: Literal["bad_request"]
    detail: str


ServerMessage = Annotated[
    Hello | Subscribed | EventMessage | Heartbeat | Resync | Access | Error, Field(discriminator="type")
]
_server_message_adapter: TypeAdapter[Any] = TypeAdapter(ServerMessage)


def server_message_validate(message: dict[str, Any]) -> BaseModel:
    """Validate one server → client message against its schema (raises pydantic.ValidationError)."""
    result: BaseModel = _server_message_adapter.validate_python(message)
    return result


# Close codes the server uses after accepting (the handshake itself is refused with HTTP 403).
CLOSE_BAD_REQUEST = 4400  # a malformed ?since=
CLOSE_FORBIDDEN = 4403  # the login was deactivated, logged out, its token revoked, or lost every layer
CLOSE_NOT_FOUND = 4404  # no websocket endpoint at that path (refused at the handshake)
CLOSE_TIMEOUT = 4408  # no message from the client (ack) for REALTIME_CLIENT_TIMEOUT_SECONDS
CLOSE_SLOW = 4429  # the client fell REALTIME_MAX_UNACKED_BYTES behind; reconnect and reload
