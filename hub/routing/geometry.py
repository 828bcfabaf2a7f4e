"""Territories and CAP areas as shapes: do they meet, and does a point lie in them.

An entity's territory comes from an admin's GeoJSON file (positions are ``[lon, lat]``) plus
optional geocodes; inside, every point is a :class:`~hub.cap.model.Point` (``lat``, ``lon``).
A CAP area becomes shapes with :func:`area_shapes`: one :class:`PolygonShape` per valid
``<polygon>`` and one :class:`CircleShape` per valid ``<circle>``; malformed ones are skipped,
since the CAP rules report them.

Shapes are closed sets: a point on an edge is inside, and two shapes that only touch meet.
Polygon tests work in the plane of (lon, lat) degrees; a circle is tested with distances in km
(haversine from its centre to a point, an equirectangular projection around its centre to an
edge), which is close enough for the radii of public alerts away from the poles.

Limits: the antimeridian is not handled (a ring that crosses it is read as going the long way
round), rings are not checked for self-intersection or winding, and geocodes match only when
equal (a province code does not contain its municipalities' codes).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hub.cap.model import Area, Point

EARTH_RADIUS_KM = 6371.0088  # mean radius of WGS 84

Ring = tuple[Point, ...]
"""A closed ring: at least four points, the last equal to the first."""

Box = tuple[float, float, float, float]
"""``(min_lat, min_lon, max_lat, max_lon)``."""


class TerritoryError(ValueError):
    """A territory file that cannot be used; the message starts with where the problem is."""


@dataclass(frozen=True, slots=True)
class PolygonShape:
    """An outer ring less its holes."""

    outer: Ring
    holes: tuple[Ring, ...] = ()
    box: Box = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lats = [p.lat for p in self.outer]
        lons = [p.lon for p in self.outer]
        object.__setattr__(self, "box", (min(lats), min(lons), max(lats), max(lons)))


@dataclass(frozen=True, slots=True)
class CircleShape:
    center: Point
    radius_km: float


Shape = PolygonShape | CircleShape


@dataclass(frozen=True, slots=True)
class Territory:
    """Where an entity may alert: polygons, and geocodes as ``(valueName, value)`` pairs."""

    polygons: tuple[PolygonShape, ...] = ()
    geocodes: frozenset[tuple[str, str]] = frozenset()


# --- planar primitives, x = lon, y = lat -------------------------------------------------------


def _cross(o: Point, a: Point, b: Point) -> float:
    return (a.lon - o.lon) * (b.lat - o.lat) - (a.lat - o.lat) * (b.lon - o.lon)


def _within_box(p: Point, a: Point, b: Point) -> bool:
    return (min(a.lon, b.lon) <= p.lon <= max(a.lon, b.lon)
            and min(a.lat, b.lat) <= p.lat <= max(a.lat, b.lat))


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    return _cross(a, b, p) == 0 and _within_box(p, a, b)


def _segments_meet(a: Point, b: Point, c: Point, d: Point) -> bool:
    """Whether closed segments ``ab`` and ``cd`` share a point."""
    d1, d2 = _cross(c, d, a), _cross(c, d, b)
    d3, d4 = _cross(a, b, c), _cross(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return ((d1 == 0 and _within_box(a, c, d)) or (d2 == 0 and _within_box(b, c, d))
            or (d3 == 0 and _within_box(c, a, b)) or (d4 == 0 and _within_box(d, a, b)))


def _edges(ring: Ring) -> Iterator[tuple[Point, Point]]:
    return zip(ring, ring[1:], strict=False)


def _rings(shape: PolygonShape) -> Iterator[Ring]:
    yield shape.outer
    yield from shape.holes


def _in_ring(p: Point, ring: Ring) -> int:
    """1 strictly inside, 0 on the boundary, -1 outside (even-odd rule)."""
    inside = False
    for a, b in _edges(ring):
        if _on_segment(p, a, b):
            return 0
        if (a.lat > p.lat) != (b.lat > p.lat):
            x = a.lon + (p.lat - a.lat) * (b.lon - a.lon) / (b.lat - a.lat)
            if p.lon < x:
                inside = not inside
    return 1 if inside else -1


def _polygon_contains(shape: PolygonShape, p: Point) -> bool:
    south, west, north, east = shape.box
    if not (south <= p.lat <= north and west <= p.lon <= east):
        return False
    where = _in_ring(p, shape.outer)
    if where <= 0:
        return where == 0
    return all(_in_ring(p, hole) <= 0 for hole in shape.holes)


def _boxes_meet(a: Box, b: Box) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _edge_box(a: Point, b: Point) -> Box:
    return min(a.lat, b.lat), min(a.lon, b.lon), max(a.lat, b.lat), max(a.lon, b.lon)


def _polygons_meet(a: PolygonShape, b: PolygonShape) -> bool:
    if not _boxes_meet(a.box, b.box):
        return False
    # Only edges that reach into the other polygon's box can cross it.
    a_edges = [e for ring in _rings(a) for e in _edges(ring) if _boxes_meet(_edge_box(*e), b.box)]
    b_edges = [e for ring in _rings(b) for e in _edges(ring) if _boxes_meet(_edge_box(*e), a.box)]
    for p, q in a_edges:
        if any(_segments_meet(p, q, r, s) for r, s in b_edges):
            return True
    # The boundaries do not meet, so each polygon is wholly inside or wholly outside the other.
    return _polygon_contains(b, a.outer[0]) or _polygon_contains(a, b.outer[0])


# --- circles ------------------------------------------------------------------------------------


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance (haversine on a sphere of the mean radius)."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    h = (math.sin((phi2 - phi1) / 2) ** 2
         + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(b.lon - a.lon) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _circle_contains(circle: CircleShape, p: Point) -> bool:
    return distance_km(circle.center, p) <= circle.radius_km


def _distance_to_segment_km(c: Point, a: Point, b: Point) -> float:
    """From ``c`` to segment ``ab``, in an equirectangular projection centred on ``c``."""
    k = math.radians(1) * EARTH_RADIUS_KM
    kx = k * math.cos(math.radians(c.lat))
    ax, ay = (a.lon - c.lon) * kx, (a.lat - c.lat) * k
    bx, by = (b.lon - c.lon) * kx, (b.lat - c.lat) * k
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
    return math.hypot(ax + t * dx, ay + t * dy)


def _circle_meets_polygon(circle: CircleShape, shape: PolygonShape) -> bool:
    if _polygon_contains(shape, circle.center):
        return True
    return any(_distance_to_segment_km(circle.center, a, b) <= circle.radius_km
               for ring in _rings(shape) for a, b in _edges(ring))


# --- shapes of a CAP area -----------------------------------------------------------------------


def _valid_point(p: Point) -> bool:
    return -90 <= p.lat <= 90 and -180 <= p.lon <= 180  # False for NaN too


def area_shapes(area: Area) -> tuple[Shape, ...]:
    """The usable polygons and circles of a CAP area; malformed ones are left out.

    A polygon that is not closed is closed; one with fewer than three points is left out.
    """
    shapes: list[Shape] = []
    for polygon in area.polygons:
        try:
            points = polygon.points()
        except ValueError:
            continue
        if len(points) > 1 and points[0] == points[-1]:
            points = points[:-1]
        if len(points) < 3 or not all(map(_valid_point, points)):
            continue
        shapes.append(PolygonShape((*points, points[0])))
    for circle in area.circles:
        try:
            center, radius = circle.center, circle.radius_km
        except ValueError:
            continue
        if _valid_point(center) and 0 <= radius < math.inf:
            shapes.append(CircleShape(center, radius))
    return tuple(shapes)


def shape_contains(shape: Shape, point: Point) -> bool:
    if isinstance(shape, CircleShape):
        return _circle_contains(shape, point)
    return _polygon_contains(shape, point)


def shape_meets_polygon(shape: Shape, polygon: PolygonShape) -> bool:
    if isinstance(shape, CircleShape):
        return _circle_meets_polygon(shape, polygon)
    return _polygons_meet(shape, polygon)


def point_in_area(point: Point, area: Area) -> bool:
    """Whether the point is in one of the area's polygons or circles (geocodes are not looked at).

    To test many points against one area, compute :func:`area_shapes` once and use
    :func:`shape_contains`.
    """
    return any(shape_contains(shape, point) for shape in area_shapes(area))


def contains(territory: Territory, point: Point) -> bool:
    """Whether the point is in one of the territory's polygons (geocodes are not looked at)."""
    return any(_polygon_contains(shape, point) for shape in territory.polygons)


