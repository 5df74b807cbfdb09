"""Layer output over HTTP: GeoJSON by bbox, vector tiles, exports. Thin: check the viewer and the
parameters, ask the one policy (``layers_for_user``), let PostGIS build the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from command.access import PurposeRefused, purpose_stated
from command.eventlog import latest_seq
from command.layer_queries import FeatureQuery, layer_features
from command.layers import LayerGrant, layer_access_log, layers_for_user
from maps.auth import request_viewer
from maps.exports import FORMATS, csv_stream, export_ids, gdal_export, geojson_stream
from maps.gcj02 import tile_affine
from maps.params import BadRequest, feature_query_from
from maps.tiles import Tile, layer_tile_cached

GEOJSON_DEFAULT_LIMIT = 1000
MAX_TILE_ZOOM = 22
# A tile's answer (tile_response, for this view and maps/fast.py)
TILE_CONTENT_TYPE = "application/vnd.mapbox-vector-tile"
TILE_CACHE_CONTROL = "private, no-cache"
TILE_VARY = "Cookie, Authorization"


def geojson_max_limit() -> int:
    return int(getattr(settings, "MAP_GEOJSON_MAX_LIMIT", 50000))


def viewer_grant(request: HttpRequest, layer: str, *, unmask: bool = False) -> tuple[Any, LayerGrant]:
    """The viewer and their grant on ``layer``; 401 for anonymous, 404 alike for a layer that
    does not exist and one the viewer may not see (an id reveals nothing). With ``unmask``
    (GeoJSON and exports), ``?purpose=`` unmasks personal data for a viewer with the
    permission (each such view is logged with the purpose; 403 without the permission, 400 for
    a purpose of one character); without it, it stays masked."""
    viewer = request_viewer(request)
    if viewer is None or not viewer.is_authenticated:
        raise BadRequest(_("Log in to see map layers."), status=401)
    try:
        purpose = purpose_stated(viewer, request.GET.get("purpose")) if unmask else ""
    except PurposeRefused as refused:
        raise BadRequest(refused.reason, param="purpose", status=refused.status) from None
    grant = layers_for_user(viewer, purpose=purpose).get(layer)
    if grant is None:
        raise BadRequest(_("No layer named %(layer)s.") % {"layer": layer[:40]}, status=404)
    return viewer, grant


BODY_CHUNK = 1 << 20


def _body_response(body: bytes, *, content_type: str) -> HttpResponse | StreamingHttpResponse:
    """A large body in 1 MB pieces: Django's ASGI handler would send an HttpResponse in 64 KB
    messages, and Daphne spent ~100 ms on the ~110 messages of a 7 MB FeatureCollection
    (measured by bench/layers.py). Small bodies stay a plain HttpResponse."""
    if len(body) <= BODY_CHUNK:
        return HttpResponse(body, content_type=content_type)

    async def pieces() -> AsyncIterator[bytes]:
        view = memoryview(body)
        for start in range(0, len(body), BODY_CHUNK):
            yield bytes(view[start : start + BODY_CHUNK])

    response = StreamingHttpResponse(pieces(), content_type=content_type)
    response["Content-Length"] = str(len(body))
    return response


def _error(exc: BadRequest) -> JsonResponse:
    response = exc.response()
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="GridCommand", charset="UTF-8"'
    return response


@require_GET
def layer_geojson(request: HttpRequest, layer: str) -> HttpResponse | StreamingHttpResponse:
    """``GET /maps/layers/<layer>.geojson?bbox=&limit=&offset=&datetime=&category=&status=``"""
    try:
        viewer, grant = viewer_grant(request, layer, unmask=True)
        query = feature_query_from(
            request.GET, layer=layer, default_limit=GEOJSON_DEFAULT_LIMIT, max_limit=geojson_max_limit()
        )
    except BadRequest as exc:
        return _error(exc)
    seq = latest_seq()  # first: commit order is seq order, so the features hold every event up to it
    page = layer_features(grant, query, with_ids=grant.personal_data)
    layer_access_log(user=viewer, channel="geojson", grant=grant, object_ids=page.ids, detail=request.GET.urlencode())
    response = _body_response(page.geojson, content_type="application/geo+json")
    response["X-Features-Returned"] = str(page.returned)
    # a live client's resync at a seq not above this can take this answer as its snapshot
    response["X-Event-Seq"] = str(seq)
    response["Cache-Control"] = "private, no-store"
    if page.full:  # the next page may be empty; it then has no next link
        params = request.GET.copy()
        params["offset"] = str(query.offset + page.returned)
        response["Link"] = f'<{request.path}?{params.urlencode()}>; rel="next"'
    return response


@require_GET
def layer_tile(request: HttpRequest, layer: str, z: int, x: int, y: int) -> HttpResponse:
    """``GET /maps/tiles/<layer>/<z>/<x>/<y>.pbf``: a Mapbox Vector Tile with the viewer's fields."""
    try:
        viewer, grant = viewer_grant(request, layer)
        if not 0 <= z <= MAX_TILE_ZOOM:
            raise BadRequest(_("Zoom must be between 0 and %(max)s.") % {"max": MAX_TILE_ZOOM}, param="z")
        if not (0 <= x < (1 << z) and 0 <= y < (1 << z)):
            raise BadRequest(_("Tile %(z)s/%(x)s/%(y)s does not exist.") % {"z": z, "x": x, "y": y}, param="x")
    except BadRequest as exc:
        return _error(exc)
    crs = settings.BASEMAP_CRS
    affine = tile_affine(z, x, y) if crs == "gcj02" else None
    tile = layer_tile_cached(grant, z, x, y, crs=crs, affine=affine)
    if tile.ids:
        layer_access_log(user=viewer, channel="tile", grant=grant, object_ids=tile.ids, detail=f"{z}/{x}/{y}")
    return tile_response(tile, if_none_match=request.headers.get("If-None-Match", ""))


