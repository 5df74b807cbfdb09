"""The lean tile path (maps/fast.py) answers what the view answers, byte for byte and header for
header, and hands everything it must not take to Django.

Each request goes through ``tile_fast_app(spy)`` (``spy`` records what reaches Django) and,
for comparison, straight to Django's ASGI app, in process with asgiref's
ApplicationCommunicator. The async pool reads committed data only: transactional tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from typing import Any

import mapbox_vector_tile
import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.contrib.gis.geos import Point
from django.contrib.sessions.models import Session
from django.core.asgi import get_asgi_application
from django.core.cache import caches
from django.test import Client
from django.utils import timezone

from command.access import access_prefetched_enough
from command.db_async import pool, pools_close
from command.layer_queries import tile_aggregated
from command.layers import LAYERS, layers_for_user
from command.logins import viewer_from_row, viewer_sql
from command.models import PersonalDataAccess
from command.roles import ROLE_LAYERS
from command.roles import ROLES as ROLE_DECLARATIONS
from command.services.accounts import api_token_issue
from command.services.places import camera_save
from maps.fast import FRESH_COLUMNS, Receive, Scope, Send, _prepared, _viewer_and_fresh_sql, tile_fast_app
from maps.models import TileCache
from maps.tiles import tile_cacheable, tile_fresh_statement, tile_public_profile, tile_shared
from maps.views import MAX_TILE_ZOOM
from tests.maps.conftest import HOT, Village, tile_of
from tests.support import daphne_server

pytestmark = pytest.mark.django_db(transaction=True)  # the async pool sees committed rows only
SENSITIVE = {f for layer in LAYERS.values() for f in layer.sensitive_fields}
ROLES = tuple(ROLE_LAYERS)  # admin, operator, grid_worker, police


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower().encode()]
        return found[0].decode("latin1") if found else None

    def features(self, layer: str) -> list[dict[str, Any]]:
        decoded = mapbox_vector_tile.decode(self.body) if self.body else {}
        return list(decoded.get(layer, {"features": []})["features"])


@dataclass
class Spy:
    """Django's ASGI app, counting the requests the fast path handed to it."""

    app: Any
    paths: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class Req:
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    method: str = "GET"
    body: bytes = b""
    root_path: str = ""


def tile_path(layer: str, z: int, lon: float = 117.0005, lat: float = 39.0005) -> str:
    x, y = tile_of(lon, lat, z)
    return f"/maps/tiles/{layer}/{z}/{x}/{y}.pbf"


def _scope(req: Req) -> dict[str, Any]:
    headers = [(k.lower().encode(), v.encode("latin1")) for k, v in req.headers]
    if not any(name == b"host" for name, _value in headers):
        headers.insert(0, (b"host", b"127.0.0.1:8000"))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": req.method,
        "scheme": "http",
        "path": req.path,
        "raw_path": req.path.encode(),
        "query_string": b"",
        "root_path": req.root_path,
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _one(app: Any, req: Req) -> Answer:
    communicator = ApplicationCommunicator(app, _scope(req))
    await communicator.send_input({"type": "http.request", "body": req.body})
    start = await communicator.receive_output(30)
    assert start["type"] == "http.response.start", start
    body = b""
    while True:
        message = await communicator.receive_output(30)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(30)
    return Answer(start["status"], list(start["headers"]), body)


def serve(app: Any, requests: Iterable[Req]) -> list[Answer]:
    """The answers of ``app``, one request after the other, on one event loop (and one pool)."""

    async def run() -> list[Answer]:
        try:
            return [await _one(app, req) for req in requests]
        finally:
            await pools_close()

    return async_to_sync(run)()


@pytest.fixture
def django_app() -> Any:
    return get_asgi_application()


@pytest.fixture
def token_for(make_user: Callable[..., User]) -> Callable[..., tuple[str, str]]:
    """``token_for("police")``: an Authorization header of a fresh user of that role."""

    def make(role: str, **kwargs: Any) -> tuple[str, str]:
        user = make_user(role, **kwargs)
        return ("Authorization", f"Token {api_token_issue(user=user)}")

    return make


def session_cookie(user: User) -> tuple[str, str]:
    client = Client()
    client.force_login(user)
    return ("Cookie", f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}")


def fast_and_django(django_app: Any, req: Req) -> tuple[Answer, Answer, Spy]:
    """The same request, from a cold cache each time, through the fast path and through Django."""
    spy = Spy(django_app)
    TileCache.objects.all().delete()
    [fast] = serve(tile_fast_app(spy), [req])
    TileCache.objects.all().delete()
    [plain] = serve(django_app, [req])
    return fast, plain, spy


