"""Hardening (issue 13): a Content-Security-Policy on our pages under which the folium maps, the
field app, the admin and the API docs still work in Chromium; error pages that leak nothing;
the request id every access-log row carries."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from django.test import Client, RequestFactory

from command.middleware import INLINE_SCRIPT, content_security_policy


def test_the_policy_allows_exactly_the_pages_own_inline_scripts() -> None:
    page = b"<html><script>var a = 1;</script><script src='/static/x.js'></script><script>evil()</script></html>"
    policy = content_security_policy(page)
    for script in (b"var a = 1;", b"evil()"):
        digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert len(INLINE_SCRIPT.findall(page)) == 2


@pytest.mark.django_db
def test_html_answers_carry_the_policy_and_json_ones_do_not(client: Client) -> None:
    html = client.get("/accounts/login/")
    assert html["Content-Security-Policy"].startswith("default-src 'self'")
    assert "Content-Security-Policy" not in client.get("/healthz")


@pytest.mark.django_db
def test_error_pages_leak_nothing(client: Client, settings) -> None:
    settings.DEBUG = False
    # an unknown address: our page, not an echo of the address nor a list of routes
    probe = "/no-such-page/<script>alert(1)</script>"
    missing = client.get(probe)
    body = missing.content.decode()
    assert missing.status_code == 404 and "GridCommand" in body
    assert "<script>alert" not in body and "no-such-page" not in body and "urlpatterns" not in body
    # a server error: our page, no traceback, no settings, no SQL
    from django.views.defaults import server_error

    request = RequestFactory().get("/boom")
    error = server_error(request).content.decode()
    assert "GridCommand" in error and "Traceback" not in error and "SECRET" not in error and "SELECT" not in error
    # a page a role may not open: our 403
    from command.services.accounts import user_ensure

    client.force_login(user_ensure(username="op", password="pw-for-tests-1", role="operator"))
    forbidden = client.get("/police/")
    assert forbidden.status_code == 403 and "GridCommand" in forbidden.content.decode()
    # under /api/ errors stay JSON
    assert client.get("/api/v1/no-such/").json() == {"detail": client.get("/api/v1/no-such/").json()["detail"]}


@pytest.fixture
def csp_admin(make_user: Callable, grid) -> int:
    """An admin login and a building (its change page has the map widget); before ``chromium``."""
    from django.contrib.gis.geos import Polygon

    from command.services.places import building_save

    make_user("admin", username="csp-admin", password="pw-for-tests-1")
    building = building_save(footprint=Polygon.from_bbox((117.0002, 39.0002, 117.0004, 39.0004)), address="1号")
    return int(building.pk)


CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || ''));
});
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_work_under_the_content_security_policy_in_chromium(csp_admin: int, chromium) -> None:
    from tests.support import daphne_server

    # (address, what shows that it works)
    pages = [
        (
            "/police/",
            "document.querySelectorAll('path.leaflet-interactive').length >= 3 && document.querySelector('#gc-lists')",
        ),
        ("/maps/control-room/", "document.querySelectorAll('path.leaflet-interactive').length >= 3"),
        ("/field/", "document.body && document.body.innerText.length > 20"),
        ("/admin/", "document.querySelector('#content-main')"),
        (
            f"/admin/command/building/{csp_admin}/change/",
            "document.querySelector('.ol-viewport canvas, .ol-layer canvas')",
        ),
        ("/admin/command/personaldataaccess/", "document.querySelector('#changelist')"),
        ("/api/docs/", "document.querySelector('.swagger-ui .info')"),
    ]
    problems: list[str] = []
    with daphne_server(extra_env={"WHITENOISE_USE_FINDERS": "1"}) as server:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(CSP_WATCH)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console {page.url}: {msg.text[:80]} {msg.location}")
                if "Content Security Policy" in msg.text
                else None
            ),
        )
        page.goto(f"{server.url}/accounts/login/")
        page.fill("input[name=username]", "csp-admin")
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("[type=submit]")
        page.wait_for_url(f"{server.url}/")
        for path, works in pages:
            response = page.goto(f"{server.url}{path}")
            assert response is not None and response.status == 200, path
            assert "Content-Security-Policy" in {k.title(): v for k, v in response.headers.items()}, path
            page.wait_for_function(f"() => {works}", timeout=20000)  # a function: the CSP refuses eval
            page.wait_for_load_state("networkidle")
            violations = page.evaluate("window.__csp")
            problems.extend(f"{path}: {v}" for v in violations)
        context.close()
    assert problems == []