def area_intersects(territory: Territory, area: Area) -> bool | None:
    """Whether a CAP area meets a territory; ``None`` when that cannot be told.

    True when a geocode of the area equals one of the territory, or one of the area's polygons
    or circles meets one of the territory's polygons. False when this could be decided: the
    area has a usable shape and the territory a polygon, or an area geocode has a ``valueName``
    the territory also has geocodes for. Otherwise (say, an area of geocodes only against a
    territory of polygons only) None.
    """
    area_codes = {(g.value_name, g.value) for g in area.geocodes}
    if area_codes & territory.geocodes:
        return True
    shapes = area_shapes(area)
    for shape in shapes:
        if any(shape_meets_polygon(shape, polygon) for polygon in territory.polygons):
            return True
    decided = bool(shapes and territory.polygons)
    names = {name for name, _ in territory.geocodes}
    if any(name in names for name, _ in area_codes):
        decided = True
    return False if decided else None


# --- GeoJSON ------------------------------------------------------------------------------------

_NOT_AREAS = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString"})


def _fail(where: str, message: str) -> TerritoryError:
    return TerritoryError(f"{where}: {message}" if where else message)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _member(obj: dict[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _fail(where, f"no {key!r}")
    return obj[key]


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, "expected an array")
    return value


def _position(value: Any, where: str) -> Point:
    if not isinstance(value, list) or not 2 <= len(value) <= 3:
        raise _fail(where, "a position is [longitude, latitude]")
    for number in value:
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise _fail(where, f"{number!r} is not a number")
    lon, lat = value[0], value[1]
    if not -180 <= lon <= 180:
        raise _fail(where, f"longitude {lon} out of range")
    if not -90 <= lat <= 90:
        raise _fail(where, f"latitude {lat} out of range")
    return Point(float(lat), float(lon))


def _ring(value: Any, where: str) -> Ring:
    positions = _list(value, where)
    ring = tuple(_position(p, f"{where}[{i}]") for i, p in enumerate(positions))
    if len(ring) < 4:
        raise _fail(where, f"ring has {len(ring)} positions, needs at least 4")
    if ring[0] != ring[-1]:
        raise _fail(where, "ring is not closed")
    return ring


def _polygon(value: Any, where: str) -> PolygonShape:
    rings = _list(value, where)
    if not rings:
        raise _fail(where, "polygon has no ring")
    outer, *holes = (_ring(r, f"{where}[{i}]") for i, r in enumerate(rings))
    return PolygonShape(outer, tuple(holes))


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, "expected an object")
    return value