# --- the same answer --------------------------------------------------------------------------


@pytest.mark.parametrize("role", [*ROLES, "superuser"])
def test_every_role_gets_the_views_bytes_and_headers(
    village: Village, django_app: Any, make_user: Callable[..., User], role: str
) -> None:
    # given a viewer of the role, with a token
    user = make_user("operator" if role == "superuser" else role)
    if role == "superuser":
        User.objects.filter(pk=user.pk).update(is_superuser=True)
    auth = ("Authorization", f"Token {api_token_issue(user=user)}")
    requests = [Req(tile_path(layer, z, *HOT), (auth,)) for layer in LAYERS for z in (12, 17)]
    # when each tile is asked twice (a miss, then a hit) through the fast path, then through Django
    spy = Spy(django_app)
    TileCache.objects.all().delete()
    fast = serve(tile_fast_app(spy), [r for req in requests for r in (req, req)])
    TileCache.objects.all().delete()
    plain = serve(django_app, [r for req in requests for r in (req, req)])
    # then the answers are the same, and the fast path left to Django exactly the tiles it must
    assert [(a.status, a.headers, a.body) for a in fast] == [(a.status, a.headers, a.body) for a in plain]
    grants = layers_for_user(User.objects.get(pk=user.pk))
    expected_fallbacks = [  # a layer the role may not see; a tile with personal data (logged)
        r.path
        for req in requests
        for r in (req, req)
        if (name := r.path.split("/")[3]) not in grants or not tile_shared(grants[name], int(r.path.split("/")[4]))
    ]
    assert spy.paths == expected_fallbacks
    # tiles narrowed to a grant's cells (grid workers, team leads) or masked are cached by the
    # view under their own profile; a role without map layers has none
    cached = any(tile_cacheable(g, z) for g in grants.values() for z in (12, 17))
    assert any(a.header("X-Tile-Cache") == "hit" for a in fast) == cached
    assert {a.status for a in fast} <= {200, 404}


@pytest.mark.parametrize(
    "extra",
    [
        (),
        (("Accept-Language", "en-US,en;q=0.9"),),
        (("Cookie", "django_language=en"),),
        (("Accept-Language", "fr"),),
        (("Cookie", "csrftoken=" + "a" * 32),),
    ],
)
def test_language_and_cookies_give_the_same_headers(
    village: Village, django_app: Any, token_for: Callable, extra: tuple
) -> None:
    # given
    req = Req(tile_path("cameras", 17), (token_for("police"), *extra))
    # when
    fast, plain, spy = fast_and_django(django_app, req)
    # then
    assert spy.paths == []
    assert fast == plain
    assert fast.header("X-Content-Type-Options") == "nosniff"
    assert fast.header("Referrer-Policy") == "same-origin"
    assert fast.header("Cross-Origin-Opener-Policy") == "same-origin"
    assert fast.header("X-Frame-Options") == "DENY"
    assert fast.header("Vary") == "Cookie, Authorization, Accept-Language"


def test_https_behind_a_proxy_gets_the_same_security_headers(
    village: Village, token_for: Callable, settings: Any
) -> None:
    # given production's HTTPS settings behind a proxy (SecurityMiddleware reads them at start)
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    django_app = get_asgi_application()
    auth = token_for("police")
    path = tile_path("cameras", 17)
    # when
    fast, plain, spy = fast_and_django(django_app, Req(path, (auth, ("X-Forwarded-Proto", "https"))))
    [redirected] = serve(tile_fast_app(spy), [Req(path, (auth,))])
    # then HTTPS is answered by the fast path with HSTS; plain HTTP is Django's redirect
    assert fast == plain and fast.status == 200
    assert fast.header("Strict-Transport-Security") == "max-age=3600; includeSubDomains; preload"
    assert redirected.status == 301 and spy.paths == [path]


def test_police_never_gets_personal_data(village: Village, django_app: Any, token_for: Callable) -> None:
    # given
    auth = token_for("police")
    requests = [Req(tile_path(layer, z, *HOT), (auth,)) for layer in LAYERS for z in (12, 15, 17)]
    spy = Spy(django_app)
    # when
    answers = dict(zip(requests, serve(tile_fast_app(spy), requests), strict=True))
    # then the layers police may see come from the fast path, without a personal field
    for req, answer in answers.items():
        layer = req.path.split("/")[3]
        if layer in ROLE_LAYERS["police"]:
            assert answer.status == 200 and req.path not in spy.paths
            assert all(not SENSITIVE & set(f["properties"]) for f in answer.features(layer)), req.path
        else:  # the others: Django's 404
            assert answer.status == 404 and req.path in spy.paths
    assert answers[Req(tile_path("cameras", 17, *HOT), (auth,))].features("cameras")


