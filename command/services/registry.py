"""The household and person registry: the one way households, their members and businesses are
written (a grid worker's visit, the import, the admin), each in one transaction with its
events (DESIGN.md, "The one write path").

A visit (``household_visit_record``) applies a phone's list of member changes, keeps the
household's derived fields (members, head, phone, type, the union of the members' flags), and
writes the visit log: who, when (on the phone), and what changed, field by field. The client
id is the idempotency key per visitor, like a report's: the same visit sent again (an offline
phone's retries) is stored once; the same id with other content is a conflict.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from command.eventlog import event_append
from command.features import feature_of
from command.models import Building, Business, Household, HouseholdVisit, Person
from command.registry_selectors import household_get_for_user

NOTE_MAX_CHARS = 2000
MAX_CHANGES = 50
PERSON_FIELDS = ("full_name", "id_number", "phone", "relation", "resident_type", "vulnerable")
VULNERABLE = tuple(Household.Vulnerable.values)
RELATIONS = tuple(Person.Relation.values)
RESIDENT_TYPES = tuple(Household.ResidentType.values)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PHONE = re.compile(r"(1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(-\d{1,6})?)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


# --- field checks (shared by visits, the import and the API) --------------------------------------


def id_number_check(value: str) -> str:
    """A resident identity card number (GB 11643-1999): 17 digits and a check character, with
    a real date of birth. Returns it normalised (upper-case X); ValidationError with the reason."""
    value = (value or "").strip().upper()
    if len(value) == 15 and value.isdigit():
        raise ValidationError(_("This is an old 15-digit ID number; enter the 18-character one."))
    if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        raise ValidationError(_("An ID number has 17 digits and a last digit or X (18 characters)."))
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise ValidationError(_("The ID number's date of birth (characters 7-14) is not a real date.")) from None
    if born.year < 1900 or born > timezone.localdate():
        raise ValidationError(_("The ID number's date of birth (characters 7-14) is not plausible."))
    expected = _ID_CHECK[sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True)) % 11]
    if value[17] != expected:
        raise ValidationError(_("The ID number's check character is wrong: mistyped?"))
    return value


def phone_check(value: str) -> str:
    value = re.sub(r"[\s()]", "", (value or "").strip())
    if value.startswith("+86"):
        value = value[3:]
    if value and not _PHONE.fullmatch(value):
        raise ValidationError(_("A phone number is 11 digits starting with 1, or a landline with its area code."))
    return value


def name_check(value: str, *, max_length: int = 64) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError(_("The name is empty."))
    if len(value) > max_length or _CONTROL.search(value):
        raise ValidationError(_("A name is at most %(max)s printable characters.") % {"max": max_length})
    return value


def vulnerable_check(values: Iterable[str]) -> list[str]:
    out = sorted(set(values))
    unknown = [v for v in out if v not in VULNERABLE]
    if unknown:
        raise ValidationError(
            _("Unknown vulnerable group %(value)s; use one of %(known)s.")
            % {"value": unknown[0], "known": ", ".join(VULNERABLE)}
        )
    return out


def _choice_check(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValidationError(
            _("Unknown %(what)s %(value)s; use one of %(known)s.")
            % {"what": what, "value": value, "known": ", ".join(choices)}
        )
    return value


def person_values_check(values: dict[str, Any]) -> dict[str, Any]:
    """A member's fields checked one by one; ValidationError keyed by field name."""
    unknown = sorted(set(values) - set(PERSON_FIELDS))
    if unknown:
        raise ValidationError({unknown[0]: [_("Not a field of a person; use %s.") % ", ".join(PERSON_FIELDS)]})
    checks: dict[str, Callable[[Any], Any]] = {
        "full_name": name_check,
        "id_number": lambda v: id_number_check(v) if (v or "").strip() else "",
        "phone": phone_check,
        "relation": lambda v: _choice_check(v, RELATIONS, _("relation")),
        "resident_type": lambda v: _choice_check(v, RESIDENT_TYPES, _("resident type")),
        "vulnerable": vulnerable_check,
    }
    out: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for key, value in values.items():
        if key == "vulnerable" and not isinstance(value, list | tuple):
            errors[key] = [_("A list of vulnerable groups.")]
            continue
        if key != "vulnerable" and not isinstance(value, str):
            errors[key] = [_("Text.")]
            continue
        try:
            out[key] = checks[key](value)
        except ValidationError as exc:
            errors[key] = exc.messages
    if errors:
        raise ValidationError(errors)
    return out


# --- households' derived fields -------------------------------------------------------------------


