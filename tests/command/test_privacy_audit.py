"""Issue 13's lines that no other test held: admins review and export the access log (the export
is itself logged; other roles get nothing); a brute force on the admin's login form is cut off
like the site's form and the token endpoint; the unmask step refuses a purpose on every channel
that takes one, for roles that may not unmask."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from command.access import access_log_write
from command.models import PersonalDataAccess
from tests.maps import conftest as maps_conftest
from tests.maps.conftest import Village

village = maps_conftest.village

pytestmark = pytest.mark.django_db


def test_admins_review_and_export_the_access_log_and_the_export_is_logged(make_user: Callable[..., User]) -> None:
    # given two unmasked views in the log
    worker = make_user("grid_worker", cells=["A-01"])
    access_log_write(user=worker, channel="rest", layer="households", object_ids=[1, 2], purpose="冬季慰问")
    access_log_write(user=worker, channel="unmask", layer="persons", object_ids=[7], purpose="核查身份")
    admin = Client()
    admin.force_login(make_user("admin"))
    # when the admin filters the log to one channel and reviews it, then exports it
    page = admin.get("/admin/command/personaldataaccess/", {"channel__exact": "unmask"})
    assert page.status_code == 200 and "核查身份" in page.content.decode() and "冬季慰问" not in page.content.decode()
    export = admin.get("/admin/command/personaldataaccess/export.csv", {"channel__exact": "unmask"})
    # then the CSV holds what the filters show, and the export is itself a row of the log
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert [r["purpose"] for r in rows] == ["核查身份"]
    assert PersonalDataAccess.objects.filter(channel="admin.export", layer="access_log").count() == 1
    # and no other role reads or exports it
    for role in ("operator", "grid_worker", "police"):
        other = Client()
        other.force_login(make_user(role))
        assert other.get("/admin/command/personaldataaccess/export.csv").status_code in (302, 403), role


def test_the_admin_login_form_is_cut_off_after_the_configured_failures(
    make_user: Callable[..., User], settings
) -> None:
    # given the limit of failures per account
    settings.LOGIN_MAX_FAILURES = 3
    make_user("admin", username="root2", password="right-pw-1")
    browser = Client(REMOTE_ADDR="10.9.0.1")
    # when the password is guessed wrong as often as allowed
    for _ in range(settings.LOGIN_MAX_FAILURES):
        answer = browser.post("/admin/login/", {"username": "root2", "password": "wrong"})
        assert answer.status_code == 200
    # then even the right password is refused: 429 with Retry-After, the form says why, no session
    locked = browser.post("/admin/login/", {"username": "root2", "password": "right-pw-1"})
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "登录失败次数过多" in locked.content.decode()
    assert "_auth_user_id" not in browser.session
    # a wrong password on an unlocked account is still the admin's plain 200 with its error
    make_user("admin", username="root4", password="right-pw-1")
    wrong = Client(REMOTE_ADDR="10.9.0.3").post("/admin/login/", {"username": "root4", "password": "x"})
    assert wrong.status_code == 200
    # while another account from another address still logs in
    make_user("admin", username="root3", password="right-pw-1")
    other = Client(REMOTE_ADDR="10.9.0.2")
    assert other.post("/admin/login/", {"username": "root3", "password": "right-pw-1"}).status_code == 302


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/households/",
        "/api/v1/businesses/",
        "/maps/layers/households.geojson?bbox=116.999,38.999,117.003,39.002",
        "/maps/export/households.csv?bbox=116.999,38.999,117.003,39.002",
    ],
)
def test_a_purpose_is_refused_to_roles_that_may_not_unmask_and_checked_for_the_others(
    village: Village, make_user: Callable[..., User], url: str
) -> None:
    # given a role that sees the layers masked but may not unmask (the committee, given the layers)
    from django.contrib.auth.models import Permission

    viewer = make_user("supervision_committee")
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_layer_households", "view_layer_businesses"])
    )
    committee = Client()
    committee.force_login(User.objects.get(pk=viewer.pk))
    operator = Client()
    operator.force_login(make_user("operator"))
    sep = "&" if "?" in url else "?"

    def status(client: Client, purpose: str) -> int:
        return int(client.get(f"{url}{sep}purpose={purpose}").status_code)

    # then the committee is refused (403) and nothing is logged; a one-letter purpose is a 400
    assert status(committee, "核查") == 403
    assert status(operator, "x") == 400
    assert not PersonalDataAccess.objects.exists()
    # and the operator's stated purpose unmasks (logged where there was something to unmask)
    assert status(operator, "核查") == 200


def test_open311_descriptions_follow_the_rest_policy_and_unmask_with_a_purpose(
    village: Village, make_user: Callable[..., User]
) -> None:
    # given the village's report "垃圾堆放 张三家门口", filed by a worker
    from command.services.accounts import api_token_issue

    def requests(role: str, **params: str) -> Any:
        user = make_user(role)
        return Client().get("/open311/v2/requests.json", {"api_key": api_token_issue(user=user), **params})

    # then an operator reads it masked, as over REST, and nothing is logged
    masked = requests("operator").json()
    assert [r["description"] for r in masked] == ["***"]
    assert not PersonalDataAccess.objects.exists()
    # with a stated purpose, unmasked, and the view is logged with its purpose and the report's id
    unmasked = requests("operator", purpose="核实上报内容").json()
    assert [r["description"] for r in unmasked] == ["垃圾堆放 张三家门口"]
    row = PersonalDataAccess.objects.get()
    assert (row.channel, row.layer, row.purpose) == ("open311", "reports", "核实上报内容")
    assert row.object_ids == [f"report:{unmasked[0]['service_request_id']}"]
    # a role that may not unmask is refused (Open311's error list), a one-letter purpose too
    refused = requests("supervision_committee", purpose="核实")
    assert refused.status_code == 403 and refused.json()[0]["code"] == 403
    assert requests("operator", purpose="x").status_code == 400
    # and the reporter reads their own in full, unlogged
    own = Client().get("/open311/v2/requests.json", {"api_key": api_token_issue(user=village.worker.user)}).json()
    assert [r["description"] for r in own] == ["垃圾堆放 张三家门口"]
    assert PersonalDataAccess.objects.count() == 1
