"""Territories from GeoJSON, and whether CAP areas meet them or hold a point."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hub.cap.model import Area, Circle, Geocode, Point, Polygon
from hub.routing.geometry import (
    CircleShape,
    PolygonShape,
    Territory,
    TerritoryError,
    area_intersects,
    area_shapes,
    contains,
    distance_km,
    parse_territory,
    point_in_area,
    shape_contains,
    shape_meets_polygon,
    territory_to_json,
)

# Around Brussels: lon 4.34..4.37, lat 50.84..50.86, as in an admin's file.
BRUSSELS = [[4.34, 50.84], [4.37, 50.84], [4.37, 50.86], [4.34, 50.86], [4.34, 50.84]]
HOLE = [[4.35, 50.845], [4.36, 50.845], [4.36, 50.855], [4.35, 50.855], [4.35, 50.845]]


def geojson(value: Any) -> str:
    return json.dumps(value)


def box(south: float, west: float, north: float, east: float) -> Polygon:
    """A CAP polygon (lat,lon pairs) for a box."""
    pairs = [(south, west), (south, east), (north, east), (north, west), (south, west)]
    return Polygon(" ".join(f"{lat},{lon}" for lat, lon in pairs))


def area(*, polygons: tuple[Polygon, ...] = (), circles: tuple[Circle, ...] = (),
         geocodes: tuple[Geocode, ...] = ()) -> Area:
    return Area("test", polygons=polygons, circles=circles, geocodes=geocodes)


def territory(*rings: list[list[float]], geocodes: dict[str, list[str]] | None = None) -> Territory:
    """A Feature with one polygon of the given rings (outer first), or none."""
    geometry = {"type": "Polygon", "coordinates": list(rings)} if rings else None
    return parse_territory(geojson({"type": "Feature", "geometry": geometry,
                                    "properties": {"geocodes": geocodes or {}}}))


# --- GeoJSON kinds ------------------------------------------------------------------------------


def test_polygon_is_read_as_lat_lon() -> None:
    t = parse_territory(geojson({"type": "Polygon", "coordinates": [BRUSSELS]}))
    assert len(t.polygons) == 1
    assert t.polygons[0].outer[1] == Point(50.84, 4.37)
    assert t.polygons[0].holes == ()
    assert t.geocodes == frozenset()


def test_polygon_with_hole_and_altitude() -> None:
    with_altitude = [[lon, lat, 100] for lon, lat in BRUSSELS]
    t = parse_territory(geojson({"type": "Polygon", "coordinates": [with_altitude, HOLE]}))
    assert t.polygons[0].outer[0] == Point(50.84, 4.34)
    assert t.polygons[0].holes[0][0] == Point(50.845, 4.35)


def test_multipolygon() -> None:
    far = [[lon + 1, lat] for lon, lat in BRUSSELS]
    t = parse_territory(geojson({"type": "MultiPolygon", "coordinates": [[BRUSSELS], [far]]}))
    assert [p.outer[0].lon for p in t.polygons] == [4.34, 5.34]


def test_feature_with_geocodes() -> None:
    t = parse_territory(geojson({
        "type": "Feature", "geometry": {"type": "Polygon", "coordinates": [BRUSSELS]},
        "properties": {"name": "Brussels", "geocodes": {"NIS": ["21001", "21004"]}}}))
    assert len(t.polygons) == 1
    assert t.geocodes == {("NIS", "21001"), ("NIS", "21004")}


def test_feature_of_geocodes_only() -> None:
    t = parse_territory(geojson({"type": "Feature", "geometry": None,
                                 "properties": {"geocodes": {"NIS": ["21001"]}}}))
    assert t == Territory((), frozenset({("NIS", "21001")}))


def test_feature_collection_joins_its_features() -> None:
    t = parse_territory(geojson({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [BRUSSELS]},
         "properties": None},
        {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [[HOLE]]},
         "properties": {"geocodes": {"EMMA_ID": ["BE1"]}}},
    ]}))
    assert len(t.polygons) == 2
    assert t.geocodes == {("EMMA_ID", "BE1")}


def test_geometry_collection_nested() -> None:
    t = parse_territory(geojson({"type": "GeometryCollection", "geometries": [
        {"type": "Polygon", "coordinates": [BRUSSELS]},
        {"type": "GeometryCollection", "geometries": [
            {"type": "MultiPolygon", "coordinates": [[HOLE], [BRUSSELS]]}]},
    ]}))
    assert len(t.polygons) == 3


def test_round_trip() -> None:
    t = parse_territory(geojson({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [BRUSSELS, HOLE]},
         "properties": {"geocodes": {"NIS": ["21004", "21001"], "EMMA_ID": ["BE1"]}}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [HOLE]}},
    ]}))
    text = territory_to_json(t)
    assert parse_territory(text) == t
    assert json.loads(text)["features"][0]["geometry"]["type"] == "MultiPolygon"


def test_round_trip_of_geocodes_only() -> None:
    t = Territory((), frozenset({("NIS", "21001")}))
    assert parse_territory(territory_to_json(t)) == t


BAD = [
    ("{", "not JSON: "),
    ('{"type": "Polygon", "coordinates": [[[NaN, 50]]]}', "not JSON: NaN is not a number"),
    ("[]", "expected an object"),
    ("{}", "no 'type'"),
    (geojson({"type": "Point", "coordinates": [4.3, 50.8]}), "type 'Point' is not an area"),
    (geojson({"type": "LineString", "coordinates": BRUSSELS}), "type 'LineString' is not an area"),
    (geojson({"type": "Circle"}), "unknown type 'Circle'"),
    (geojson({"type": "Polygon"}), "no 'coordinates'"),
    (geojson({"type": "Polygon", "coordinates": []}), "coordinates: polygon has no ring"),
    (geojson({"type": "Polygon", "coordinates": {}}), "coordinates: expected an array"),
    (geojson({"type": "Polygon", "coordinates": [BRUSSELS[:3]]}),
     "coordinates[0]: ring has 3 positions, needs at least 4"),
    (geojson({"type": "Polygon", "coordinates": [BRUSSELS[:4]]}), "coordinates[0]: ring is not closed"),
    (geojson({"type": "Polygon", "coordinates": [[[4.3, 50.8], [4.4, 50.8], [200, 50.9], [4.3, 50.8]]]}),
     "coordinates[0][2]: longitude 200 out of range"),
    (geojson({"type": "Polygon", "coordinates": [[[4.3, 50.8], [4.4, 95.5], [4.4, 50.9], [4.3, 50.8]]]}),
     "coordinates[0][1]: latitude 95.5 out of range"),
    (geojson({"type": "Polygon", "coordinates": [[[4.3], [4.4, 5], [4.4, 50.9], [4.3]]]}),
     "coordinates[0][0]: a position is [longitude, latitude]"),
    (geojson({"type": "Polygon", "coordinates": [[[4.3, "50"], [4.4, 5], [4.4, 50.9], [4.3, 50]]]}),
     "coordinates[0][0]: '50' is not a number"),
    (geojson({"type": "Polygon", "coordinates": [[[4.3, True], [4.4, 5], [4.4, 50.9], [4.3, 50]]]}),
     "coordinates[0][0]: True is not a number"),
    (geojson({"type": "MultiPolygon", "coordinates": [[BRUSSELS], [HOLE, BRUSSELS[:4]]]}),
     "coordinates[1][1]: ring is not closed"),
    (geojson({"type": "Feature", "properties": {}}), "no 'geometry'"),
    (geojson({"type": "Feature", "geometry": {"type": "Point", "coordinates": [4, 50]}}),
     "geometry: type 'Point' is not an area"),
    (geojson({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [BRUSSELS]}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [BRUSSELS[:4]]}}]}),
     "features[1].geometry.coordinates[0]: ring is not closed"),
    (geojson({"type": "FeatureCollection", "features": [{"type": "Polygon", "coordinates": [BRUSSELS]}]}),
     "features[0]: not a Feature"),
    (geojson({"type": "FeatureCollection", "features": {}}), "features: expected an array"),
    (geojson({"type": "FeatureCollection", "features": []}), "no polygon and no geocode"),
    (geojson({"type": "GeometryCollection", "geometries": [
        {"type": "Polygon", "coordinates": [BRUSSELS]}, {"type": "MultiPoint", "coordinates": []}]}),
     "geometries[1]: type 'MultiPoint' is not an area"),
    (geojson({"type": "GeometryCollection", "geometries": [{"type": "Feature", "geometry": None}]}),
     "geometries[0]: type 'Feature' is not a geometry"),
    (geojson({"type": "Feature", "geometry": None, "properties": {"geocodes": {"NIS": ["21001", 21004]}}}),
     "properties.geocodes.NIS[1]: 21004 is not a non-empty string"),
    (geojson({"type": "Feature", "geometry": None, "properties": {"geocodes": {"NIS": "21001"}}}),
     "properties.geocodes.NIS: expected an array"),
    (geojson({"type": "Feature", "geometry": None, "properties": {"geocodes": []}}),
     "properties.geocodes: expected an object"),
    (geojson({"type": "Feature", "geometry": None, "properties": "x"}), "properties: expected an object"),
    (geojson({"type": "Feature", "geometry": None, "properties": {}}), "no polygon and no geocode"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_territory_names_where(text: str, message: str) -> None:
    with pytest.raises(TerritoryError) as info:
        parse_territory(text)
    assert str(info.value).startswith(message)
    assert isinstance(info.value, ValueError)


# --- polygons against polygons ------------------------------------------------------------------

SQUARE = territory(BRUSSELS)  # lat 50.84..50.86, lon 4.34..4.37
WITH_HOLE = territory(BRUSSELS, HOLE)  # hole: lat 50.845..50.855, lon 4.35..4.36


@pytest.mark.parametrize(("polygon", "expected"), [
    (box(50.85, 4.36, 50.87, 4.38), True),  # overlapping corner
    (box(50.80, 4.35, 50.90, 4.36), True),  # a band across, no vertex inside either way
    (box(50.90, 4.34, 50.95, 4.37), False),  # north of it
    (box(50.84, 4.30, 50.86, 4.33), False),  # west of it, boxes apart
    (box(50.80, 4.30, 50.83, 4.33), False),
    (box(50.86, 4.34, 50.88, 4.37), True),  # shares the northern edge
    (box(50.86, 4.37, 50.88, 4.40), True),  # touches at one corner
    (box(50.845, 4.345, 50.855, 4.355), True),  # alert inside territory
    (box(50.0, 4.0, 51.0, 5.0), True),  # territory inside alert
], ids=["overlap", "cross", "north", "west", "southwest", "edge", "corner", "inside", "around"])
def test_polygon_against_polygon(polygon: Polygon, expected: bool) -> None:
    assert area_intersects(SQUARE, area(polygons=(polygon,))) is expected


def test_triangle_disjoint_though_boxes_overlap() -> None:
    # A triangle whose bounding box covers the territory's NE corner but which stays outside it.
    triangle = Polygon("50.87,4.365 50.87,4.40 50.83,4.40 50.87,4.365")
    assert area_intersects(SQUARE, area(polygons=(triangle,))) is False


@pytest.mark.parametrize(("polygon", "expected"), [
    (box(50.847, 4.352, 50.853, 4.358), False),  # wholly in the hole
    (box(50.845, 4.35, 50.855, 4.36), True),  # the hole itself: its edge belongs to the territory
    (box(50.847, 4.352, 50.858, 4.358), True),  # from the hole across its edge
    (box(50.0, 4.0, 51.0, 5.0), True),  # around it all
    (box(50.841, 4.341, 50.844, 4.344), True),  # in the ring between outer and hole
], ids=["in-hole", "hole-edge", "across-hole-edge", "around", "ring"])
def test_holes_are_respected(polygon: Polygon, expected: bool) -> None:
    assert area_intersects(WITH_HOLE, area(polygons=(polygon,))) is expected


def test_a_polygon_in_the_hole_of_another_does_not_meet_it() -> None:
    # CAP polygons have no holes, so test the shapes directly, both ways round.
    ring = PolygonShape(WITH_HOLE.polygons[0].outer, WITH_HOLE.polygons[0].holes)
    inner = area_shapes(area(polygons=(box(50.847, 4.352, 50.853, 4.358),)))[0]
    assert isinstance(inner, PolygonShape)
    assert not shape_meets_polygon(inner, ring)
    assert not shape_meets_polygon(ring, inner)
    assert shape_meets_polygon(ring, ring)


def test_unclosed_cap_polygon_is_closed() -> None:
    open_box = Polygon("50.85,4.36 50.85,4.38 50.87,4.38 50.87,4.36")
    assert area_shapes(area(polygons=(open_box,)))[0] == PolygonShape(
        (Point(50.85, 4.36), Point(50.85, 4.38), Point(50.87, 4.38), Point(50.87, 4.36), Point(50.85, 4.36)))
    assert area_intersects(SQUARE, area(polygons=(open_box,))) is True


@pytest.mark.parametrize("text", ["50.85,4.36 50.85", "a,b c,d e,f a,b", "50.85,4.36 50.86,4.36 50.85,4.36",
                                  "95,4 96,4 96,5 95,4", "nan,4 50,4 50,5 nan,4", ""])
def test_malformed_cap_polygons_are_skipped(text: str) -> None:
    assert area_shapes(area(polygons=(Polygon(text),))) == ()
    assert area_intersects(SQUARE, area(polygons=(Polygon(text),))) is None
    # next to a good one, the good one decides
    assert area_intersects(SQUARE, area(polygons=(Polygon(text), box(50.90, 4.34, 50.95, 4.37)))) is False


def test_any_of_several_polygons_is_enough() -> None:
    far = box(10, 10, 11, 11)
    assert area_intersects(SQUARE, area(polygons=(far, box(50.85, 4.35, 50.855, 4.355)))) is True
    assert area_intersects(SQUARE, area(polygons=(far,))) is False


# --- circles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("50.85,4.355 1", True),  # centre inside
    ("50.85,4.355 0", True),  # the centre point, inside
    ("50.84,4.355 0", True),  # a point on the southern edge
    ("50.83,4.355 0", False),  # a point outside
    ("50.83,4.355 1.2", True),  # 1.11 km south of the edge: reaches it
    ("50.83,4.355 1.0", False),  # falls short
    ("50.85,4.39 1.5", True),  # 1.41 km east of the edge at lat 50.85
    ("50.85,4.39 1.3", False),
    ("50.85,4.355 50", True),  # swallows the territory
    ("51.5,4.355 10", False),
], ids=["centre-in", "radius-0-in", "radius-0-edge", "radius-0-out", "reaches-south", "short-south",
        "reaches-east", "short-east", "around", "far"])
def test_circle_against_polygon(text: str, expected: bool) -> None:
    assert area_intersects(SQUARE, area(circles=(Circle(text),))) is expected


def test_circle_in_a_hole() -> None:
    assert area_intersects(WITH_HOLE, area(circles=(Circle("50.85,4.355 0.2"),))) is False
    # 0.6 km reaches the hole's edge at lat 50.855
    assert area_intersects(WITH_HOLE, area(circles=(Circle("50.85,4.355 0.6"),))) is True


@pytest.mark.parametrize("text", ["50.85,4.355", "50.85 4.355 1", "x,y 1", "50.85,4.355 -1",
                                  "50.85,4.355 inf", "91,4 1", "50.85,4.355 nan"])
def test_malformed_circles_are_skipped(text: str) -> None:
    assert area_shapes(area(circles=(Circle(text),))) == ()
    assert area_intersects(SQUARE, area(circles=(Circle(text),))) is None


def test_distance() -> None:
    assert distance_km(Point(50.0, 4.0), Point(51.0, 4.0)) == pytest.approx(111.2, abs=0.1)
    assert distance_km(Point(50.0, 4.0), Point(50.0, 4.0)) == 0


# --- geocodes -----------------------------------------------------------------------------------

CODED = territory(BRUSSELS, geocodes={"NIS": ["21001", "21004"]})
ONLY_CODES = territory(geocodes={"NIS": ["21001"]})


def test_geocode_match() -> None:
    assert area_intersects(CODED, area(geocodes=(Geocode("NIS", "21004"),))) is True
    both = area(geocodes=(Geocode("EMMA_ID", "x"), Geocode("NIS", "21001")))
    assert area_intersects(ONLY_CODES, both) is True


def test_geocode_match_wins_over_far_polygon() -> None:
    far = area(polygons=(box(10, 10, 11, 11),), geocodes=(Geocode("NIS", "21001"),))
    assert area_intersects(CODED, far) is True


def test_geocode_no_match_with_the_same_value_name() -> None:
    assert area_intersects(CODED, area(geocodes=(Geocode("NIS", "11002"),))) is False
    assert area_intersects(ONLY_CODES, area(geocodes=(Geocode("NIS", "11002"),))) is False


@pytest.mark.parametrize(("t", "a"), [
    (SQUARE, area(geocodes=(Geocode("NIS", "21001"),))),  # territory without geocodes
    (CODED, area(geocodes=(Geocode("EMMA_ID", "BE1"),))),  # no geocode of the same valueName
    (ONLY_CODES, area(polygons=(box(50.85, 4.35, 50.86, 4.36),))),  # no polygon to compare shapes with
    (SQUARE, area()),  # nothing at all
])
def test_undecidable(t: Territory, a: Area) -> None:
    assert area_intersects(t, a) is None


def test_value_names_are_case_sensitive_and_values_exact() -> None:
    assert area_intersects(ONLY_CODES, area(geocodes=(Geocode("nis", "21001"),))) is None
    assert area_intersects(ONLY_CODES, area(geocodes=(Geocode("NIS", "021001"),))) is False


# --- points -------------------------------------------------------------------------------------


def test_contains() -> None:
    assert contains(SQUARE, Point(50.85, 4.355))
    assert contains(SQUARE, Point(50.84, 4.355))  # on the edge
    assert contains(SQUARE, Point(50.86, 4.37))  # a corner
    assert not contains(SQUARE, Point(50.87, 4.355))
    assert contains(WITH_HOLE, Point(50.842, 4.342))
    assert not contains(WITH_HOLE, Point(50.85, 4.355))
    assert contains(WITH_HOLE, Point(50.845, 4.355))  # on the hole's edge
    assert not contains(ONLY_CODES, Point(50.85, 4.355))


def test_point_in_area() -> None:
    a = area(polygons=(box(50.84, 4.34, 50.86, 4.37), Polygon("bad")),
             circles=(Circle("51.2,4.4 5"), Circle("bad")), geocodes=(Geocode("NIS", "21001"),))
    assert point_in_area(Point(50.85, 4.355), a)  # in the polygon
    assert point_in_area(Point(51.23, 4.42), a)  # in the circle (3.6 km from its centre)
    assert not point_in_area(Point(51.3, 4.4), a)  # 11 km north of it
    assert not point_in_area(Point(50.85, 4.355), area(geocodes=(Geocode("NIS", "21001"),)))


def test_shapes_for_many_points() -> None:
    shapes = area_shapes(area(circles=(Circle("50.85,4.35 0"),)))
    assert shapes == (CircleShape(Point(50.85, 4.35), 0.0),)
    assert shape_contains(shapes[0], Point(50.85, 4.35))
    assert not shape_contains(shapes[0], Point(50.85, 4.3501))


# --- properties ---------------------------------------------------------------------------------

lats = st.floats(49.0, 52.0, allow_nan=False)
lons = st.floats(2.0, 7.0, allow_nan=False)


@st.composite
def rings(draw: st.DrawFn) -> list[list[float]]:
    """A closed ring of 3 to 8 random points in Belgium, in GeoJSON order; it may cross itself."""
    points = draw(st.lists(st.tuples(lons, lats), min_size=3, max_size=8))
    return [[lon, lat] for lon, lat in [*points, points[0]]]


def cap_polygon(ring: list[list[float]]) -> Polygon:
    return Polygon(" ".join(f"{lat!r},{lon!r}" for lon, lat in ring))


@given(rings())
def test_a_polygon_meets_itself(ring: list[list[float]]) -> None:
    t = territory(ring)
    assert area_intersects(t, area(polygons=(cap_polygon(ring),))) is True
    assert parse_territory(territory_to_json(t)) == t


@given(rings(), st.floats(6.0, 100.0), st.floats(-1.0, 1.0))
def test_a_copy_moved_far_away_never_meets(ring: list[list[float]], dlon: float, dlat: float) -> None:
    moved = [[lon + dlon, lat + dlat] for lon, lat in ring]
    assert area_intersects(territory(ring), area(polygons=(cap_polygon(moved),))) is False


def convex_hull(points: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Counter-clockwise hull (monotone chain), without collinear points."""
    pts = sorted(set(points))

    def cross(o: tuple[int, int], a: tuple[int, int], b: tuple[int, int]) -> int:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[int, int]] = []
    upper: list[tuple[int, int]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


# Integer degrees keep every orientation test exact, so points on edges are tested too.
xs = st.integers(-170, 170)
ys = st.integers(-80, 80)


@given(st.lists(st.tuples(xs, ys), min_size=3, max_size=12), st.tuples(xs, ys))
def test_point_in_convex_polygon_agrees_with_half_planes(points: list[tuple[int, int]],
                                                         probe: tuple[int, int]) -> None:
    hull = convex_hull(points)
    assume(len(hull) >= 3)
    ring = [[float(x), float(y)] for x, y in [*hull, hull[0]]]
    x, y = probe
    inside = all((b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]) >= 0
                 for a, b in zip(hull, [*hull[1:], hull[0]], strict=True))
    p = Point(float(y), float(x))
    assert contains(territory(ring), p) is inside
    assert point_in_area(p, area(polygons=(cap_polygon(ring),))) is inside
