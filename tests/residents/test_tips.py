"""Supervision tips: anonymous, a receipt code, the committee alone reads them, a hash chain."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError

from command.models import Event, SupervisionTip, TipLedgerEntry
from command.services.tips import tip_for_receipt, tip_set_status, tip_submit, tips_for_committee, tips_verify

BODY = "网格员王某多次向商户索要好处费，时间在每月初。"


def test_a_tip_returns_a_receipt_that_finds_it_and_stores_nothing_of_the_sender(db: None) -> None:
    # when
    receipt = tip_submit(topic="integrity", body=BODY)
    # then: 16 symbols in four groups, only its hash stored
    assert re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", receipt.code)
    tip = SupervisionTip.objects.get()
    assert receipt.code.replace("-", "") not in tip.receipt_hash
    assert tip_for_receipt(receipt.code) == tip
    assert tip_for_receipt(receipt.code.lower().replace("-", " ")) == tip  # as a person types it
    assert tip_for_receipt("AAAA-BBBB-CCCC-DDDD") is None
    assert tip_for_receipt("x") is None
    # the event says topic and status only, and names no one
    event = Event.objects.get(kind="tip.created")
    assert event.actor_id is None and event.payload["properties"] == {"topic": "integrity", "status": "received"}
    assert BODY not in str(event.payload)
    assert {f.name for f in SupervisionTip._meta.get_fields()} == {
        "id", "receipt_hash", "topic", "body", "status", "reply", "created_at", "updated_at", "ledger"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "body", "field"),
    [
        ("bribes", BODY, "topic"),
        ("conduct", "太短", "body"),
        ("conduct", "x" * 5001, "body"),
        ("other", "a\x00" * 9, "body"),
    ],
)
def test_a_bad_tip_is_refused_with_its_reason_and_nothing_is_written(
    db: None, topic: str, body: str, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        tip_submit(topic=topic, body=body)
    assert field in caught.value.message_dict
    assert not SupervisionTip.objects.exists() and not TipLedgerEntry.objects.exists()


def test_only_the_committee_reads_tips(client, make_user) -> None:
    # given
    receipt = tip_submit(topic="conduct", body=BODY)
    committee = make_user("supervision_committee")
    others = [make_user(role) for role in ("operator", "admin", "police", "grid_worker")]
    # then: the committee reads and answers
    client.force_login(committee)
    assert BODY in client.get(f"/supervision/tips/{receipt.tip.pk}/").content.decode()
    assert client.get("/supervision/tips/").status_code == 200
    response = client.post(
        f"/supervision/tips/{receipt.tip.pk}/", {"status": "reviewing", "reply": "已受理，正在核查。"}
    )
    assert response.status_code == 302
    # nobody else, not even a superuser: the same answer as a missing page
    for user in others:
        client.force_login(user)
        for url in ("/supervision/tips/", f"/supervision/tips/{receipt.tip.pk}/"):
            assert client.get(url).status_code == 404, (user.username, url)
        with pytest.raises(PermissionDenied):
            tips_for_committee(user)
        with pytest.raises(PermissionDenied):
            tip_set_status(actor=user, tip_id=receipt.tip.pk, status="closed")
    client.logout()
    assert client.get("/supervision/tips/").status_code == 302  # to the login page
    # and the sender reads the status and the reply with the code
    page = client.post("/tips/status/", {"code": receipt.code}).content.decode()
    assert "已受理，正在核查。" in page and BODY not in page


def test_bad_input_on_the_tip_pages_is_a_4xx_with_a_reason(client, make_user) -> None:
    response = client.post("/tips/", {"topic": "conduct", "body": "短"})
    assert response.status_code == 400 and "10" in response.content.decode()
    assert not SupervisionTip.objects.exists()
    assert client.post("/tips/status/", {"code": "nonsense"}).status_code == 404
    receipt = tip_submit(topic="neglect", body=BODY)
    client.force_login(make_user("supervision_committee"))
    response = client.post(f"/supervision/tips/{receipt.tip.pk}/", {"status": "lost"})
    assert response.status_code == 400
    assert client.get("/supervision/tips/999999/").status_code == 404


def _chain(count: int = 3) -> list[SupervisionTip]:
    tips = [tip_submit(topic="conduct", body=f"{BODY} 第{i}次").tip for i in range(count)]
    committee_user = None
    from django.contrib.auth.models import User

    committee_user = User.objects.get(groups__name="supervision_committee")
    tip_set_status(actor=committee_user, tip_id=tips[0].pk, status="closed", reply="查实，已处理。")
    return tips


def test_the_chain_verifies_and_a_changed_tip_breaks_it(make_user, capsys) -> None:
    # given
    make_user("supervision_committee")
    tips = _chain()
    check = tips_verify()
    assert check.ok and check.entries == 4 and check.tips == 3
    call_command("tips_verify")
    assert check.head in capsys.readouterr().out
    # when: someone edits a tip's text in the database
    SupervisionTip.objects.filter(pk=tips[1].pk).update(body="没有什么问题")
    # then
    check = tips_verify()
    assert not check.ok and check.problems == [f"tip {tips[1].pk}: body differs from the ledger"]
    with pytest.raises(CommandError):
        call_command("tips_verify")


def test_the_ledger_refuses_edits_and_an_edit_behind_its_back_breaks_the_chain(make_user) -> None:
    make_user("supervision_committee")
    tips = _chain()
    first = TipLedgerEntry.objects.order_by("seq").first()
    assert first is not None
    with pytest.raises(DatabaseError), transaction.atomic():
        TipLedgerEntry.objects.filter(pk=first.pk).update(data={"topic": "other", "body": "x", "receipt": "y"})
    # an owner of the database disables the trigger and rewrites the entry and the tip alike
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK checks: ALTER TABLE refuses them
        cursor.execute("ALTER TABLE command_tipledgerentry DISABLE TRIGGER tipledger_append_only")
        try:
            data = {**first.data, "body": "改过的内容"}
            TipLedgerEntry.objects.filter(pk=first.pk).update(data=data)
            SupervisionTip.objects.filter(pk=tips[0].pk).update(body="改过的内容")
        finally:
            cursor.execute("ALTER TABLE command_tipledgerentry ENABLE TRIGGER tipledger_append_only")
    check = tips_verify()
    assert not check.ok
    assert check.problems == [f"entry {first.seq}: content does not match its hash (tip {tips[0].pk})"]
