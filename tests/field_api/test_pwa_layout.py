"""The field app's layout on a 360 x 740 phone in real headless Chromium: the four tabs stay on
one line, each label whole (not wrapped, not cut), in Chinese and in English."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth.models import User

from tests.support import field_app_login

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TABS = """() => Array.from(document.querySelectorAll('nav.tabs [data-tab]')).map((b) => {
  const r = b.getBoundingClientRect();
  const text = document.createRange();
  text.selectNodeContents(b);
  const lines = new Set(Array.from(text.getClientRects()).map((l) => Math.round(l.top))).size;
  return {tab: b.dataset.tab, top: r.top, left: r.left, right: r.right, lines,
          cut: b.scrollWidth > b.clientWidth, sw: b.scrollWidth, cw: b.clientWidth, text: b.textContent.trim()};
})"""


@pytest.fixture
def worker(live_daphne, worker_user: User) -> User:
    return worker_user  # "wang", password pw-for-tests-1 (tests/conftest.py make_user)


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_four_tabs_stay_on_one_line_at_360_px(live_daphne, worker: User, chromium, locale: str) -> None:
    page = chromium.new_context(viewport={"width": 360, "height": 740}, locale=locale).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    field_app_login(page, live_daphne.url, "wang")
    for selected in ("report", "assignments", "campaigns", "households"):
        # when: each tab selected in turn
        page.click(f"[data-tab={selected}]")
        page.wait_for_selector(f"#tab-{selected}:not([hidden])")
        tabs = page.evaluate(TABS)
        # then: four tabs side by side in one row within the screen, each one line high, none cut
        assert [t["tab"] for t in tabs] == ["report", "assignments", "campaigns", "households"]
        assert len({round(t["top"]) for t in tabs}) == 1, tabs
        assert tabs[0]["left"] >= 0 and tabs[-1]["right"] <= 360, tabs
        assert all(t["left"] >= prev["right"] - 0.5 for prev, t in itertools.pairwise(tabs)), tabs
        for t in tabs:
            assert t["lines"] == 1 and not t["cut"], (locale, selected, tabs)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    assert not errors, errors