def household_derive(household: Household, persons: Sequence[Person]) -> None:
    """Members, head's name/phone/type and the union of the flags, from ``persons``."""
    head = next((p for p in persons if p.relation == Person.Relation.HEAD), None)
    household.members = len(persons)
    if head is not None:
        household.head_name = head.full_name
        household.phone = head.phone
        household.resident_type = head.resident_type
    elif not persons:
        household.head_name = ""
        household.phone = ""
    household.vulnerable = sorted({flag for p in persons for flag in p.vulnerable})


def _events_household(household: Household, actor_id: int | None) -> None:
    event_append(
        kind="household.updated",
        layer="households",
        object_id=household.pk,
        actor_id=actor_id,
        payload=feature_of(household, "households"),
    )


def _event_person(person: Person, actor_id: int | None) -> None:
    event_append(
        kind="person.updated",
        layer="persons",
        object_id=person.pk,
        actor_id=actor_id,
        payload=feature_of(person, "persons"),
    )


def _event_person_deleted(person_id: int, actor_id: int | None) -> None:
    event_append(
        kind="record.deleted",
        layer="persons",
        object_id=person_id,
        actor_id=actor_id,
        payload={"id": str(person_id), "geometry": None, "properties": {"id": person_id}},
    )


# --- visits ---------------------------------------------------------------------------------------


class HouseholdNotFound(Exception):
    """No such household, or not one this visitor may visit (answered alike: 404)."""


class VisitConflict(Exception):
    """The client id was already used for a visit with different content (HTTP 409)."""

    def __init__(self, existing: HouseholdVisit) -> None:
        super().__init__(f"client id {existing.client_id} was already used for a different visit")
        self.existing = existing


@dataclass(frozen=True)
class MemberChange:
    """One change a visit makes: update a member (``person_id`` and ``values``), add one
    (``person_id`` None), or remove one (``remove``)."""

    person_id: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    remove: bool = False


@dataclass(frozen=True)
class VisitResult:
    visit: HouseholdVisit
    created: bool  # False: a retry of a stored visit


