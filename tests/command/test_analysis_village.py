"""The demo village's planted hotspots (fixtures/village.py) are found, each in its category,
with the default parameters; nothing else of those categories is called a hotspot there."""

from __future__ import annotations

import json

import pytest
from django.contrib.gis.geos import GEOSGeometry, LineString, Point
from django.core.management import call_command

from command.analysis.hotspots import hotspots_compute
from command.models import Category
from fixtures.village import HIGH_RISE_ROW_X, HIGH_RISE_ROW_Y, MAIN_CROSSING, MARKET, to_lonlat


@pytest.mark.django_db
def test_the_planted_hotspots_are_found_each_in_its_category():
    # given
    call_command("seed")
    codes = dict(Category.objects.values_list("id", "code"))
    # when: the latest 30-day window, with two before it
    found = hotspots_compute()
    by_category: dict[str, list[GEOSGeometry]] = {}
    for h in found:
        by_category.setdefault(codes[h.category_id], []).append(GEOSGeometry(json.dumps(h.geojson), srid=4326))
    for planted in ("traffic_accident", "falling_object", "parking_dispute"):  # over the whole 90 days
        assert any(h.recurrent and codes[h.category_id] == planted for h in found), planted
    # then
    crossing, market = Point(*to_lonlat(*MAIN_CROSSING), srid=4326), Point(*to_lonlat(*MARKET), srid=4326)
    # the falling objects land 2-12 m south of the high-rise row's front
    row = LineString(
        to_lonlat(HIGH_RISE_ROW_X[0], HIGH_RISE_ROW_Y[0] - 7),
        to_lonlat(HIGH_RISE_ROW_X[1], HIGH_RISE_ROW_Y[0] - 7),
        srid=4326,
    )
    assert [hull.distance(crossing) == 0 for hull in by_category["traffic_accident"]] == [True]
    assert [hull.distance(market) == 0 for hull in by_category["parking_dispute"]] == [True]
    assert by_category["falling_object"]
    for hull in by_category["falling_object"]:  # on the row (the hull spans it), not elsewhere
        assert hull.intersects(row) and hull.centroid.distance(row) < 0.0002  # ~20 m
