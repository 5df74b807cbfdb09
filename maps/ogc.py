"""OGC API - Features - Part 1: Core, under ``/ogc/``, in GeoJSON and HTML.

Only the collections the viewer may see (``layers_for_user``) exist for them; a collection or
feature they may not see answers 404 like a missing one. GIS clients authenticate with
``Authorization: Token <key>`` or HTTP Basic (maps/auth.py); anonymous requests for data get 401.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from command.layer_queries import FeatureQuery, layer_extent, layer_feature_count, layer_features
from command.layers import LayerGrant, layer_access_log, layers_for_user
from maps.auth import request_viewer
from maps.params import BadRequest, feature_query_from

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
ITEMS_DEFAULT_LIMIT = 100
ITEMS_MAX_LIMIT = 10000
ITEMS_PARAMS = {"f", "bbox", "limit", "offset", "datetime", "category", "status"}
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"


def _wants_html(request: HttpRequest) -> bool:
    f = request.GET.get("f")
    if f:
        if f not in {"json", "html"}:
            raise BadRequest(_("f must be json or html."), param="f")
        return f == "html"
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "json" not in accept.split("text/html")[0]


def _abs(request: HttpRequest, name: str, *args: Any, query: str = "") -> str:
    url = request.build_absolute_uri(reverse(name, args=args))
    return f"{url}?{query}" if query else url


def _links(request: HttpRequest, name: str, *args: Any, json_type: str = "application/json") -> list[dict[str, str]]:
    html = _wants_html(request)
    return [
        {"href": _abs(request, name, *args, query="f=json"), "rel": "alternate" if html else "self", "type": json_type},
        {
            "href": _abs(request, name, *args, query="f=html"),
            "rel": "self" if html else "alternate",
            "type": "text/html",
        },
    ]


def _answer(request: HttpRequest, body: dict[str, Any], template: str, *, content_type: str = "application/json"):
    if _wants_html(request):
        return render(request, template, {"body": body, "pretty": json.dumps(body, ensure_ascii=False, indent=2)})
    return JsonResponse(body, content_type=content_type, json_dumps_params={"ensure_ascii": False})


def _guard(view):
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except BadRequest as exc:
            response = exc.response()
            if exc.status == 401:
                response["WWW-Authenticate"] = 'Basic realm="GridCommand", charset="UTF-8"'
            return response

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return require_GET(wrapped)


def _grants(request: HttpRequest) -> tuple[Any, dict[str, LayerGrant]]:
    viewer = request_viewer(request)
    if viewer is None or not viewer.is_authenticated:
        raise BadRequest(_("Log in (HTTP Basic or an API token) to list the collections."), status=401)
    return viewer, layers_for_user(viewer)


def _grant(request: HttpRequest, collection_id: str) -> tuple[Any, LayerGrant]:
    viewer, grants = _grants(request)
    grant = grants.get(collection_id)
    if grant is None:
        raise BadRequest(_("No collection named %(id)s.") % {"id": collection_id[:40]}, status=404)
    return viewer, grant


@_guard
def landing(request: HttpRequest) -> HttpResponse:
    body = {
        "title": _("GridCommand map layers"),
        "description": _("OGC API - Features of the GridCommand grid-governance layers."),
        "links": [
            *_links(request, "ogc-landing"),
            {"href": _abs(request, "ogc-api"), "rel": "service-desc", "type": OPENAPI, "title": "OpenAPI"},
            {"href": _abs(request, "ogc-conformance"), "rel": "conformance", "type": "application/json"},
            {"href": _abs(request, "ogc-collections"), "rel": "data", "type": "application/json"},
        ],
    }
    return _answer(request, body, "maps/ogc_landing.html")


@_guard
def conformance(request: HttpRequest) -> HttpResponse:
    return _answer(request, {"conformsTo": CONFORMANCE}, "maps/ogc_generic.html")


def _collection(request: HttpRequest, grant: LayerGrant) -> dict[str, Any]:
    layer = grant.layer
    name = layer.name
    extent = layer_extent(name)
    body: dict[str, Any] = {
        "id": name,
        "title": layer.title_zh,
        "description": layer.title_en,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [list(extent) if extent else [-180, -90, 180, 90]], "crs": CRS84}},
        "links": [
            *_links(request, "ogc-collection", name),
            {"href": _abs(request, "ogc-items", name, query="f=json"), "rel": "items", "type": GEOJSON},
            {"href": _abs(request, "ogc-items", name, query="f=html"), "rel": "items", "type": "text/html"},
        ],
    }
    if layer.temporal:
        body["extent"]["temporal"] = {
            "interval": [[None, None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        }
    return body


@_guard
def collections(request: HttpRequest) -> HttpResponse:
    _viewer, grants = _grants(request)
    body = {
        "links": _links(request, "ogc-collections"),
        "collections": [_collection(request, grant) for grant in grants.values()],
    }
    return _answer(request, body, "maps/ogc_collections.html")


@_guard
def collection(request: HttpRequest, collection_id: str) -> HttpResponse:
    _viewer, grant = _grant(request, collection_id)
    return _answer(request, _collection(request, grant), "maps/ogc_generic.html")


@_guard
def items(request: HttpRequest, collection_id: str) -> HttpResponse:
    viewer, grant = _grant(request, collection_id)
    unknown = sorted(set(request.GET) - ITEMS_PARAMS)
    if unknown:
        raise BadRequest(
            _("Unknown query parameter %(name)s; this API knows %(known)s.")
            % {"name": unknown[0][:40], "known": ", ".join(sorted(ITEMS_PARAMS))},
            param=unknown[0][:40],
        )
    html = _wants_html(request)
    query = feature_query_from(
        request.GET, layer=collection_id, default_limit=ITEMS_DEFAULT_LIMIT, max_limit=ITEMS_MAX_LIMIT, clamp_limit=True
    )
    page = layer_features(grant, query, with_ids=grant.personal_data)
    layer_access_log(user=viewer, channel="ogc", grant=grant, object_ids=page.ids, detail=request.GET.urlencode())
    matched = layer_feature_count(grant, query)
    params = request.GET.copy()
    params.pop("f", None)
    links = _links(request, "ogc-items", collection_id, json_type=GEOJSON)
    for link in links:
        link["href"] = link["href"] + ("&" + params.urlencode() if params else "")
    if query.offset + page.returned < matched:
        params["offset"] = str(query.offset + page.returned)
        params["limit"] = str(query.limit)
        params["f"] = "html" if html else "json"
        links.append(
            {
                "href": _abs(request, "ogc-items", collection_id, query=params.urlencode()),
                "rel": "next",
                "type": GEOJSON,
            }
        )
    if query.offset > 0:
        params["offset"] = str(max(0, query.offset - (query.limit or 0)))
        params["limit"] = str(query.limit)
        params["f"] = "html" if html else "json"
        links.append(
            {
                "href": _abs(request, "ogc-items", collection_id, query=params.urlencode()),
                "rel": "prev",
                "type": GEOJSON,
            }
        )
    links.append(
        {"href": _abs(request, "ogc-collection", collection_id), "rel": "collection", "type": "application/json"}
    )
    extra = {
        "links": links,
        "timeStamp": timezone.now().isoformat(timespec="seconds").replace("+00:00", "Z"),
        "numberMatched": matched,
        "numberReturned": page.returned,
    }
    if html:
        body = json.loads(page.geojson) | extra
        return render(
            request,
            "maps/ogc_items.html",
            {"body": body, "collection": grant.layer, "fields": grant.fields, "features": body["features"]},
        )
    # Splice the members into the FeatureCollection PostGIS built, without parsing it.
    text = page.geojson.rstrip()
    assert text.endswith(b"}")
    text = text[:-1] + b", " + json.dumps(extra, ensure_ascii=False)[1:].encode()
    return HttpResponse(text, content_type=GEOJSON)


@_guard
def item(request: HttpRequest, collection_id: str, feature_id: str) -> HttpResponse:
    viewer, grant = _grant(request, collection_id)
    not_found = BadRequest(
        _("No feature %(id)s in %(collection)s.") % {"id": feature_id[:40], "collection": collection_id}, status=404
    )
    if not feature_id.isdigit() or len(feature_id) > 18:
        raise not_found
    page = layer_features(grant, FeatureQuery(feature_id=int(feature_id), limit=1), with_ids=grant.personal_data)
    if page.returned == 0:
        raise not_found
    layer_access_log(user=viewer, channel="ogc", grant=grant, object_ids=page.ids, detail=f"item {feature_id}")
    feature = json.loads(page.geojson)["features"][0]
    feature["links"] = [
        *_links(request, "ogc-item", collection_id, feature_id, json_type=GEOJSON),
        {"href": _abs(request, "ogc-collection", collection_id), "rel": "collection", "type": "application/json"},
    ]
    if _wants_html(request):
        return render(request, "maps/ogc_item.html", {"feature": feature, "collection": grant.layer})
    return JsonResponse(feature, content_type=GEOJSON, json_dumps_params={"ensure_ascii": False})


@_guard
def api(request: HttpRequest) -> HttpResponse:
    """A compact OpenAPI 3.0 definition of this OGC API (the service-desc link)."""
    p = "/ogc"

    def param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}

    items_params = [
        param("bbox", {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}, "CRS84 bbox"),
        param(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": ITEMS_MAX_LIMIT, "default": ITEMS_DEFAULT_LIMIT},
            "page size",
        ),
        param("offset", {"type": "integer", "minimum": 0, "default": 0}, "start index"),
        param("datetime", {"type": "string"}, "RFC 3339 instant or interval"),
        param("category", {"type": "string"}, "category codes, comma separated"),
        param("status", {"type": "string"}, "status values, comma separated"),
        param("f", {"type": "string", "enum": ["json", "html"]}, "format"),
    ]
    ok = {"200": {"description": "OK"}, "400": {"description": "bad parameter"}, "404": {"description": "not found"}}
    body = {
        "openapi": "3.0.3",
        "info": {"title": "GridCommand OGC API - Features", "version": "1.0"},
        "servers": [{"url": request.build_absolute_uri("/")[:-1]}],
        "paths": {
            f"{p}/": {"get": {"operationId": "landing", "responses": ok}},
            f"{p}/conformance": {"get": {"operationId": "conformance", "responses": ok}},
            f"{p}/collections": {"get": {"operationId": "collections", "responses": ok}},
            f"{p}/collections/{{collectionId}}": {
                "get": {
                    "operationId": "collection",
                    "parameters": [
                        {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": ok,
                }
            },
            f"{p}/collections/{{collectionId}}/items": {
                "get": {
                    "operationId": "items",
                    "parameters": [
                        {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"}},
                        *items_params,
                    ],
                    "responses": ok,
                }
            },
            f"{p}/collections/{{collectionId}}/items/{{featureId}}": {
                "get": {
                    "operationId": "item",
                    "parameters": [
                        {"name": "collectionId", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "featureId", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                    "responses": ok,
                }
            },
        },
    }
    return JsonResponse(body, content_type=OPENAPI)
