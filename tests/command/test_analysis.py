"""Analysis on hand-made incident sets: hotspots (found / not, recurrent / not, trend, the
event), camera coverage (inside the cone / behind it, gaps), grid-cell statistics against a
hand computation. Coordinates are metres east/north of (117.0005, 39.0005), in the test grid."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.gis.geos import GEOSGeometry, LineString, Point
from django.test import override_settings

from command.analysis.cells import cell_performance
from command.analysis.coverage import camera_incident_counts, road_coverage
from command.analysis.hotspots import hotspots_compute
from command.event_payloads import payload_validate
from command.models import Category, Event, GridCell, HotspotAlert, Incident, Road, Team
from command.selectors import cameras_covering
from command.services.dataset import dataset_load
from command.services.hotspots import hotspots_refresh
from command.services.places import camera_save

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LON0, LAT0 = 117.0005, 39.0005  # the centre of cell A-01 (tests/conftest.py)
M_LON = 111_320.0 * math.cos(math.radians(LAT0))
M_LAT = 110_574.0

# Hotspot parameters for these tests: 30-day windows, 3 of them, recurrent over all 3.
HOTSPOT_SETTINGS = {
    "HOTSPOT_RADIUS_M": 40,
    "HOTSPOT_MIN_INCIDENTS": 5,
    "HOTSPOT_CATEGORY_PARAMS": {"parking_dispute": (20.0, 4)},
    "HOTSPOT_WINDOW_DAYS": 30,
    "HOTSPOT_WINDOWS": 3,
    "HOTSPOT_RECURRENT_WINDOWS": 3,
    "HOTSPOT_GROWTH_PERCENT": 25,
}


def at(x: float, y: float) -> Point:
    return Point(LON0 + x / M_LON, LAT0 + y / M_LAT, srid=4326)


def incidents(
    category: Category,
    points: list[tuple[float, float]],
    *,
    days_ago: float,
    cell: GridCell | None = None,
    team: Team | None = None,
    status: str | None = None,
    **times: timedelta | None,
) -> list[Incident]:
    """One unsaved closed incident per point, opened ``days_ago`` before NOW (plus one minute
    per point, so they differ); ``times`` are offsets from opening (arrived_at=timedelta(...))."""
    out = []
    for n, (x, y) in enumerate(points):
        opened = NOW - timedelta(days=days_ago) + timedelta(minutes=n)
        stamps = {k: (opened + v if v is not None else None) for k, v in times.items()}
        out.append(
            Incident(
                category=category,
                status=status or ("closed" if stamps.get("resolved_at") else "new"),
                location=at(x, y),
                grid_cell=cell,
                team=team,
                opened_at=opened,
                last_report_at=opened,
                due_at=opened + timedelta(minutes=category.sla_minutes),
                updated_at=opened,
                **stamps,
            )
        )
    return out


def ring(n: int, radius: float, cx: float = 0.0, cy: float = 0.0) -> list[tuple[float, float]]:
    return [
        (cx + radius * math.cos(2 * math.pi * k / n), cy + radius * math.sin(2 * math.pi * k / n)) for k in range(n)
    ]


def load(*sets: list[Incident]) -> None:
    dataset_load(incidents=[i for s in sets for i in s], derive=True, nearest_buildings=False)


@pytest.mark.django_db
@override_settings(**HOTSPOT_SETTINGS)
def test_a_known_cluster_is_found_and_a_scattered_set_is_not(grid, reference):
    # given: 8 accidents within 10 m of the centre, and 8 others 60 m apart from each other
    accident, dispute = reference["traffic_accident"], reference["neighbour_dispute"]
    cluster = incidents(accident, ring(8, 10.0), days_ago=5)
    scattered = incidents(dispute, [(-120 + 60 * k, 40.0 * (k % 2)) for k in range(8)], days_ago=5)
    load(cluster, scattered)
    # when
    found = hotspots_compute(end=NOW)
    # then: one hotspot, of the accidents, holding all 8, its hull around them
    assert [(h.category_id, h.count) for h in found] == [(accident.pk, 8)]
    hotspot = found[0]
    assert hotspot.first_at == cluster[0].opened_at and hotspot.last_at == cluster[-1].opened_at
    assert hotspot.trend == "new" and hotspot.windows == 1 and not hotspot.recurrent
    assert hotspot.grid_cell_id == grid["A-01"].pk
    hull = GEOSGeometry(json.dumps(hotspot.geojson), srid=4326)
    assert hull.contains(at(0, 0)) and hull.contains(at(10, 0)) and not hull.contains(at(60, 0))


@pytest.mark.django_db
@override_settings(**HOTSPOT_SETTINGS)
def test_categories_are_clustered_apart_with_their_own_distance(grid, reference):
    # given: 3 accidents and 3 parking disputes at one spot: mixed, 6 would make a cluster of 5;
    # parking disputes need 4 within 20 m (HOTSPOT_CATEGORY_PARAMS), accidents 5 within 40 m
    accident, parking = reference["traffic_accident"], reference["parking_dispute"]
    load(
        incidents(accident, ring(3, 5.0), days_ago=3),
        incidents(parking, ring(3, 5.0), days_ago=3),
        incidents(parking, ring(4, 8.0, cx=-150), days_ago=3),  # 4 within 20 m: a parking hotspot
        incidents(accident, ring(4, 8.0, cx=150), days_ago=3),  # 4 accidents: below their minimum
    )
    # when
    found = hotspots_compute(end=NOW)
    # then
    assert [(h.category_id, h.count) for h in found] == [(parking.pk, 4)]


@pytest.mark.django_db
@override_settings(**HOTSPOT_SETTINGS)
def test_a_cluster_over_three_windows_is_recurrent_and_one_seen_once_is_not(grid, reference):
    # given: accidents at the centre in each of the three 30-day windows; parking disputes
    # 120 m away only in the latest window (then 6 of them, after 5 the window before: stable)
    accident, parking = reference["traffic_accident"], reference["parking_dispute"]
    load(
        incidents(accident, ring(6, 10.0), days_ago=75),
        incidents(accident, ring(6, 10.0), days_ago=45),
        incidents(accident, ring(9, 10.0), days_ago=15),
        incidents(parking, ring(6, 8.0, cx=120), days_ago=10),
    )
    # when
    found = {h.category_id: h for h in hotspots_compute(end=NOW)}
    # then
    recurring, once = found[accident.pk], found[parking.pk]
    assert (recurring.count, recurring.windows, recurring.recurrent) == (9, 3, True)
    assert (recurring.previous_count, recurring.trend) == (6, "growing")  # 9 >= 6 x 1.25
    assert (once.count, once.windows, once.recurrent, once.trend) == (6, 1, False, "new")
    # an earlier window, as the layer's start/end choose it (ending 30 days ago): two windows of history
    earlier = {h.category_id: h for h in hotspots_compute(start=NOW - timedelta(days=60), end=NOW - timedelta(days=30))}
    assert earlier[accident.pk].count == 6 and earlier[accident.pk].windows == 2


@pytest.mark.django_db
@override_settings(**HOTSPOT_SETTINGS)
def test_a_new_or_growing_hotspot_raises_one_event_and_is_not_repeated(grid, reference):
    # given
    accident = reference["traffic_accident"]
    load(incidents(accident, ring(6, 10.0), days_ago=40), incidents(accident, ring(6, 10.0), days_ago=5))
    # when: stable (6 after 6): nothing to announce
    assert hotspots_refresh(now=NOW) == []
    # when: it grows to 9 in this window
    load(incidents(accident, ring(3, 4.0), days_ago=2))
    events = hotspots_refresh(now=NOW)
    # then: one hotspot.raised on the hotspots layer, its payload a feature of that layer
    assert [(e.kind, e.layer) for e in events] == [("hotspot.raised", "hotspots")]
    payload = Event.objects.get(seq=events[0].seq).payload
    assert payload_validate("hotspot.raised", "hotspots", payload) == payload
    assert payload["properties"]["trend"] == "growing" and payload["properties"]["count"] == 9
    assert payload["geometry"]["type"] == "Polygon"
    # and a second run announces nothing more
    assert hotspots_refresh(now=NOW) == [] and HotspotAlert.objects.count() == 1


@pytest.mark.django_db
def test_a_camera_sees_a_point_inside_its_cone_and_not_one_behind_it(grid, reference):
    # given: a camera at the centre looking east (90°), 60° wide, 50 m deep
    camera = camera_save(code="C-1", name="东向", location=at(0, 0), heading=90.0, fov=60.0, range_m=50.0)
    # then
    assert list(cameras_covering(at(30, 0))) == [camera]  # ahead, inside
    assert list(cameras_covering(at(30, 10))) == [camera]  # inside the 60° (about 18° off axis)
    assert list(cameras_covering(at(-20, 0))) == []  # behind
    assert list(cameras_covering(at(60, 0))) == []  # beyond its range
    assert list(cameras_covering(at(20, 20))) == []  # outside the angle (45° off axis)
    # and it counts the incidents it saw
    load(incidents(reference["other"], [(30, 0), (20, 5), (-20, 0)], days_ago=1))
    counts = camera_incident_counts(start=NOW - timedelta(days=7), end=NOW)
    assert [(c.code, c.incidents) for c in counts] == [("C-1", 2)]


@pytest.mark.django_db
def test_coverage_gaps_of_a_main_road_are_what_no_online_camera_sees(grid, reference):
    # given: a 200 m main road west to east, a camera at its west end looking along it 50 m,
    # an offline one at 100 m, and a lane (not a main road)
    Road.objects.create(name="主路", road_class="main", geom=LineString(at(-100, 0), at(100, 0), srid=4326))
    Road.objects.create(name="小巷", road_class="lane", geom=LineString(at(-100, 30), at(100, 30), srid=4326))
    camera_save(code="C-1", name="西口", location=at(-100, 0), heading=90.0, fov=40.0, range_m=50.0)
    camera_save(code="C-2", name="中段", location=at(0, 0), heading=90.0, fov=40.0, range_m=50.0, status="offline")
    # when
    roads = road_coverage()
    # then: 150 of 200 m are uncovered (to a metre: the cone's arc is a polygon)
    assert [r.name for r in roads] == ["主路"]
    assert roads[0].length_m == pytest.approx(200, abs=1)
    assert roads[0].uncovered_m == pytest.approx(150, abs=1.5)


@pytest.mark.django_db
def test_cell_statistics_equal_a_hand_computation(grid, reference, teams):
    # given, in A-01 over [NOW - 7 days, NOW) (sanitation: SLA 720 min; other: 1440 min):
    a01, a02 = grid["A-01"], grid["A-02"]
    sanitation, other = reference["sanitation"], reference["other"]
    road, vol = teams["road"], teams["volunteer"]
    m = lambda minutes: timedelta(minutes=minutes)  # noqa: E731
    load(
        # road team: arrived after 10 and 30 min, resolved after 100 (in SLA) and 800 (late) min
        incidents(sanitation, [(0, 0)], days_ago=3, cell=a01, team=road, arrived_at=m(10), resolved_at=m(100)),
        incidents(sanitation, [(5, 0)], days_ago=3, cell=a01, team=road, arrived_at=m(30), resolved_at=m(800)),
        # volunteers: one open and overdue (due after 720 min, 2 days ago), one cancelled, one
        # open and not yet due (opened 2 hours ago, due in 10 hours)
        incidents(sanitation, [(0, 5)], days_ago=2, cell=a01, team=vol, arrived_at=m(20)),
        incidents(other, [(5, 5)], days_ago=2, cell=a01, team=vol, status="cancelled", arrived_at=m(1)),
        incidents(sanitation, [(9, 9)], days_ago=2 / 24, cell=a01, team=vol),
        # before the period (the period before: 1 of 1 in SLA) and in A-02
        incidents(sanitation, [(1, 1)], days_ago=10, cell=a01, team=road, resolved_at=m(60)),
        incidents(other, [(100, 0)], days_ago=1, cell=a02, team=road, arrived_at=m(40), resolved_at=m(50)),
    )
    # when
    with override_settings(CELL_SLA_TARGET_PERCENT=80, CELL_BEHIND_DROP_POINTS=10):
        stats = {(s.code, s.team_code): s for s in cell_performance(start=NOW - timedelta(days=7), end=NOW, as_of=NOW)}
    # then, A-01 in total: 5 incidents, 1 cancelled; of the 4 counted, 2 resolved (50 %);
    # arrivals 10, 30, 20 -> median 20; resolutions 100, 800 -> median 450;
    # due: the 2 resolved and the overdue one = 3, met: 1 -> 33.3 %; behind (below 80 %)
    total = stats[("A-01", None)]
    assert (total.incidents, total.cancelled, total.resolved) == (5, 1, 2)
    assert (total.median_response_min, total.median_resolution_min) == (20.0, 450.0)
    assert (total.sla_due, total.sla_met, total.sla_compliance, total.resolved_share) == (3, 1, 33.3, 50.0)
    assert total.previous_compliance == 100.0 and total.behind
    road_a01 = stats[("A-01", "road")]
    assert (road_a01.incidents, road_a01.median_response_min, road_a01.sla_compliance) == (2, 20.0, 50.0)
    vol_a01 = stats[("A-01", "volunteer")]
    assert (vol_a01.incidents, vol_a01.cancelled, vol_a01.sla_due, vol_a01.sla_met) == (3, 1, 1, 0)
    assert vol_a01.resolved_share == 0.0
    a02_total = stats[("A-02", None)]
    assert (a02_total.incidents, a02_total.sla_compliance, a02_total.behind) == (1, 100.0, False)
    # the big grid is not a cell of its own
    assert not any(code == "A" for code, _team in stats)


@pytest.mark.django_db
def test_one_late_incident_does_not_flag_a_quiet_team_but_two_of_three_do(grid, reference, teams):
    # given, over [NOW - 7 days, NOW), sanitation (SLA 720 min), all resolved, per cell and team:
    # A-01 road: 1 late of 3 (66.7 %; 100 % with one more in time); the week before 3 of 3
    # A-01 volunteers: 2 late of 3 (33.3 %; 66.7 % with one more in time)
    # A-02 road: 1 late of 10 (90 %; 100 % with one more); the week before 10 of 10: a 10-point
    #   drop that one incident undoes
    # A-02 volunteers: 3 late of 10 (70 %; 80 % with one more), the week before 10 of 10: a drop
    #   of 20 points even with one more in time
    sanitation = reference["sanitation"]
    m = lambda minutes: timedelta(minutes=minutes)  # noqa: E731

    def week(cell: str, team: str, late: int, n: int, days_ago: float) -> list[Incident]:
        where = {"days_ago": days_ago, "cell": grid[cell], "team": teams[team]}
        x0 = 0 if cell == "A-01" else 100  # A-02 starts east of A-01 (tests/conftest.py)
        return [
            *incidents(sanitation, [(x0 + k, 0) for k in range(n - late)], resolved_at=m(100), **where),
            *incidents(sanitation, [(x0 + k, 5) for k in range(late)], resolved_at=m(800), **where),
        ]

    load(
        week("A-01", "road", 1, 3, 3),
        week("A-01", "road", 0, 3, 10),
        week("A-01", "volunteer", 2, 3, 3),
        week("A-02", "road", 1, 10, 3),
        week("A-02", "road", 0, 10, 10),
        week("A-02", "volunteer", 3, 10, 3),
        week("A-02", "volunteer", 0, 10, 10),
    )
    # when
    with override_settings(CELL_SLA_TARGET_PERCENT=80, CELL_BEHIND_DROP_POINTS=10):
        stats = {s.key: s for s in cell_performance(start=NOW - timedelta(days=7), end=NOW, as_of=NOW)}
    # then: the figures are what happened; the flags have one incident's slack
    keys = [
        (grid[c].pk, t) for c, t in (("A-01", "road"), ("A-01", "volunteer"), ("A-02", "road"), ("A-02", "volunteer"))
    ]
    assert [stats[k].sla_compliance for k in keys] == [66.7, 33.3, 90.0, 70.0]
    assert [stats[k].previous_compliance for k in keys] == [100.0, None, 100.0, 100.0]
    assert [stats[k].behind for k in keys] == [False, True, False, True]


@pytest.mark.django_db
def test_a_period_that_ends_before_it_starts_is_refused(grid):
    with pytest.raises(ValueError, match="end after it starts"):
        cell_performance(start=NOW, end=NOW - timedelta(days=1))


@pytest.mark.django_db
def test_a_gap_breaks_the_streak(grid, reference):
    # given: accidents in the latest and the earliest window, none in the middle one
    accident = reference["traffic_accident"]
    load(incidents(accident, ring(6, 10.0), days_ago=75), incidents(accident, ring(6, 10.0), days_ago=15))
    # when
    with override_settings(**HOTSPOT_SETTINGS):
        (hotspot,) = hotspots_compute(end=NOW)
    # then
    assert (hotspot.windows, hotspot.recurrent, hotspot.trend) == (1, False, "new")


def _layer_rows(name: str, **query: object) -> list[dict]:
    from command.layer_queries import FeatureQuery, layer_features
    from command.layers import LAYERS, LayerGrant

    layer = LAYERS[name]
    page = layer_features(LayerGrant(layer, layer.all_fields, False), FeatureQuery(limit=None, **query))  # type: ignore[arg-type]  # tests only
    return [f["properties"] for f in json.loads(page.geojson)["features"]]


@pytest.mark.django_db
def test_hex_bins_count_the_incidents_of_the_window_in_each_hexagon(grid, reference):
    # given: 5 incidents within 3 m, 1 incident 500 m away, 1 at the first spot but 40 days ago
    other = reference["other"]
    load(
        incidents(other, ring(5, 3.0), days_ago=2),
        incidents(other, [(500, 0)], days_ago=2),
        incidents(other, [(0, 0)], days_ago=40),
    )
    # when: the last 30 days before NOW
    with override_settings(HEXBIN_SIZE_M=50):
        rows = _layer_rows("hexbins", start=NOW - timedelta(days=30), end=NOW)
    # then
    assert sorted(r["count"] for r in rows) == [1, 5]
    assert {r["category_id"] for r in rows} == {other.pk}


@pytest.mark.django_db
def test_an_entrance_no_online_camera_sees_is_a_gap(grid, reference):
    # given: a road along y = 0 and two buildings north of it, 10 m from it; a camera looks at
    # the first one's entrance (the footprint's point nearest the road), none at the second's
    from django.contrib.gis.geos import Polygon

    from command.services.places import building_save

    Road.objects.create(name="路", road_class="lane", geom=LineString(at(-100, 0), at(100, 0), srid=4326))
    seen = building_save(footprint=Polygon.from_bbox((*at(-40, 10).coords, *at(-20, 30).coords)), address="1号")
    unseen = building_save(footprint=Polygon.from_bbox((*at(20, 10).coords, *at(40, 30).coords)), address="2号")
    camera_save(code="C-1", name="门口", location=at(-30, -5), heading=0.0, fov=90.0, range_m=30.0)
    # when
    rows = _layer_rows("entrance_gaps")
    # then
    assert [r["address"] for r in rows] == ["2号"] and rows[0]["id"] == unseen.pk != seen.pk