def _visit_hash(household_id: int, changes: Sequence[MemberChange], note: str, visited_at: datetime | None) -> str:
    canonical = json.dumps(
        {
            "household": household_id,
            "changes": [{"person": c.person_id, "values": c.values, "remove": c.remove} for c in changes],
            "note": note.strip(),
            "visited_at": visited_at.astimezone(UTC).isoformat(timespec="seconds") if visited_at else None,
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _changes_check(changes: Sequence[MemberChange]) -> list[MemberChange]:
    if len(changes) > MAX_CHANGES:
        raise ValidationError({"changes": [_("At most %(max)s changes per visit.") % {"max": MAX_CHANGES}]})
    out: list[MemberChange] = []
    errors: dict[str, Any] = {}
    seen: set[int] = set()
    for i, change in enumerate(changes):
        try:
            if change.person_id is not None and change.person_id in seen:
                raise ValidationError({"person": [_("The same member is changed twice in one visit.")]})
            if change.person_id is not None:
                seen.add(change.person_id)
            if change.remove:
                if change.person_id is None:
                    raise ValidationError({"person": [_("Say which member to remove.")]})
                if change.values:
                    raise ValidationError({"values": [_("A removal carries no values.")]})
                out.append(change)
                continue
            values = person_values_check(change.values)
            if change.person_id is None:
                missing = [k for k in ("full_name", "relation", "resident_type") if k not in values]
                if missing:
                    raise ValidationError(
                        {missing[0]: [_("A new member needs a name, a relation and a resident type.")]}
                    )
            elif not values:
                raise ValidationError({"values": [_("Nothing to change.")]})
            out.append(MemberChange(change.person_id, values, False))
        except ValidationError as exc:
            errors[str(i)] = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
    if errors:
        raise ValidationError({"changes": [json.dumps(errors, ensure_ascii=False)]})
    return out


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


def household_visit_record(
    *,
    visitor: Any,
    household_id: int,
    client_id: uuid.UUID,
    changes: Sequence[MemberChange] = (),
    note: str = "",
    visited_at: datetime | None = None,
) -> VisitResult:
    """Record a grid worker's visit: apply ``changes`` to the household's members, derive the
    household's fields again, write the visit log (who, when, what changed) and the events —
    in one transaction. A household the visitor may not see is HouseholdNotFound; a bad change
    is a ValidationError naming the change and the field, and nothing is written."""
    note = (note or "").strip()
    if len(note) > NOTE_MAX_CHARS or _CONTROL.search(note.replace("\n", " ").replace("\t", " ")):
        raise ValidationError(
            {"note": [_("A note is at most %(max)s printable characters.") % {"max": NOTE_MAX_CHARS}]}
        )
    checked = _changes_check(changes)
    now = timezone.now()
    if visited_at is not None and visited_at > now + timedelta(minutes=10):
        raise ValidationError({"visited_at": [_("The visit's time is in the future; check the phone's clock.")]})
    content_hash = _visit_hash(household_id, checked, note, visited_at)
    try:
        with transaction.atomic():
            return _visit_write(
                visitor=visitor,
                household_id=household_id,
                client_id=client_id,
                changes=checked,
                note=note,
                visited_at=visited_at or now,
                now=now,
                content_hash=content_hash,
            )
    except IntegrityError:
        # Two copies of one visit raced; the first committed. (Other constraint failures are
        # checked before writing, so the only unique violation left is the client id's.)
        existing = HouseholdVisit.objects.filter(visitor_id=visitor.pk, client_id=client_id).first()
        if existing is None:
            raise
        if existing.content_hash != content_hash:
            raise VisitConflict(existing) from None
        return VisitResult(existing, created=False)


def _visit_write(
    *,
    visitor: Any,
    household_id: int,
    client_id: uuid.UUID,
    changes: list[MemberChange],
    note: str,
    visited_at: datetime,
    now: datetime,
    content_hash: str,
) -> VisitResult:
    household = household_get_for_user(user=visitor, household_id=household_id, for_update=True)
    if household is None:
        raise HouseholdNotFound(household_id)
    existing = HouseholdVisit.objects.filter(visitor_id=visitor.pk, client_id=client_id).first()
    if existing is not None:
        if existing.content_hash != content_hash:
            raise VisitConflict(existing)
        return VisitResult(existing, created=False)
    persons = {p.pk: p for p in household.persons.order_by("pk")}
    log: list[dict[str, Any]] = []
    changed: list[Person] = []
    removed: list[int] = []
    added: list[tuple[dict[str, Any], Person]] = []
    errors: dict[str, Any] = {}
    for i, change in enumerate(changes):
        if change.person_id is not None and change.person_id not in persons:
            errors[str(i)] = {"person": [_("Person %s is not a member of this household.") % change.person_id]}
            continue
        if change.remove:
            assert change.person_id is not None
            gone = persons.pop(change.person_id)
            removed.append(gone.pk)
            log.append(
                {"op": "remove", "person": gone.pk, "old": {f: _jsonable(getattr(gone, f)) for f in PERSON_FIELDS}}
            )
            continue
        if change.person_id is None:
            person = Person(household=household, vulnerable=[], id_number="", phone="")
            for key, value in change.values.items():
                setattr(person, key, value)
            person.updated_at = now
            changed.append(person)
            entry: dict[str, Any] = {
                "op": "add",
                "person": None,
                "new": {k: _jsonable(v) for k, v in change.values.items()},
            }
            added.append((entry, person))
            log.append(entry)
            continue
        person = persons[change.person_id]
        diff = {
            key: [_jsonable(getattr(person, key)), _jsonable(value)]
            for key, value in change.values.items()
            if getattr(person, key) != value
        }
        if diff:
            for key, (_old, new) in diff.items():
                setattr(person, key, new)
            person.updated_at = now
            changed.append(person)
            log.append({"op": "update", "person": person.pk, "fields": diff})
    if errors:
        raise ValidationError({"changes": [json.dumps(errors, ensure_ascii=False)]})
    final = [*persons.values(), *(p for p in changed if p.pk is None)]
    _members_check(final, household)
    for person_id in removed:
        Person.objects.filter(pk=person_id).delete()
    # Update the heads first off, then the rest (the one-head constraint holds row by row).
    for person in sorted(changed, key=lambda p: p.relation == Person.Relation.HEAD):
        person.household = household
        person.save()
    for entry, person in added:
        entry["person"] = person.pk
    household_derive(household, sorted(final, key=lambda p: p.pk or 0))
    household.last_visit_at = max(filter(None, [household.last_visit_at, visited_at]))
    household.updated_at = now
    household.save()
    visit = HouseholdVisit.objects.create(
        household=household,
        visitor_id=visitor.pk,
        client_id=client_id,
        content_hash=content_hash,
        visited_at=visited_at,
        received_at=now,
        changes=log,
        note=note,
    )
    _events_household(household, visitor.pk)
    for person in changed:
        person.household = household
        _event_person(person, visitor.pk)
    for person_id in removed:
        _event_person_deleted(person_id, visitor.pk)
    return VisitResult(visit, created=True)


def _members_check(persons: Sequence[Person], household: Household, *, exclude_ids: Iterable[int] = ()) -> None:
    """What must hold for a household's members together: one head (when there are members),
    no ID number twice, none registered in another household."""
    heads = [p for p in persons if p.relation == Person.Relation.HEAD]
    if persons and len(heads) != 1:
        raise ValidationError({"relation": [_("A household has exactly one head; this visit leaves %s.") % len(heads)]})
    numbers = [p.id_number for p in persons if p.id_number]
    if len(numbers) != len(set(numbers)):
        raise ValidationError({"id_number": [_("The same ID number is given for two members.")]})
    if numbers:
        clash = (
            Person.objects.filter(id_number__in=numbers)
            .exclude(household_id=household.pk)
            .exclude(pk__in=list(exclude_ids))
            .values_list("id_number", flat=True)
            .first()
        )
        if clash:
            raise ValidationError(
                {"id_number": [_("ID number %s is registered in another household.") % clash[:6] + "…"]}
            )


# --- businesses -----------------------------------------------------------------------------------


@transaction.atomic
def business_save(
    *,
    building: Building,
    name: str,
    industry: str,
    key_industry: str = "",
    contact_name: str = "",
    contact_phone: str = "",
    licence_no: str = "",
    last_inspection_at: datetime | None = None,
    location: Point | None = None,
    business: Business | None = None,
    actor_id: int | None = None,
) -> Business:
    """Create or update a business; its location defaults to a point on its building."""
    errors: dict[str, list[str]] = {}
    for key, check in (
        ("name", lambda: name_check(name, max_length=100)),
        ("industry", lambda: _choice_check(industry, tuple(Business.Industry.values), _("industry"))),
        ("key_industry", lambda: _choice_check(key_industry, tuple(Business.KeyIndustry.values), _("key industry"))),
        ("contact_phone", lambda: phone_check(contact_phone)),
    ):
        try:
            check()
        except ValidationError as exc:
            errors[key] = exc.messages
    if contact_name.strip():
        try:
            name_check(contact_name)
        except ValidationError as exc:
            errors["contact_name"] = exc.messages
    if errors:
        raise ValidationError(errors)
    obj = business or Business()
    obj.building = building
    obj.name = name.strip()
    obj.industry = industry
    obj.key_industry = key_industry
    obj.contact_name = contact_name.strip()
    obj.contact_phone = phone_check(contact_phone)
    obj.licence_no = licence_no.strip()
    obj.last_inspection_at = last_inspection_at
    obj.location = location or building.footprint.point_on_surface
    obj.location.srid = 4326
    obj.updated_at = timezone.now()
    obj.save()
    event_append(
        kind="business.updated",
        layer="businesses",
        object_id=obj.pk,
        actor_id=actor_id,
        payload=feature_of(obj, "businesses"),
    )
    return obj


# --- households -----------------------------------------------------------------------------------

UNIT_MAX_CHARS = 32


def unit_check(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > UNIT_MAX_CHARS or _CONTROL.search(value):
        raise ValidationError(_("A door number is 1 to %(max)s printable characters.") % {"max": UNIT_MAX_CHARS})
    return value


def members_check(members: Sequence[dict[str, Any]]) -> list[Person]:
    """A new household's members (each a dict of person fields) as unsaved persons, checked one
    by one and together (one head, no ID number twice); ValidationError keyed ``members``."""
    persons: list[Person] = []
    errors: dict[str, Any] = {}
    for i, values in enumerate(members):
        try:
            checked = person_values_check(values)
            missing = [k for k in ("full_name", "relation", "resident_type") if k not in checked]
            if missing:
                raise ValidationError({missing[0]: [_("A member needs a name, a relation and a resident type.")]})
            persons.append(Person(**{"id_number": "", "phone": "", "vulnerable": [], **checked}))
        except ValidationError as exc:
            errors[str(i)] = exc.message_dict
    if errors:
        raise ValidationError({"members": [json.dumps(errors, ensure_ascii=False)]})
    if not persons:
        raise ValidationError({"members": [_("A household has at least one member.")]})
    return persons


@transaction.atomic
def household_create(
    *, building: Building, unit: str, members: Sequence[dict[str, Any]], actor_id: int | None = None
) -> Household:
    """Register a household at a door of ``building`` with its members (the first registration;
    later changes are visits). Its events: the household and each member."""
    unit = unit_check(unit)
    persons = members_check(members)
    household = Household(building=building, unit=unit, updated_at=timezone.now())
    _members_check(persons, household)
    if Household.objects.filter(building=building, unit=unit).exists():
        raise ValidationError(
            {"unit": [_("Door %s of this building is registered already; visit it to update it.") % unit]}
        )
    household_derive(household, persons)
    household.save()
    for person in persons:
        person.household = household
        person.updated_at = household.updated_at
    Person.objects.bulk_create(persons)
    _events_household(household, actor_id)
    for person in persons:
        _event_person(person, actor_id)
    return household
