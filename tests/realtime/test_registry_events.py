"""Registry and campaign events over the websocket: the operator's screen gets a visit's and a
mark's events (personal data included, the view logged); a police screen asking for every
layer gets none of them, live or on replay."""

from __future__ import annotations

import time
import uuid

import pytest

from command.layers import LAYERS
from command.models import CampaignTarget, PersonalDataAccess
from command.services.campaigns import campaign_create, campaign_mark
from command.services.registry import MemberChange, household_visit_record
from tests.registry_support import Registry

pytestmark = pytest.mark.django_db(transaction=True)
REGISTRY_LAYERS = ["households", "persons", "businesses", "campaigns", "campaign_buildings", "campaign_targets"]


def test_visit_and_mark_reach_the_operator_and_never_the_police(screens, registry: Registry, worker_a01, make_user):
    # given: a police screen asking for everything, and an operator's for the registry layers
    police_screen = screens(make_user("police"))
    start = police_screen.subscribe(list(LAYERS))["seq"]
    operator_screen = screens(make_user("operator"))
    operator_screen.subscribe(REGISTRY_LAYERS)
    # when: a campaign starts, a worker visits a household and marks it
    campaign = campaign_create(actor_id=None, name="普查", kind="census", target_kind="households", cell_codes=["A"])
    household = registry.households["east/101"]
    head = household.persons.get(relation="head")
    household_visit_record(
        visitor=worker_a01,
        household_id=household.pk,
        client_id=uuid.uuid4(),
        changes=[MemberChange(head.pk, {"phone": "13566667777"})],
    )
    target = CampaignTarget.objects.get(campaign=campaign, household=household)
    campaign_mark(user=worker_a01, target_id=target.pk, client_id=uuid.uuid4(), outcome="visited")
    # then: the operator sees them all, personal data masked
    kinds = {"campaign.updated", "household.updated", "person.updated", "campaign_target.updated", "campaign.progress"}
    assert operator_screen.wait_for(lambda c: kinds <= {e["kind"] for e in c.events})
    person = next(e for e in operator_screen.events if e["kind"] == "person.updated")
    assert person["payload"]["properties"]["phone"] == "135****7777"  # masked: the event log holds it so
    progress = next(e for e in operator_screen.events if e["kind"] == "campaign.progress")
    assert progress["payload"]["properties"]["campaign_covered"] == 1
    assert progress["payload"]["properties"]["campaign_total"] == 9
    # ... masked, so nothing is written to the access log
    assert not PersonalDataAccess.objects.filter(channel="websocket").exists()
    # the police screen: nothing of it, live nor on replay
    time.sleep(1.0)
    assert police_screen.events == []
    replay = screens(make_user("police"), since=start)
    replay.subscribe(list(LAYERS))
    replay.wait_type("heartbeat")
    assert replay.events == []
