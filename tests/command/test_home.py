"""The landing page offers each role its own pages, in Chinese by default."""

import re

import pytest

from command.roles import ROLES

TEAMS = {"police": "police", "grid_worker": "volunteer", "team_lead": "volunteer"}


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
@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_link_a_role_sees_opens_for_it(client, make_user, role):
    """No role is offered a page that then answers 403 or 404 (an operator without a worker
    profile was offered the volunteers' pool; the committee was not offered its tips)."""
    client.force_login(make_user(role, team=TEAMS.get(role)))
    html = client.get("/").content.decode()
    links = sorted(set(re.findall(r'<a[^>]+href="(/[^"#]*)"', html)) - {"/accounts/logout/", "/i18n/setlang/"})
    assert links, role
    for url in links:
        answer = client.get(url.replace("&amp;", "&"))
        assert answer.status_code in (200, 301, 302), (role, url, answer.status_code)
        if answer.status_code in (301, 302):
            assert "/accounts/login/" not in answer["Location"], (role, url)


@pytest.mark.django_db
def test_dispatchers_get_the_request_desk_and_the_committee_its_tips(client, make_user):
    client.force_login(make_user("operator"))
    assert 'href="/desk/requests/"' in client.get("/").content.decode()
    client.force_login(make_user("supervision_committee"))
    assert 'href="/supervision/tips/"' in client.get("/").content.decode()
    client.force_login(make_user("admin"))
    assert 'href="/supervision/tips/"' not in client.get("/").content.decode()  # not even an admin reads tips


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
