"""The registry's write path: a visit updates the household and writes its log; bad input
writes nothing; retries are one visit; a household outside the visitor's cells is not found."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.utils import translation

from command.masking import mask_id_number, mask_name, mask_phone
from command.models import Event, Household, HouseholdVisit, Person
from command.registry_selectors import households_filtered, households_visible_to, residents_lookup
from command.services.registry import (
    HouseholdNotFound,
    MemberChange,
    VisitConflict,
    household_visit_record,
    id_number_check,
)
from tests.registry_support import Registry, id_number, member

VISITED_AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _in_english() -> Iterator[None]:
    """The reasons are asserted in English (zh-Hans is the default language)."""
    with translation.override("en"):
        yield


def _head(household: Household) -> Person:
    return household.persons.get(relation="head")


def test_a_visit_updates_the_household_and_writes_its_log(registry: Registry, worker_a01: User) -> None:
    # given: household east/101 has a head, a spouse and a child
    household = registry.households["east/101"]
    head, child = _head(household), household.persons.get(relation="child")
    seq_before = Event.objects.order_by("-seq").values_list("seq", flat=True).first()
    # when: the head has a new phone and is out of work, the child moved out, a parent moved in
    result = household_visit_record(
        visitor=worker_a01,
        household_id=household.pk,
        client_id=uuid.uuid4(),
        changes=[
            MemberChange(head.pk, {"phone": "13912345678", "vulnerable": ["unemployed"]}),
            MemberChange(child.pk, remove=True),
            MemberChange(
                None, member("张老爷子", "parent", id_number=id_number(900, "19380303"), vulnerable=["veteran"])
            ),
        ],
        note="户主失业，父亲搬来同住",
        visited_at=VISITED_AT,
    )
    # then: the record is current ...
    household.refresh_from_db()
    assert result.created
    assert household.phone == "13912345678" and household.head_name == "张小明"
    assert household.members == 3
    assert household.vulnerable == ["unemployed", "veteran"]
    assert household.last_visit_at == VISITED_AT
    assert not Person.objects.filter(pk=child.pk).exists()
    assert household.persons.filter(full_name="张老爷子", relation="parent").exists()
    # ... and the visit log says who, when and what changed, field by field
    visit = HouseholdVisit.objects.get(household=household)
    assert visit.visitor == worker_a01 and visit.visited_at == VISITED_AT and visit.note == "户主失业，父亲搬来同住"
    ops = {entry["op"]: entry for entry in visit.changes}
    assert ops["update"]["person"] == head.pk
    assert ops["update"]["fields"] == {"phone": ["13800000001", "13912345678"], "vulnerable": [[], ["unemployed"]]}
    assert ops["remove"]["old"]["full_name"] == "张伟"
    assert ops["add"]["new"]["full_name"] == "张老爷子" and isinstance(ops["add"]["person"], int)
    # ... and the screens are told: the household, the changed and new members, the removal
    kinds = list(Event.objects.filter(seq__gt=seq_before or 0).values_list("kind", "layer"))
    assert ("household.updated", "households") in kinds
    assert kinds.count(("person.updated", "persons")) == 2
    assert ("record.deleted", "persons") in kinds


def test_a_retried_visit_is_stored_once_and_other_content_is_a_conflict(registry: Registry, worker_a01: User) -> None:
    household = registry.households["east/102"]
    head = _head(household)
    client_id = uuid.uuid4()
    change = [MemberChange(head.pk, {"phone": "13700001111"})]
    first = household_visit_record(visitor=worker_a01, household_id=household.pk, client_id=client_id, changes=change)
    # when: the phone sends the same visit again (offline retries)
    again = household_visit_record(visitor=worker_a01, household_id=household.pk, client_id=client_id, changes=change)
    # then
    assert first.created and not again.created and again.visit.pk == first.visit.pk
    assert HouseholdVisit.objects.filter(household=household).count() == 1
    with pytest.raises(VisitConflict):
        household_visit_record(
            visitor=worker_a01,
            household_id=household.pk,
            client_id=client_id,
            changes=[MemberChange(head.pk, {"phone": "13700002222"})],
        )
    assert _head(household).phone == "13700001111"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"id_number": "120111195001011235"}, "check character"),  # one digit off
        ({"id_number": "120111195002301234"}, "date of birth"),  # 30 February
        ({"phone": "12345"}, "phone number"),
        ({"relation": "cousin"}, "relation"),
        ({"vulnerable": ["rich"]}, "vulnerable group"),
        ({"full_name": "  "}, "empty"),
        ({"shoe_size": "42"}, "Not a field"),
    ],
)
def test_a_bad_change_is_refused_with_its_reason_and_nothing_is_written(
    registry: Registry, worker_a01: User, values: dict, field: str
) -> None:
    household = registry.households["east/201"]
    head = _head(household)
    before = (head.phone, head.id_number, household.vulnerable)
    with pytest.raises(ValidationError) as refused:
        household_visit_record(
            visitor=worker_a01,
            household_id=household.pk,
            client_id=uuid.uuid4(),
            changes=[MemberChange(None, member("新成员", "child")), MemberChange(head.pk, values)],
        )
    assert field in str(refused.value)
    head.refresh_from_db()
    household.refresh_from_db()
    assert (head.phone, head.id_number, household.vulnerable) == before
    assert household.persons.count() == 2 and not HouseholdVisit.objects.exists()


def test_a_visit_that_leaves_two_heads_or_a_duplicate_id_is_refused(registry: Registry, worker_a01: User) -> None:
    household = registry.households["east/201"]
    spouse = household.persons.get(relation="spouse")
    with pytest.raises(ValidationError, match="exactly one head"):
        household_visit_record(
            visitor=worker_a01,
            household_id=household.pk,
            client_id=uuid.uuid4(),
            changes=[MemberChange(spouse.pk, {"relation": "head"})],
        )
    elsewhere = _head(registry.households["west/1"]).id_number  # registered in another household
    with pytest.raises(ValidationError, match="another household"):
        household_visit_record(
            visitor=worker_a01,
            household_id=household.pk,
            client_id=uuid.uuid4(),
            changes=[MemberChange(spouse.pk, {"id_number": elsewhere})],
        )
    assert not HouseholdVisit.objects.exists()


def test_the_head_can_change_within_one_visit(registry: Registry, worker_a01: User) -> None:
    household = registry.households["east/201"]
    head, spouse = _head(household), household.persons.get(relation="spouse")
    household_visit_record(
        visitor=worker_a01,
        household_id=household.pk,
        client_id=uuid.uuid4(),
        changes=[MemberChange(head.pk, {"relation": "spouse"}), MemberChange(spouse.pk, {"relation": "head"})],
    )
    household.refresh_from_db()
    assert household.head_name == "钱芳"


def test_only_workers_of_the_cell_and_operators_may_visit(
    registry: Registry, worker_a02: User, make_user: Callable[..., User]
) -> None:
    household = registry.households["east/101"]  # in A-01
    for visitor in (worker_a02, make_user("police")):
        with pytest.raises(HouseholdNotFound):
            household_visit_record(visitor=visitor, household_id=household.pk, client_id=uuid.uuid4())
    with pytest.raises(HouseholdNotFound):  # a missing one answers alike
        household_visit_record(visitor=worker_a02, household_id=10**9, client_id=uuid.uuid4())
    operator = make_user("operator")
    assert household_visit_record(visitor=operator, household_id=household.pk, client_id=uuid.uuid4()).created


def test_filters_by_vulnerable_group_and_grid(registry: Registry, worker_a01: User, make_user: Callable) -> None:
    operator = make_user("operator")
    # "all elderly living alone in grid A": both cells of the big grid
    alone = households_filtered(households_visible_to(operator), vulnerable=["elderly_alone"], cell_codes=["A"])
    assert {h.unit for h in alone} == {"102", "1", "2"}
    # the worker of A-01 sees only the elderly of A-01
    mine = households_filtered(households_visible_to(worker_a01), vulnerable=["elderly_alone"])
    assert {(h.building_id, h.unit) for h in mine} == {(registry.a01_east.pk, "102"), (registry.a01_west.pk, "1")}
    assert not households_visible_to(make_user("police")).exists()


def test_resident_lookup_at_the_door_within_one_building(registry: Registry, worker_a01: User) -> None:
    by_name = residents_lookup(user=worker_a01, building_id=registry.a01_east.pk, query="张")
    assert {p.full_name for p in by_name} == {"张小明", "张伟"}
    number = _head(registry.households["east/201"]).id_number
    by_id = residents_lookup(user=worker_a01, building_id=registry.a01_east.pk, query=number[-6:])
    assert [p.full_name for p in by_id] == ["赵军"]
    # not in another building, nor for a worker of another cell
    assert residents_lookup(user=worker_a01, building_id=registry.a01_west.pk, query="张") == []


def test_id_number_and_masks() -> None:
    with_x = next(n for n in (id_number(s) for s in range(200)) if n.endswith("X"))
    assert id_number_check(with_x.lower()) == with_x
    number = id_number(7)
    assert id_number_check(number) == number
    assert mask_name("张小明") == "张*明" and mask_name("李四") == "李*"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_id_number(number) == number[:6] + "********" + number[-4:]