def tile_response(tile: Tile, *, if_none_match: str) -> HttpResponse:
    """A tile's answer (this view's and maps/fast.py's): 304 when the client holds it."""
    etag = f'"{tile.etag}"'
    headers = {"ETag": etag, "Cache-Control": TILE_CACHE_CONTROL, "Vary": TILE_VARY}
    if etag in [t.strip() for t in if_none_match.split(",")]:
        return HttpResponse(status=304, headers=headers)
    response = HttpResponse(tile.data, content_type=TILE_CONTENT_TYPE, headers=headers)
    response["X-Tile-Cache"] = "hit" if tile.cached else "miss"
    return response


@require_GET
def layer_export(request: HttpRequest, layer: str, fmt: str) -> HttpResponse | StreamingHttpResponse:
    """``GET /maps/export/<layer>.<geojson|csv|gpkg|shp>?bbox=...``: the permitted fields only."""
    try:
        viewer, grant = viewer_grant(request, layer, unmask=True)
        if fmt not in FORMATS:
            raise BadRequest(
                _("Unknown export format %(fmt)s: use geojson, csv, gpkg or shp.") % {"fmt": fmt[:20]}, param="format"
            )
        limit = int(getattr(settings, "MAP_EXPORT_MAX_FEATURES", 200000))
        query = feature_query_from(request.GET, layer=layer, default_limit=limit, max_limit=limit)
    except BadRequest as exc:
        return _error(exc)
    query = FeatureQuery(**{**query.__dict__, "offset": query.offset})
    if grant.personal_data:
        layer_access_log(
            user=viewer,
            channel=f"export.{fmt}",
            grant=grant,
            object_ids=export_ids(grant, query),
            detail=request.GET.urlencode(),
        )
    content_type, extension = FORMATS[fmt]
    disposition = f'attachment; filename="{layer}.{extension}"'
    if fmt == "geojson":
        response: HttpResponse | StreamingHttpResponse = StreamingHttpResponse(
            geojson_stream(grant, query), content_type=content_type
        )
    elif fmt == "csv":
        response = StreamingHttpResponse(csv_stream(grant, query), content_type=content_type)
    else:
        response = StreamingHttpResponse(gdal_export(grant, query, fmt=fmt), content_type=content_type)
    response["Content-Disposition"] = disposition
    response["Cache-Control"] = "private, no-store"
    return response


def query_string(params: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})
