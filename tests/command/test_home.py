"""The landing page offers each role its own pages, in Chinese by default."""

import pytest


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "team", "present", "absent"),
    [
        ("operator", None, ["/control/", "/field/"], ["/police/", "/admin/"]),
        ("police", "police", ["/police/", "/ogc/"], ["/control/", "/field/"]),
        ("grid_worker", "volunteer", ["/field/"], ["/control/", "/police/"]),
        ("admin", None, ["/control/", "/police/", "/admin/"], []),
    ],
)
def test_each_role_sees_its_pages(client, make_user, role, team, present, absent):
    client.force_login(make_user(role, team=team))
    html = client.get("/").content.decode()
    for url in present:
        assert f'href="{url}' in html
    for url in absent:
        assert f'href="{url}' not in html


@pytest.mark.django_db
def test_police_layers_do_not_include_households(client, make_user):
    client.force_login(make_user("police", team="police"))
    html = client.get("/").content.decode()
    assert "摄像头" in html
    assert "住户" not in html


def test_anonymous_is_asked_to_sign_in(client, db):
    html = client.get("/").content.decode()
    assert "/accounts/login/" in html


def test_english_on_request(client, db):
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Sign in" in html
