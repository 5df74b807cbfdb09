import urllib.request


def test_daphne_serves_the_test_database(live_daphne):
    with urllib.request.urlopen(f"{live_daphne.url}/healthz", timeout=5) as response:
        assert response.status == 200


def test_chromium_renders_a_page_from_daphne(live_daphne, chromium):
    page = chromium.new_page()
    page.goto(f"{live_daphne.url}/accounts/login/")
    assert page.locator("input[name=username]").count() == 1
