"""CAP 1.2 rules for ``<area>``: polygons, circles, altitude and ceiling (§3.2.4, §3.3.1).

Also home to the two small helpers every rule module shares: ``cite`` (the message suffix
naming the section of the specification) and ``shown`` (a value, shortened for a message).

Coordinates are read with our own strict number syntax, not ``float()``: Python's ``float``
accepts ``nan``, ``inf`` and ``1_0``, none of which is a WGS 84 decimal degree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hub.cap.model import Area, Circle, Polygon
from hub.cap.problems import SECTIONS, Code, Problem, error, warning

# A decimal number; an exponent is tolerated since some encoders write floats that way.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_PAIR = re.compile(rf"({_NUMBER}),({_NUMBER})")
_RADIUS = re.compile(_NUMBER)

# CAP 1.2 §3.2.4 polygon: "a minimum of four coordinate pairs MUST be present".
MIN_POLYGON_PAIRS = 4


def cite(what: Code | str) -> str:
    """`` (CAP 1.2 §3.2.4 polygon)``: the suffix every rule message ends with, from a rule
    code's entry in ``SECTIONS`` or from a section given as text (``"3.2.4 geocode"``)."""
    section = SECTIONS[what] if isinstance(what, Code) else what
    return f" (CAP 1.2 §{section})"


def shown(value: str, limit: int = 60) -> str:
    """A value quoted for a message, cut short so a 450 KB ``derefUri`` stays readable."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + f"… ({len(value)} characters)"


def _pair(token: str) -> tuple[float, float] | None:
    m = _PAIR.fullmatch(token)
    return None if m is None else (float(m.group(1)), float(m.group(2)))


def _in_range(lat: float, lon: float) -> bool:
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def check_area(area: Area, path: str) -> Iterator[Problem]:
    """Every rule that concerns one ``<area>`` found at ``path`` (``/alert/info[1]/area[2]``)."""
    for n, polygon in enumerate(area.polygons, 1):
        yield from check_polygon(polygon, f"{path}/polygon[{n}]")
    for n, circle in enumerate(area.circles, 1):
        yield from check_circle(circle, f"{path}/circle[{n}]")
    for n, geocode in enumerate(area.geocodes, 1):
        if not geocode.value_name.strip():
            yield warning(
                f"{path}/geocode[{n}]/valueName", Code.VALUE_NAME_EMPTY,
                f"<geocode> has an empty <valueName> (value {shown(geocode.value)}): the value cannot "
                f"be interpreted without the code's domain" + cite("3.2.4 geocode"),
            )
    yield from _check_ceiling(area, path)


def check_polygon(polygon: Polygon, path: str) -> Iterator[Problem]:
    """§3.2.4: space-delimited ``lat,lon`` pairs, at least four, the first equal to the last."""
    tokens = polygon.text.split()
    if not tokens:
        # Seen in real feeds (an empty <polygon/> next to geocodes): nothing to draw, but the
        # schema accepts it and the geocodes still locate the area.
        yield warning(path, Code.POLYGON_SYNTAX,
                      "<polygon> is empty and is ignored" + cite(Code.POLYGON_SYNTAX))
        return
    points: list[tuple[float, float]] = []
    for n, token in enumerate(tokens, 1):
        point = _pair(token)
        if point is None:
            yield error(
                path, Code.POLYGON_SYNTAX,
                f"<polygon> pair {n} {shown(token)} is not 'lat,lon' in decimal degrees"
                + cite(Code.POLYGON_SYNTAX),
            )
            return
        points.append(point)
    if len(points) < MIN_POLYGON_PAIRS:
        yield error(
            path, Code.POLYGON_POINTS,
            f"<polygon> has {len(points)} coordinate pairs, at least {MIN_POLYGON_PAIRS} are required: "
            f"{shown(polygon.text)}" + cite(Code.POLYGON_POINTS),
        )
    if points[0] != points[-1]:
        yield error(
            path, Code.POLYGON_CLOSED,
            f"<polygon> is not closed: the first pair {shown(tokens[0])} differs from the last "
            f"{shown(tokens[-1])}" + cite(Code.POLYGON_CLOSED),
        )
    outside = [tokens[i] for i, (lat, lon) in enumerate(points) if not _in_range(lat, lon)]
    if outside:
        more = f" and {len(outside) - 1} more" if len(outside) > 1 else ""
        yield error(
            path, Code.COORDINATE_RANGE,
            f"<polygon> pair {shown(outside[0])}{more} outside latitude [-90, 90] / "
            f"longitude [-180, 180]" + cite(Code.COORDINATE_RANGE),
        )


def check_circle(circle: Circle, path: str) -> Iterator[Problem]:
    """§3.2.4: ``lat,lon radius``, the radius in kilometres; a radius of 0 is a point."""
    tokens = circle.text.split()
    if not tokens:
        yield warning(path, Code.CIRCLE_SYNTAX,
                      "<circle> is empty and is ignored" + cite(Code.CIRCLE_SYNTAX))
        return
    center = _pair(tokens[0])
    if len(tokens) == 1 and center is not None:
        yield error(
            path, Code.CIRCLE_SYNTAX,
            f"<circle> {shown(circle.text)} has no radius: expected 'lat,lon radius' with the radius "
            f"in kilometres" + cite(Code.CIRCLE_SYNTAX),
        )
        return
    if len(tokens) != 2 or center is None or _RADIUS.fullmatch(tokens[1]) is None:
        yield error(
            path, Code.CIRCLE_SYNTAX,
            f"<circle> {shown(circle.text)} is not 'lat,lon radius' in decimal degrees and kilometres"
            + cite(Code.CIRCLE_SYNTAX),
        )
        return
    radius = float(tokens[1])
    if radius < 0:
        yield error(
            path, Code.CIRCLE_RADIUS,
            f"<circle> radius {shown(tokens[1])} is negative" + cite(Code.CIRCLE_RADIUS),
        )
    if not _in_range(*center):
        yield error(
            path, Code.COORDINATE_RANGE,
            f"<circle> centre {shown(tokens[0])} outside latitude [-90, 90] / longitude [-180, 180]"
            + cite(Code.COORDINATE_RANGE),
        )


def _check_ceiling(area: Area, path: str) -> Iterator[Problem]:
    """§3.2.4 ceiling: "MUST NOT be used except in combination with the <altitude> element"."""
    if area.ceiling is None:
        return
    if area.altitude is None:
        yield error(
            f"{path}/ceiling", Code.CEILING_WITHOUT_ALTITUDE,
            f"<ceiling> {area.ceiling} is given without <altitude>" + cite(Code.CEILING_WITHOUT_ALTITUDE),
        )
    elif area.ceiling < area.altitude:
        yield error(
            f"{path}/ceiling", Code.CEILING_BELOW_ALTITUDE,
            f"<ceiling> {area.ceiling} is below <altitude> {area.altitude}"
            + cite(Code.CEILING_BELOW_ALTITUDE),
        )
