"""Anonymous supervision tips: submit (no login), follow with a receipt code, and the
committee's status changes. The only writes of ``SupervisionTip`` and ``TipLedgerEntry``.

Anonymity: the service takes no user, no request and no address, and stores none; the receipt
code is shown once and only its SHA-256 is kept. Tamper evidence: each submission and each
status change appends a ledger entry whose hash covers the previous entry's hash, so changing,
deleting or reordering any entry, or editing a tip row so it no longer matches its entries,
fails ``tips_verify`` (``manage.py tips_verify``).

Events: ``tip.created`` / ``tip.updated`` on the ``tips`` event layer carry the id, topic and
status only (never the text); no map layer shows them, so no screen receives them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.layers import USER_PERMISSIONS_SQL
from command.models import SupervisionTip, TipLedgerEntry

TIPS_PERMISSION = "command.read_supervision_tips"
BODY_MIN_CHARS = 10
BODY_MAX_CHARS = 5000
REPLY_MAX_CHARS = 2000
GENESIS_HASH = "0" * 64
# 16 symbols from 32 unambiguous ones (no 0/O, 1/I/L): 80 bits, read out as XXXX-XXXX-XXXX-XXXX.
RECEIPT_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
RECEIPT_SYMBOLS = 16
_LEDGER_LOCK = 0x6763_7469_7073  # pg_advisory_xact_lock key: one appender at a time ("gctips")


def receipt_normalize(code: str) -> str:
    """What the sender typed, as stored: upper case, without spaces and dashes."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def receipt_hash(code: str) -> str:
    return hashlib.sha256(receipt_normalize(code).encode()).hexdigest()


def _receipt_new() -> str:
    raw = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_SYMBOLS))
    return "-".join(raw[i : i + 4] for i in range(0, RECEIPT_SYMBOLS, 4))


def ledger_entry_hash(
    *, prev_hash: str, seq: int, tip_id: int, kind: str, data: dict[str, Any], created_at: datetime
) -> str:
    canonical = json.dumps(
        {"seq": seq, "tip": tip_id, "kind": kind, "data": data, "at": created_at.isoformat()},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode()).hexdigest()


def _ledger_append(*, tip: SupervisionTip, kind: str, data: dict[str, Any], now: datetime) -> TipLedgerEntry:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LEDGER_LOCK])
    last = TipLedgerEntry.objects.order_by("-seq").values_list("seq", "entry_hash").first()
    seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
    entry_hash = ledger_entry_hash(prev_hash=prev_hash, seq=seq, tip_id=tip.pk, kind=kind, data=data, created_at=now)
    return TipLedgerEntry.objects.create(
        seq=seq, tip=tip, kind=kind, data=data, created_at=now, prev_hash=prev_hash, entry_hash=entry_hash
    )


def _announce(tip: SupervisionTip, kind: str) -> None:
    event_append(
        kind=kind,  # type: ignore[arg-type]  # "tip.created" | "tip.updated"
        layer="tips",
        object_id=tip.pk,
        actor_id=None,  # the committee member's id would say who reads tips when; the ledger keeps no user either
        payload={"id": str(tip.pk), "properties": {"topic": tip.topic, "status": tip.status}},
    )


@dataclass(frozen=True)
class TipReceipt:
    tip: SupervisionTip
    code: str  # shown to the sender once; only its hash is stored


def tip_submit(*, topic: str, body: str) -> TipReceipt:
    """Store an anonymous tip and return its receipt code. Takes nothing about the sender."""
    errors: dict[str, str] = {}
    if topic not in SupervisionTip.Topic.values:
        errors["topic"] = _("Choose one of the topics.")
    body = (body or "").strip()
    if len(body) < BODY_MIN_CHARS:
        errors["body"] = _("Describe what happened in at least %(min)s characters.") % {"min": BODY_MIN_CHARS}
    elif len(body) > BODY_MAX_CHARS:
        errors["body"] = _("The text is longer than %(max)s characters.") % {"max": BODY_MAX_CHARS}
    if "\x00" in body:
        errors["body"] = _("The text contains a NUL character.")
    if errors:
        raise ValidationError(errors)
    code = _receipt_new()
    now = timezone.now()
    with transaction.atomic():
        tip = SupervisionTip.objects.create(
            receipt_hash=receipt_hash(code), topic=topic, body=body, created_at=now, updated_at=now
        )
        _ledger_append(
            tip=tip, kind="submitted", data={"topic": topic, "body": body, "receipt": tip.receipt_hash}, now=now
        )
        _announce(tip, "tip.created")
    return TipReceipt(tip, code)


