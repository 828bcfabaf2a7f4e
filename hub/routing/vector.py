"""CAP areas and group territories as shapely geometries, tested against many points at once.

The pure-Python :mod:`hub.routing.geometry` answers for one point or one territory; this module
answers for arrays: a million member locations against an alert area, two thousand group
territories against it. Conventions are those of :mod:`hub.routing.geometry`:

- polygons live in the plane of (lon, lat) degrees (x = lon, y = lat) and are closed sets
  (a point on an edge is inside: :func:`shapely.intersects_xy`, not ``contains_xy``);
- a circle is a circle on the sphere, radius in kilometres: points are tested with the
  haversine distance on arrays (exact, not in degrees). To decide whether a circle meets a
  territory polygon, the circle is replaced by a polygon whose vertices lie on a slightly larger
  circle, so that it *contains* the true circle: a group territory that only grazes the circle
  may match, and its members are then tested exactly;
- geocodes match when equal after :func:`geocode_key` (a province code does not contain its
  municipalities' codes).

A self-intersecting CAP polygon (a "bow tie") is repaired with :func:`shapely.make_valid`,
which keeps its two lobes; the CAP rules report such polygons to the sender.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from hub.cap.model import Area, Point
from hub.routing.geometry import (
    EARTH_RADIUS_KM,
    CircleShape,
    PolygonShape,
    Ring,
    Territory,
    area_shapes,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CIRCLE_VERTICES = 128

# Geocode valueNames are free text in CAP; these spellings name the same code lists.
_GEOCODE_NAMES = {
    "nis": "nis", "nis5": "nis", "nis-code": "nis", "niscode": "nis", "ins": "nis", "refnis": "nis",
    "postcode": "postcode", "postal": "postcode", "postalcode": "postcode", "postal_code": "postcode",
    "postal-code": "postcode", "zip": "postcode", "zipcode": "postcode",
}


def geocode_key(value_name: str, value: str) -> tuple[str, str]:
    """A geocode as compared for routing: the valueName case-folded with the usual spellings
    of NIS (``NIS``, ``NIS5``, ``INS``, ``REFNIS``...) and postal codes (``postcode``, ``zip``...)
    made one, and the value without surrounding blanks."""
    name = value_name.strip().casefold()
    return _GEOCODE_NAMES.get(name, name), value.strip()


# --- shapes -------------------------------------------------------------------------------------


def _lonlat(ring: Ring) -> list[tuple[float, float]]:
    return [(p.lon, p.lat) for p in ring]


def _valid(geometry: BaseGeometry) -> BaseGeometry:
    return geometry if shapely.is_valid(geometry) else shapely.make_valid(geometry)


def polygon_geometry(shape: PolygonShape) -> BaseGeometry:
    """A polygon shape as a (valid) shapely geometry in (lon, lat)."""
    return _valid(shapely.Polygon(_lonlat(shape.outer), [_lonlat(h) for h in shape.holes]))


def destination(center: Point, bearing_rad: FloatArray, distance_km: float) -> tuple[FloatArray, FloatArray]:
    """Points at ``distance_km`` from ``center`` along great circles: ``(lat, lon)`` arrays."""
    phi1, lam1 = math.radians(center.lat), math.radians(center.lon)
    delta = distance_km / EARTH_RADIUS_KM
    sin_phi2 = math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * np.cos(bearing_rad)
    phi2 = np.arcsin(np.clip(sin_phi2, -1.0, 1.0))
    lam2 = lam1 + np.arctan2(np.sin(bearing_rad) * math.sin(delta) * math.cos(phi1),
                             math.cos(delta) - math.sin(phi1) * np.sin(phi2))
    return np.degrees(phi2), np.degrees(lam2)


def circle_geometry(circle: CircleShape, vertices: int = CIRCLE_VERTICES) -> BaseGeometry:
    """A polygon in (lon, lat) that contains the circle: its vertices lie on a circle of radius
    ``r / cos(pi / n)``, so the chords between them stay outside the true circle (to within the
    curvature of the sphere, far below a metre at alert radii)."""
    if circle.radius_km == 0:
        return shapely.Point(circle.center.lon, circle.center.lat)
    bearings = np.linspace(0.0, 2 * math.pi, vertices, endpoint=False)
    lat, lon = destination(circle.center, bearings, circle.radius_km / math.cos(math.pi / vertices))
    return _valid(shapely.Polygon(np.column_stack([lon, lat])))


def haversine_km(lat: FloatArray, lon: FloatArray, center: Point) -> FloatArray:
    """Great-circle distances from ``center`` to each point, in km (NaN for NaN points)."""
    phi1 = math.radians(center.lat)
    phi2 = np.radians(lat)
    h = (np.sin((phi2 - phi1) / 2) ** 2
         + math.cos(phi1) * np.cos(phi2) * np.sin(np.radians(lon - center.lon) / 2) ** 2)
    result: FloatArray = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return result


def territory_geometry(territory: Territory) -> BaseGeometry | None:
    """The territory's polygons as one shapely geometry, or None when it has none."""
    if not territory.polygons:
        return None
    parts = [polygon_geometry(p) for p in territory.polygons]
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


