from django.contrib.auth.models import Group

from command.layers import layers_for_user


def test_roles_exist(db):
    assert set(Group.objects.values_list("name", flat=True)) >= {"admin", "operator", "grid_worker", "police"}


def test_police_never_gets_households_or_personal_fields(make_user):
    # given
    police = make_user("police")
    # when
    grants = layers_for_user(police)
    # then
    assert "households" not in grants
    assert {"cameras", "incidents", "hotspots"} <= set(grants)
    assert not any(g.personal_data for g in grants.values())


def test_grid_worker_gets_households_with_personal_data(make_user):
    grants = layers_for_user(make_user("grid_worker", team="volunteer"))
    assert "head_name" in grants["households"].fields


def test_anonymous_gets_nothing():
    from django.contrib.auth.models import AnonymousUser

    assert layers_for_user(AnonymousUser()) == {}