def test_a_tile_is_rebuilt_after_an_event_of_its_layer(village: Village, django_app: Any, token_for: Callable):
    # given a cached camera tile
    req = Req(tile_path("cameras", 17), (token_for("police"),))
    app = tile_fast_app(Spy(django_app))
    first, second = serve(app, [req, req])
    assert (first.header("X-Tile-Cache"), second.header("X-Tile-Cache")) == ("miss", "hit")
    # when a camera in the tile moves (a service logs the event)
    camera_save(code="C1", name="路口1", location=Point(117.0006, 39.0005, srid=4326), heading=90, fov=60, range_m=40)
    [rebuilt] = serve(app, [req])
    # then
    assert rebuilt.status == 200 and rebuilt.header("X-Tile-Cache") == "miss"
    assert rebuilt.header("ETag") != first.header("ETag") and rebuilt.body != first.body


def test_if_none_match_answers_304(village: Village, django_app: Any, token_for: Callable) -> None:
    # given
    auth = token_for("police")
    spy = Spy(django_app)
    [first] = serve(tile_fast_app(spy), [Req(tile_path("incidents", 16, *HOT), (auth,))])
    etag = first.header("ETag")
    assert etag
    req = Req(tile_path("incidents", 16, *HOT), (auth, ("If-None-Match", f'"other", {etag}')))
    # when
    [fast] = serve(tile_fast_app(spy), [req])
    [plain] = serve(django_app, [req])
    # then
    assert spy.paths == []
    assert fast.status == 304 and fast.body == b""
    assert fast == plain


def test_session_cookie_login(village: Village, django_app: Any, make_user: Callable[..., User]) -> None:
    # given a viewer signed in through the login form's session
    cookie = session_cookie(make_user("operator"))
    req = Req(tile_path("incidents", 17, *HOT), (cookie,))
    # when
    fast, plain, spy = fast_and_django(django_app, req)
    # then
    assert spy.paths == []
    assert fast.status == 200 and fast.features("incidents")
    assert fast == plain


def test_session_user_comes_before_the_token(village: Village, django_app: Any, make_user, token_for) -> None:
    # given a police session and an operator's token on the same request
    req = Req(tile_path("reports", 12, 117.0016, 39.0004), (session_cookie(make_user("police")), token_for("operator")))
    # when
    fast, plain, spy = fast_and_django(django_app, req)
    # then the session's viewer (police) is asked about: no reports layer
    assert fast.status == 404 and spy.paths == [req.path]
    assert fast == plain


# --- what goes to Django ----------------------------------------------------------------------


