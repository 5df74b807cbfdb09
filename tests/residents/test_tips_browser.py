"""The anonymous tip in headless Chromium on a real Daphne: receipt code -> status, and no
address or user agent of the sender anywhere (database rows, Daphne's log)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import connection

from command.models import SupervisionTip
from command.services.tips import tip_set_status

USER_AGENT = "GridCommandTipTester/1.0 (anonymity check)"


def test_a_tip_from_a_phone_browser_is_anonymous_and_followed_by_its_receipt(live_daphne, chromium, make_user) -> None:
    committee = make_user("supervision_committee")
    page = chromium.new_page(user_agent=USER_AGENT, locale="zh-CN", viewport={"width": 390, "height": 844})
    # given: a resident sends a tip without signing in
    page.goto(f"{live_daphne.url}/tips/")
    assert page.locator("h1").inner_text() == "匿名监督举报"
    page.select_option("#topic", "neglect")
    page.fill("#body", "村委会门口的路灯坏了三个月，多次反映无人处理。")
    page.click("button[type=submit]")
    code = page.locator("#receipt").inner_text().strip()
    assert len(code) == 19
    tip = SupervisionTip.objects.get()
    # when: the committee answers, and the resident checks with the code
    tip_set_status(actor=committee, tip_id=tip.pk, status="reviewing", reply="已转交相关部门。")
    page.goto(f"{live_daphne.url}/tips/status/")
    page.fill("#code", code.lower())
    page.click("button[type=submit]")
    # then
    assert page.locator("#status").inner_text() == "核查中"
    assert page.locator("#reply").inner_text() == "已转交相关部门。"
    page.close()
    # nothing of the sender: no address or user agent in any text column of the tips' tables ...
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM command_supervisiontip t, command_tipledgerentry l "
            "WHERE concat_ws(' ', t.*::text, l.*::text) ~ %s",
            ["127\\.0\\.0\\.1|GridCommandTipTester"],
        )
        assert cursor.fetchone() == (0,)
    assert not User.objects.filter(last_login__isnull=False).exclude(pk=committee.pk).exists()
    # ... nor in the server's log, whose other lines do carry addresses (the check can fail)
    log = live_daphne.log.read_text()
    tip_lines = [line for line in log.splitlines() if "/tips/" in line]
    assert tip_lines and all("127.0.0.1" not in line for line in tip_lines)
    assert "127.0.0.1" in "\n".join(line for line in log.splitlines() if "/healthz" in line)
    assert "GridCommandTipTester" not in log