# --- an alert's area, ready for arrays --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertArea:
    """The union of CAP areas: polygons (prepared shapely geometries), circles, geocodes.

    Build it with :func:`alert_area`; it is *geometric* when it has a usable polygon or circle.
    """

    polygons: tuple[BaseGeometry, ...]
    circles: tuple[CircleShape, ...]
    circle_polygons: tuple[BaseGeometry, ...]
    geocodes: frozenset[tuple[str, str]]

    @property
    def geometric(self) -> bool:
        return bool(self.polygons or self.circles)

    @property
    def empty(self) -> bool:
        return not self.geometric and not self.geocodes

    def meets(self, territories: npt.NDArray[np.object_]) -> BoolArray:
        """For each territory geometry (or None), whether one of the area's shapes meets it."""
        out = np.zeros(len(territories), dtype=bool)
        for shape in (*self.polygons, *self.circle_polygons):
            out |= shapely.intersects(shape, territories)
        return out

    def contains_points(self, lat: FloatArray, lon: FloatArray) -> BoolArray:
        """For each point, whether it lies in one of the area's polygons or circles; NaN: False.

        Each polygon is tested only on the points inside its bounding box, so an area covering
        a province costs little more than the points near it.
        """
        inside = np.zeros(len(lat), dtype=bool)
        for polygon in self.polygons:
            west, south, east, north = shapely.bounds(polygon)
            near = np.flatnonzero((lat >= south) & (lat <= north) & (lon >= west) & (lon <= east))
            if len(near):
                inside[near] |= shapely.intersects_xy(polygon, lon[near], lat[near])
        for circle in self.circles:
            with np.errstate(invalid="ignore"):
                inside |= haversine_km(lat, lon, circle.center) <= circle.radius_km
        return inside


def alert_area(areas: Iterable[Area]) -> AlertArea:
    """The union of the given CAP areas; malformed polygons and circles are left out (the CAP
    rules report them)."""
    polygons: list[BaseGeometry] = []
    circles: list[CircleShape] = []
    geocodes: set[tuple[str, str]] = set()
    seen: set[PolygonShape | CircleShape] = set()
    for area in areas:
        for shape in area_shapes(area):
            if shape in seen:  # infos in several languages usually repeat the same area
                continue
            seen.add(shape)
            if isinstance(shape, CircleShape):
                circles.append(shape)
            else:
                polygons.append(polygon_geometry(shape))
        geocodes.update(geocode_key(g.value_name, g.value) for g in area.geocodes)
    for polygon in polygons:
        shapely.prepare(polygon)
    circle_polygons = tuple(circle_geometry(c) for c in circles)
    for polygon in circle_polygons:
        shapely.prepare(polygon)
    return AlertArea(tuple(polygons), tuple(circles), circle_polygons, frozenset(geocodes))