def _geometry(value: Any, where: str) -> Iterator[PolygonShape]:
    obj = _object(value, where)
    kind = _member(obj, "type", where)
    if kind == "Polygon":
        yield _polygon(_member(obj, "coordinates", where), _join(where, "coordinates"))
    elif kind == "MultiPolygon":
        coords = _join(where, "coordinates")
        for i, polygon in enumerate(_list(_member(obj, "coordinates", where), coords)):
            yield _polygon(polygon, f"{coords}[{i}]")
    elif kind == "GeometryCollection":
        members = _join(where, "geometries")
        for i, geometry in enumerate(_list(_member(obj, "geometries", where), members)):
            yield from _geometry(geometry, f"{members}[{i}]")
    elif kind in _NOT_AREAS:
        raise _fail(where, f"type {kind!r} is not an area")
    elif kind in ("Feature", "FeatureCollection"):
        raise _fail(where, f"type {kind!r} is not a geometry")
    else:
        raise _fail(where, f"unknown type {kind!r}")


def _geocodes(properties: Any, where: str) -> Iterator[tuple[str, str]]:
    if properties is None:
        return
    where = _join(where, "properties")
    value = _object(properties, where).get("geocodes")
    if value is None:
        return
    where = _join(where, "geocodes")
    for name, values in _object(value, where).items():
        here = _join(where, name)
        for i, code in enumerate(_list(values, here)):
            if not isinstance(code, str) or not code:
                raise _fail(f"{here}[{i}]", f"{code!r} is not a non-empty string")
            yield name, code


def _feature(obj: dict[str, Any], where: str) -> tuple[list[PolygonShape], list[tuple[str, str]]]:
    geometry = _member(obj, "geometry", where)
    polygons = [] if geometry is None else list(_geometry(geometry, _join(where, "geometry")))
    return polygons, list(_geocodes(obj.get("properties"), where))


def _top(obj: dict[str, Any]) -> tuple[list[PolygonShape], list[tuple[str, str]]]:
    kind = _member(obj, "type", "")
    if kind == "Feature":
        return _feature(obj, "")
    if kind == "FeatureCollection":
        polygons: list[PolygonShape] = []
        geocodes: list[tuple[str, str]] = []
        for i, feature in enumerate(_list(_member(obj, "features", ""), "features")):
            where = f"features[{i}]"
            feature = _object(feature, where)
            if feature.get("type") != "Feature":
                raise _fail(where, "not a Feature")
            more_polygons, more_geocodes = _feature(feature, where)
            polygons += more_polygons
            geocodes += more_geocodes
        return polygons, geocodes
    return list(_geometry(obj, "")), []


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_territory(text: str) -> Territory:
    """A territory from GeoJSON: a Polygon, MultiPolygon, GeometryCollection, Feature or
    FeatureCollection; a Feature may carry ``{"geocodes": {"NIS": ["21001"]}}`` in its
    properties, and its geometry may be null. Raises :class:`TerritoryError`.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise TerritoryError(f"not JSON: {exc}") from exc
    polygons, geocodes = _top(_object(value, ""))
    if not polygons and not geocodes:
        raise TerritoryError("no polygon and no geocode")
    return Territory(tuple(polygons), frozenset(geocodes))


def _coordinates(ring: Ring) -> list[list[float]]:
    return [[p.lon, p.lat] for p in ring]


def territory_to_json(territory: Territory) -> str:
    """GeoJSON that :func:`parse_territory` reads back as the same territory: a FeatureCollection
    of one Feature whose geometry is a MultiPolygon (or null) and whose properties hold the geocodes.
    """
    geometry = None
    if territory.polygons:
        geometry = {"type": "MultiPolygon",
                    "coordinates": [[_coordinates(ring) for ring in _rings(shape)]
                                    for shape in territory.polygons]}
    geocodes: dict[str, list[str]] = {}
    for name, value in sorted(territory.geocodes):
        geocodes.setdefault(name, []).append(value)
    feature = {"type": "Feature", "geometry": geometry, "properties": {"geocodes": geocodes}}
    return json.dumps({"type": "FeatureCollection", "features": [feature]}, indent=1)