def tip_for_receipt(code: str) -> SupervisionTip | None:
    """The tip of a receipt code (None for an unknown or malformed code: same answer)."""
    normalized = receipt_normalize(code or "")
    if len(normalized) != RECEIPT_SYMBOLS:
        return None
    return SupervisionTip.objects.filter(receipt_hash=receipt_hash(normalized)).first()


def tips_reader(actor: Any) -> bool:
    """Does ``actor`` hold the committee's permission through a role (or an explicit grant)?
    Being a superuser is not enough: the tips may be about anyone, administrators included."""
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return False
    with connection.cursor() as cursor:
        cursor.execute(USER_PERMISSIONS_SQL, [actor.pk, actor.pk])
        return TIPS_PERMISSION in {row[0] for row in cursor.fetchall()}


def _require_committee(actor: Any) -> None:
    if not tips_reader(actor):
        raise PermissionDenied(_("Only the supervision committee reads and answers tips."))


def tips_for_committee(actor: Any) -> Any:
    """The tips, newest first; PermissionDenied for anyone outside the committee."""
    _require_committee(actor)
    return SupervisionTip.objects.all()


def tip_get_for_committee(actor: Any, tip_id: int) -> SupervisionTip | None:
    _require_committee(actor)
    return SupervisionTip.objects.filter(pk=tip_id).first()


def tip_set_status(*, actor: Any, tip_id: int, status: str, reply: str = "") -> SupervisionTip:
    """The committee moves a tip on and (optionally) answers the sender, who reads the answer
    with the receipt code."""
    _require_committee(actor)
    if status not in SupervisionTip.Status.values:
        raise ValidationError({"status": _("Choose one of the statuses.")})
    reply = (reply or "").strip()
    if len(reply) > REPLY_MAX_CHARS:
        raise ValidationError({"reply": _("The reply is longer than %(max)s characters.") % {"max": REPLY_MAX_CHARS}})
    now = timezone.now()
    with transaction.atomic():
        tip = SupervisionTip.objects.select_for_update().filter(pk=tip_id).first()
        if tip is None:
            raise SupervisionTip.DoesNotExist(tip_id)
        tip.status = status
        tip.reply = reply
        tip.updated_at = now
        tip.save(update_fields=["status", "reply", "updated_at"])
        _ledger_append(tip=tip, kind="status", data={"status": status, "reply": reply}, now=now)
        _announce(tip, "tip.updated")
    return tip


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    tips: int
    head: str  # the last entry's hash: write it down elsewhere to anchor the chain
    problems: list[str]


def tips_verify() -> ChainCheck:
    """Walk the ledger in order: every hash recomputed, every link to the previous entry, seqs
    without a gap, and every tip row equal to what its entries say it is."""
    problems: list[str] = []
    prev_hash = GENESIS_HASH
    expected_seq = 1
    state: dict[int, dict[str, Any]] = {}
    count = 0
    for entry in TipLedgerEntry.objects.order_by("seq").iterator(chunk_size=2000):
        count += 1
        if entry.seq != expected_seq:
            problems.append(f"entry {entry.seq}: expected seq {expected_seq} (an entry is missing)")
        expected_seq = entry.seq + 1
        if entry.prev_hash != prev_hash:
            problems.append(f"entry {entry.seq}: does not link to the previous entry")
        recomputed = ledger_entry_hash(
            prev_hash=entry.prev_hash,
            seq=entry.seq,
            tip_id=entry.tip_id,
            kind=entry.kind,
            data=entry.data,
            created_at=entry.created_at,
        )
        if recomputed != entry.entry_hash:
            problems.append(f"entry {entry.seq}: content does not match its hash (tip {entry.tip_id})")
        prev_hash = entry.entry_hash
        if entry.kind == "submitted":
            state[entry.tip_id] = {
                "topic": entry.data.get("topic"),
                "body": entry.data.get("body"),
                "receipt_hash": entry.data.get("receipt"),
                "status": SupervisionTip.Status.RECEIVED.value,
                "reply": "",
            }
        elif entry.tip_id in state:
            state[entry.tip_id].update(status=entry.data.get("status"), reply=entry.data.get("reply"))
        else:
            problems.append(f"entry {entry.seq}: a status change of tip {entry.tip_id} before its submission")
    tips = 0
    for tip in SupervisionTip.objects.order_by("pk").iterator(chunk_size=2000):
        tips += 1
        expected = state.pop(tip.pk, None)
        if expected is None:
            problems.append(f"tip {tip.pk}: has no ledger entry")
            continue
        for name, value in expected.items():
            if getattr(tip, name) != value:
                problems.append(f"tip {tip.pk}: {name} differs from the ledger")
    problems.extend(f"tip {tip_id}: in the ledger but deleted" for tip_id in sorted(state))
    return ChainCheck(ok=not problems, entries=count, tips=tips, head=prev_hash, problems=problems)
