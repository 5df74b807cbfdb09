"""Phones log in once for a token; the token is revocable; sessions work for the web pages."""

from __future__ import annotations

from rest_framework.test import APIClient

from tests.field_api.conftest import report_body


def test_token_login_use_and_revoke(worker_user, grid):
    # given
    client = APIClient()
    # when: log in
    login = client.post("/api/v1/auth/token/", {"username": "wang", "password": "pw-for-tests-1"}, format="json")
    # then
    assert login.status_code == 200
    token = login.json()["token"]
    assert login.json()["worker_id"] == worker_user.worker.pk
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.post("/api/v1/reports/", report_body(), format="json").status_code == 201
    # when: revoke
    assert client.delete("/api/v1/auth/token/").status_code == 204
    # then: the old token no longer works
    assert client.post("/api/v1/reports/", report_body(), format="json").status_code == 401


def test_wrong_password_is_400_with_reason(worker_user):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "wang", "password": "nope"}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    assert "password" in response.json()["detail"]


def test_session_login_works_for_the_api(worker_user, grid):
    client = APIClient()
    assert client.login(username="wang", password="pw-for-tests-1")
    assert client.get("/api/v1/me/").json()["username"] == "wang"


def test_field_app_shell_manifest_and_service_worker(client, reference):
    page = client.get("/field/")
    assert page.status_code == 200
    assert 'rel="manifest"' in page.content.decode()
    manifest = client.get("/field/manifest.webmanifest").json()
    assert manifest["start_url"] == "/field/" and manifest["display"] == "standalone"
    sw = client.get("/field/sw.js")
    assert sw.status_code == 200 and sw["Service-Worker-Allowed"] == "/field/"
    assert client.get("/field/app.js")["Content-Type"].startswith("text/javascript")
    assert client.get("/field/../settings.py").status_code == 404


def test_device_key_reports_and_is_revocable(make_user, grid):
    # given: an alarm button acting as a service login
    from command.models import DeviceToken
    from command.services.devices import device_token_issue, device_token_revoke

    account = make_user("grid_worker", username="alarm-account", team="security_fire")
    token, key = device_token_issue(user=account, name="3号楼 报警按钮")
    assert DeviceToken.objects.get().key_hash != key  # only the hash is stored
    device = APIClient()
    device.credentials(HTTP_AUTHORIZATION=f"Device {key}", HTTP_ACCEPT_LANGUAGE="en")
    # when
    sent = device.post("/api/v1/reports/", report_body(category="emergency_call"), format="json")
    # then
    assert sent.status_code == 201
    device_token_revoke(token=token)
    refused = device.post("/api/v1/reports/", report_body(category="emergency_call"), format="json")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


def test_a_signed_in_browser_trades_its_session_for_the_apps_token(worker_user, grid):
    # given: a browser signed in to the site, with the CSRF cookie the field app page sets
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(worker_user)
    assert client.get("/field/").status_code == 200
    csrf = client.cookies["csrftoken"].value
    # when
    response = client.post("/api/v1/auth/token/session/", HTTP_X_CSRFTOKEN=csrf)
    # then: the same token a password login gives, and it works
    assert response.status_code == 200
    assert response.json()["worker_id"] == worker_user.worker.pk
    phone = APIClient()
    phone.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert phone.post("/api/v1/reports/", report_body(), format="json").status_code == 201


def test_the_session_trade_needs_the_csrf_token_and_a_session(worker_user):
    signed_in = APIClient(enforce_csrf_checks=True)
    signed_in.force_login(worker_user)
    # without the CSRF header (another site's form cannot read the cookie): refused
    assert signed_in.post("/api/v1/auth/token/session/").status_code == 403
    # without a session: refused
    anonymous = APIClient(enforce_csrf_checks=True)
    assert anonymous.get("/field/").status_code == 200
    csrf = anonymous.cookies["csrftoken"].value
    answer = anonymous.post("/api/v1/auth/token/session/", HTTP_X_CSRFTOKEN=csrf)
    assert answer.status_code == 403 and "detail" in answer.json()