def test_an_inactive_user_is_refused_by_django(village: Village, django_app: Any, make_user) -> None:
    # given
    user = make_user("operator")
    token = ("Authorization", f"Token {api_token_issue(user=user)}")
    cookie = session_cookie(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    for auth in (token, cookie):
        req = Req(tile_path("cameras", 17), (auth,))
        # when
        fast, plain, spy = fast_and_django(django_app, req)
        # then
        assert spy.paths == [req.path]
        assert fast.status == 401 and fast == plain


def test_a_changed_password_ends_the_session(village: Village, django_app: Any, make_user) -> None:
    # given a session, then a new password (the session's auth hash no longer matches)
    user = make_user("operator")
    cookie = session_cookie(user)
    user.set_password("a-new-password-2")
    user.save()
    req = Req(tile_path("cameras", 17), (cookie,))
    # when
    spy = Spy(django_app)
    [fast] = serve(tile_fast_app(spy), [req])
    # then Django refused it and flushed the session
    assert spy.paths == [req.path]
    assert fast.status == 401
    assert f'{settings.SESSION_COOKIE_NAME}=""' in (fast.header("Set-Cookie") or "")


def test_an_expired_session_goes_to_django(village: Village, django_app: Any, make_user) -> None:
    # given
    cookie = session_cookie(make_user("operator"))
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    # cached_db keeps a copy in the cache until the session's age runs out: expired there too
    store = import_module(settings.SESSION_ENGINE).SessionStore
    for key in Session.objects.values_list("session_key", flat=True):
        caches[settings.SESSION_CACHE_ALIAS].delete(store(key).cache_key)
    req = Req(tile_path("cameras", 17), (cookie,))
    # when
    fast, plain, spy = fast_and_django(django_app, req)
    # then
    assert spy.paths == [req.path]
    assert fast.status == 401 and fast == plain


def test_requests_the_fast_path_must_not_take(
    village: Village, django_app: Any, token_for: Callable, make_user: Callable[..., User]
) -> None:
    # given
    police, worker = token_for("police"), token_for("grid_worker", team="road")
    good = tile_path("cameras", 17)
    requests = [
        Req(good, (police,), method="HEAD"),  # the view is GET only: 405
        Req(good, (police,), method="POST"),  # CsrfViewMiddleware: 403
        Req("/maps/layers/cameras.geojson", (police,)),  # another path
        Req("/maps/tiles/cameras/23/0/0.pbf", (police,)),  # zoom out of range: 400
        Req("/maps/tiles/cameras/2/4/0.pbf", (police,)),  # x out of range: 400
        Req("/maps/tiles/cameras/002/0/0.pbf", (police,)),  # leading zeros
        Req("/maps/tiles/rivers/17/0/0.pbf", (police,)),  # unknown layer: 404
        Req(tile_path("households", 17), (police,)),  # a layer police may not see: 404
        Req(good),  # anonymous: 401
        Req(good, (("Authorization", "Token nosuchtoken"),)),
        Req(good, (("Authorization", "Basic cG9saWNlOnB3"),)),  # HTTP Basic
        Req(good, (("Cookie", f"{settings.SESSION_COOKIE_NAME}=nosuchsession"),)),
        Req(good, (police, ("Cookie", "csrftoken=bad!"))),  # Django answers a new CSRF cookie
        Req(good, (police, ("Content-Length", "2")), body=b"{}"),  # a body
        Req(good, (police,), root_path="/gc"),  # mounted under a prefix
        Req(good, (police, ("Host", "evil.example.org"))),  # DisallowedHost: 400
        Req(tile_path("households", 17, 117.0003, 39.0003), (worker,)),  # narrowed to cells, masked
    ]
    spy = Spy(django_app)
    # when
    fast = serve(tile_fast_app(spy), requests)
    # then every one went to Django, unchanged
    assert spy.paths == [r.path for r in requests]
    assert [a.status for a in fast] == [
        405,
        403,
        200,
        400,
        400,
        200,
        404,
        404,
        401,
        401,
        401,
        401,
        200,
        200,
        200,
        400,
        200,
    ]
    assert not PersonalDataAccess.objects.exists()  # tiles are masked: never logged


def test_fast_paths_off_sends_every_tile_to_django(village: Village, django_app, token_for, settings) -> None:
    settings.FAST_PATHS = False
    spy = Spy(django_app)
    req = Req(tile_path("cameras", 17), (token_for("police"),))
    [answer] = serve(tile_fast_app(spy), [req])
    assert answer.status == 200 and spy.paths == [req.path]


def test_another_middleware_list_sends_every_tile_to_django(village: Village, django_app, token_for, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    spy = Spy(get_asgi_application())
    req = Req(tile_path("cameras", 17), (token_for("police"),))
    [answer] = serve(tile_fast_app(spy), [req])
    assert answer.status == 200 and spy.paths == [req.path]


# --- the permissions, loaded in one statement -------------------------------------------------


def test_permissions_loaded_in_one_statement_equal_djangos(
    village: Village, make_user: Callable[..., User], django_assert_num_queries
) -> None:
    # given a user of every role, a superuser, and one with a permission of their own
    users = [make_user(role) for role in ROLES]
    superuser = make_user("police")
    User.objects.filter(pk=superuser.pk).update(is_superuser=True)
    direct = make_user("police")
    direct.user_permissions.add(Permission.objects.get(codename="view_layer_workers"))
    users += [superuser, direct]
    tokens = [api_token_issue(user=user) for user in users]

    # when they are loaded on the async pool, by id (sessions) and by token, alone and with a
    # tile's cache row as the fast path reads them (prepared, binary results)
    async def load() -> list[list[Any]]:
        try:
            async with (await pool()).connection() as conn:
                rows = []
                for user, token in zip(users, tokens, strict=True):
                    by_id = await (await conn.execute(viewer_sql("id"), [user.pk])).fetchone()
                    by_token = await (await conn.execute(viewer_sql("token"), [token])).fetchone()
                    fast = []
                    for how, credential in (("id", user.pk), ("token", token)):
                        row = await _prepared(conn, _viewer_and_fresh_sql(how), [["cameras"], "no/tile", credential])
                        assert row is not None
                        fast.append(row[FRESH_COLUMNS:])
                    rows.append([by_id, by_token, *fast])
                return rows
        finally:
            await pools_close()

    rows = async_to_sync(load)()
    # then
    for user, loaded in zip(users, rows, strict=True):
        fresh = User.objects.get(pk=user.pk)
        expected = fresh.get_all_permissions()
        for row in loaded:
            viewer = viewer_from_row(row)
            assert viewer.pk == user.pk and viewer.password == fresh.password
            assert viewer._perm_cache == expected, user.username
            assert viewer._user_perm_cache == fresh.get_user_permissions()
            assert viewer._group_perm_cache == fresh.get_group_permissions()
            if access_prefetched_enough(viewer):  # else (grants narrowed to cells) the lean path hands over
                with django_assert_num_queries(0):
                    grants = layers_for_user(viewer)
            else:
                grants = layers_for_user(viewer)
            assert grants == layers_for_user(User.objects.get(pk=user.pk))


def test_every_cacheable_tile_shares_the_public_row_exactly_when_it_holds_the_same(
    make_user: Callable[..., User],
) -> None:
    """The fast path reads the cache row before it knows the viewer (maps.tiles.tile_public_profile).
    For every role, layer and zoom whose tile is cached: its row is the public one exactly when
    the viewer gets what everyone gets there (the public fields unmasked, or counts, everywhere);
    a masked or narrowed tile has a row of its own, so it never reaches another viewer."""
    for role in ROLES:
        user = make_user(role, cells=["A-01"] if ROLE_DECLARATIONS[role].area == "own_cells" else None)
        for name, grant in layers_for_user(user).items():
            public = tile_public_profile(LAYERS[name])
            for z in range(MAX_TILE_ZOOM + 1):
                if not tile_cacheable(grant, z):
                    continue
                same_row = tile_fresh_statement(grant, z, 0, 0, crs="wgs84") == tile_fresh_statement(
                    public, z, 0, 0, crs="wgs84"
                )
                everyone = grant.cells is None and (
                    tile_aggregated(name, z) or (grant.fields == public.fields and not grant.masked)
                )
                assert same_row == everyone == tile_shared(grant, z), (role, name, z)


# --- a real Daphne ----------------------------------------------------------------------------


def test_daphne_answers_the_same_with_and_without_the_fast_path(village: Village, token_for, make_user) -> None:
    """End to end over HTTP: the answers of a Daphne with the lean paths and of one without."""
    import http.client

    auth = token_for("police")
    cookie = session_cookie(make_user("operator"))
    requests = [
        ("GET", tile_path("cameras", 17), dict([auth])),
        ("GET", tile_path("incidents", 12, *HOT), dict([cookie])),
        ("GET", tile_path("households", 17), dict([auth])),
        ("HEAD", tile_path("cameras", 17), dict([auth])),
    ]

    def fetch_all(env: dict[str, str]) -> list[tuple[int, list[tuple[str, str]], bytes]]:
        TileCache.objects.all().delete()
        out = []
        with daphne_server(env) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            for method, path, headers in requests:
                conn.request(method, path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                out.append((response.status, [h for h in response.getheaders() if h[0] != "Date"], body))
        return out

    fast = fetch_all({"GRIDCOMMAND_FAST_PATHS": "1"})
    plain = fetch_all({"GRIDCOMMAND_FAST_PATHS": "0"})
    assert [a[0] for a in fast] == [200, 200, 404, 405]
    assert fast == plain
    headers = dict(fast[0][1])
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Type"] == "application/vnd.mapbox-vector-tile"


def test_the_event_loop_is_never_blocked_by_the_orm(village: Village, django_app: Any, token_for) -> None:
    """No sync_to_async hop and no ORM call on the fast path: it runs on a loop that forbids them."""
    req = Req(tile_path("cameras", 17), (token_for("police"),))
    spy = Spy(django_app)

    async def run() -> Answer:
        try:
            loop = asyncio.get_running_loop()
            assert loop.is_running()
            return await _one(tile_fast_app(spy), req)
        finally:
            await pools_close()

    import os

    unsafe = os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    try:
        answer = async_to_sync(run)()
    finally:
        if unsafe is not None:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = unsafe
    assert answer.status == 200 and spy.paths == []
