"""The one access policy: which layers and fields each role sees; redaction; the access log."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection, transaction

from command.layer_queries import FeatureQuery, layer_rows_sql, tile_sql
from command.layers import LAYERS, LayerGrant, layer_access_log, layers_for_user, redact
from command.models import PersonalDataAccess
from command.roles import ROLE_LAYERS

pytestmark = pytest.mark.django_db
SENSITIVE = {f for layer in LAYERS.values() for f in layer.sensitive_fields}


def test_every_layer_declaration_runs_in_the_database_with_every_field() -> None:
    # given each declaration with all its fields, when its rows and a tile are queried, then
    # PostgreSQL accepts the generated SQL (every field names a real column of its source)
    for layer in LAYERS.values():
        grant = LayerGrant(layer, layer.all_fields, bool(layer.sensitive_fields))
        for sql, params in (layer_rows_sql(grant, FeatureQuery(limit=1)), tile_sql(grant, 16, 53_000, 24_000)):
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                cursor.fetchall()


def test_police_sees_cameras_incidents_hotspots_workers_and_no_personal_data(make_user: Callable) -> None:
    grants = layers_for_user(make_user("police"))
    assert {"cameras", "camera_cones", "incidents", "hotspots", "workers"} <= set(grants)
    registry = {"households", "persons", "businesses", "campaigns", "campaign_buildings", "campaign_targets"}
    assert not {*registry, "reports"} & set(grants)
    for grant in grants.values():  # omitted, not even masked
        assert not SENSITIVE & set(grant.fields) and not grant.personal_data and not grant.masked


def test_grid_worker_sees_households_masked_in_own_cells_and_unmasked_only_with_a_purpose(
    make_user: Callable, grid: dict
) -> None:
    user = make_user("grid_worker", cells=["A-01"])
    grant = layers_for_user(user)["households"]
    assert {"head_name", "phone", "vulnerable"} <= set(grant.fields) and not grant.personal_data
    assert set(grant.masked) == {"head_name", "phone", "vulnerable"}
    assert grant.cells == (grid["A-01"].pk,)
    user = type(user).objects.get(pk=user.pk)
    unmasked = layers_for_user(user, purpose="家访核实")["households"]
    assert unmasked.personal_data and not unmasked.masked and unmasked.purpose == "家访核实"


@pytest.mark.parametrize("role", list(ROLE_LAYERS))
def test_each_role_gets_exactly_its_layers(make_user: Callable, role: str) -> None:
    assert set(layers_for_user(make_user(role))) == set(ROLE_LAYERS[role])


def test_anonymous_and_inactive_users_see_nothing(make_user: Callable) -> None:
    inactive = make_user("operator")
    inactive.is_active = False
    inactive.save()
    assert layers_for_user(AnonymousUser()) == {} == layers_for_user(None) == layers_for_user(inactive)


def test_redact_keeps_only_granted_fields_and_masks_personal_data(make_user: Callable) -> None:
    worker = layers_for_user(make_user("grid_worker"))
    police = layers_for_user(make_user("police"))
    props = {"id": 1, "building_id": 2, "unit": "1-101", "head_name": "张三明", "phone": "13812345678", "secret": "x"}
    assert redact("households", props, worker["households"]) == {
        "id": 1,
        "building_id": 2,
        "unit": "1-101",
        "head_name": "张*明",
        "phone": "138****5678",
    }
    assert redact("households", props, police.get("households")) is None
    assert redact("incidents", props, worker["households"]) is None  # a grant of another layer


def test_access_log_only_for_unmasked_views_and_append_only(make_user: Callable) -> None:
    worker, police = make_user("grid_worker"), make_user("police")
    layer_access_log(user=police, channel="geojson", grant=layers_for_user(police)["cameras"], object_ids=[1])
    layer_access_log(user=worker, channel="geojson", grant=layers_for_user(worker)["households"], object_ids=[1])
    assert not PersonalDataAccess.objects.exists()  # masked: nothing to log
    grant = layers_for_user(worker, purpose="入户核查")["households"]
    layer_access_log(user=worker, channel="geojson", grant=grant, object_ids=[1, 2])
    row = PersonalDataAccess.objects.get()
    assert (row.user, row.layer, row.object_ids, row.purpose, row.role) == (
        worker,
        "households",
        ["1", "2"],
        "入户核查",
        "grid_worker",
    )
    with pytest.raises(DatabaseError), transaction.atomic():
        PersonalDataAccess.objects.filter(pk=row.pk).update(detail="edited")


@pytest.mark.parametrize("role", list(ROLE_LAYERS))
def test_one_query_permissions_match_djangos(make_user: Callable, role: str) -> None:
    from django.contrib.auth.models import User

    from command.layers import _user_permissions

    user = make_user(role)
    assert _user_permissions(User.objects.get(pk=user.pk)) == User.objects.get(pk=user.pk).get_all_permissions()
