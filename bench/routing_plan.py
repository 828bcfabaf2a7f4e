"""Benchmark of campaign planning: hub.routing.plan.plan_campaign over a large directory.

    .venv/bin/python bench/routing_plan.py [MEMBERS]

1,000,000 generated members with locations spread over Belgium's bounding box, in 2,000 groups
(a 50 x 40 grid of cells; each group's territory is its cell as a small octagon; a tenth of the
members are also in a second, random group). Nine in ten members have a mobile number, three in
ten a fixed line shared with a housemate, seven in ten an e-mail address; one in twenty has
channel preferences. The alert: three infos (nl-BE, fr-BE, de-DE) with one polygon of 500
vertices around Flemish Brabant, about 3,000 km2 (a province).

Printed: the time to build the Directory from rows (not part of planning), the planning time
(first run and best of five), its peak memory by tracemalloc (numpy reports its buffers to
it) and the process's peak RSS, beside a baseline measured in the same run on the same data:
shapely's bare ``contains_xy`` of the same 1,000,000 points in the same (prepared) polygon.
The issue's targets: plan in < 1 s, peak memory < 1 GiB. Only counts and times are printed.
"""

from __future__ import annotations

import math
import resource
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.cap.model import (  # noqa: E402
    Alert,
    Area,
    Category,
    Certainty,
    Info,
    MsgType,
    Polygon,
    Scope,
    Severity,
    Status,
    Urgency,
)
from hub.domain import EntityType, Group, Kind, Language  # noqa: E402
from hub.routing.directory import Directory  # noqa: E402
from hub.routing.plan import CampaignPlan, plan_campaign  # noqa: E402

SOUTH, WEST, NORTH, EAST = 49.50, 2.55, 51.50, 6.40  # Belgium's bounding box
COLS, ROWS = 50, 40  # 2,000 groups
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def cell_territory(col: int, row: int) -> str:
    """The cell as an octagon slightly larger than the cell (neighbouring territories overlap)."""
    w, h = (EAST - WEST) / COLS, (NORTH - SOUTH) / ROWS
    cx, cy = WEST + (col + 0.5) * w, SOUTH + (row + 0.5) * h
    ring = [[round(cx + 0.75 * w * math.cos(a), 6), round(cy + 0.75 * h * math.sin(a), 6)]
            for a in (k * math.pi / 4 + math.pi / 8 for k in range(8))]
    ring.append(ring[0])
    return '{"type": "Polygon", "coordinates": [' + str(ring) + "]}"


def wobbly_polygon(lat0: float, lon0: float, dlat: float, dlon: float, vertices: int = 500) -> Polygon:
    """A wobbly ellipse of ``vertices`` vertices, as CAP text."""
    theta = np.linspace(0, 2 * math.pi, vertices, endpoint=False)
    r = 1 + 0.12 * np.sin(5 * theta) + 0.05 * np.sin(13 * theta + 1)
    lat = lat0 + dlat * r * np.sin(theta)
    lon = lon0 + dlon * r * np.cos(theta)
    lat, lon = np.append(lat, lat[0]), np.append(lon, lon[0])
    return Polygon(" ".join(f"{a:.5f},{o:.5f}" for a, o in zip(lat, lon, strict=True)))


def make_alert(polygon: Polygon) -> Alert:
    infos = tuple(
        Info(categories=(Category.SAFETY,), event="Chemical incident", urgency=Urgency.IMMEDIATE,
             severity=Severity.SEVERE, certainty=Certainty.OBSERVED, language=lang,
             expires=NOW + timedelta(hours=3), areas=(Area("area", polygons=(polygon,)),))
        for lang in ("nl-BE", "fr-BE", "de-DE"))
    return Alert(identifier="BENCH-1", sender="bench@example.be", sent=NOW, status=Status.ACTUAL,
                 msg_type=MsgType.ALERT, scope=Scope.PUBLIC, infos=infos)


def generate(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    lat = rng.uniform(SOUTH, NORTH, n)
    lon = rng.uniform(WEST, EAST, n)
    col = np.minimum(((lon - WEST) / (EAST - WEST) * COLS).astype(np.int64), COLS - 1)
    row = np.minimum(((lat - SOUTH) / (NORTH - SOUTH) * ROWS).astype(np.int64), ROWS - 1)
    return {
        "lat": lat, "lon": lon, "group": row * COLS + col,
        "second": np.where(rng.random(n) < 0.1, rng.integers(0, COLS * ROWS, n), -1),
        "lang": rng.choice(4, n, p=[0.55, 0.40, 0.03, 0.02]),
        "mobile": rng.random(n) < 0.9, "fixed": rng.random(n) < 0.3, "email": rng.random(n) < 0.7,
        "prefs": np.where(rng.random(n) < 0.05, rng.integers(1, 4, n), 0),
    }


def build(data: dict[str, np.ndarray], groups: list[Group]) -> Directory:
    n = len(data["lat"])
    languages = ("nl", "fr", "de", "en")
    prefs = ("", "sms", "voice,email", '["email"]')

    def members() -> Iterator[tuple[int, str, float | None, float | None, str | None]]:
        for i, (la, lo, lg, pr) in enumerate(zip(data["lat"].tolist(), data["lon"].tolist(),
                                                 data["lang"].tolist(), data["prefs"].tolist(),
                                                 strict=True)):
            yield i + 1, languages[lg], la, lo, prefs[pr]

    def phones() -> Iterator[tuple[int, str, str]]:
        for i in np.flatnonzero(data["mobile"]).tolist():
            yield i + 1, f"+324{70000000 + i}", "mobile"
        for i in np.flatnonzero(data["fixed"]).tolist():
            yield i + 1, f"+3221{(i // 2):07d}", "fixed"  # members 2k and 2k+1 share a line

    def emails() -> Iterator[tuple[int, str]]:
        for i in np.flatnonzero(data["email"]).tolist():
            yield i + 1, f"member{i}@example.be"

    def memberships() -> Iterator[tuple[str, int]]:
        gids = [g.gid for g in groups]
        for i, g in enumerate(data["group"].tolist()):
            yield gids[g], i + 1
        for i in np.flatnonzero(data["second"] >= 0).tolist():
            yield gids[int(data["second"][i])], i + 1

    del n
    return Directory.from_rows(members=members(), phones=phones(), emails=emails(),
                               memberships=memberships(), groups=groups)


def scenario(name: str, alert: Alert, polygon: Polygon, directory: Directory, groups: list[Group],
             data: dict[str, np.ndarray]) -> CampaignPlan:
    def plan() -> CampaignPlan:
        return plan_campaign(alert, entity_type=EntityType.AREA, entity_groups=groups, directory=directory,
                             kind=Kind.ALERT, default_language=Language.NL, now=NOW)

    # Baseline: shapely alone, every point against the same polygon (same rounded vertices).
    shape = shapely.Polygon([(p.lon, p.lat) for p in polygon.points()])
    shapely.prepare(shape)
    lon, lat = data["lon"], data["lat"]
    baseline = []
    for _ in range(3):
        t0 = time.perf_counter()
        inside = shapely.contains_xy(shape, lon, lat)
        baseline.append(time.perf_counter() - t0)
    n = len(lon)
    print(f"{name}:")
    print(f"  baseline: shapely.contains_xy over {n:,} points, 500-vertex prepared polygon: "
          f"{min(baseline) * 1000:.0f} ms (best of 3), {int(inside.sum()):,} inside")

    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        result = plan()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    plan()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    counts = result.counts()
    print(f"  plan:     first {times[0] * 1000:.0f} ms, best of 5 {min(times) * 1000:.0f} ms "
          f"(target < 1000 ms); {min(times) / min(baseline):.1f}x the baseline")
    print(f"            peak memory while planning (tracemalloc): {peak / 2**20:.0f} MiB")
    print(f"            {len(result.groups):,} groups matched, {result.members_matched:,} members "
          f"in the area, {result.members_outside_area:,} of their groups outside it")
    print(f"            deliveries {counts['deliveries']}, languages {counts['languages']}")
    print(f"            skipped {counts['skipped']}, duplicates {counts['duplicates']}")
    return result


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rng = np.random.default_rng(42)
    groups = [Group(id=k, gid=f"g{k:04d}", entity_id=1, name=f"cell {k}",
                    territory=cell_territory(k % COLS, k // COLS)) for k in range(COLS * ROWS)]
    data = generate(n, rng)

    t0 = time.perf_counter()
    directory = build(data, groups)
    built = time.perf_counter() - t0
    print(f"directory: {len(directory):,} members, {len(groups):,} groups, "
          f"{len(directory.addresses):,} contact points, {directory.nbytes / 2**20:.0f} MiB of arrays, "
          f"built from rows in {built:.2f} s")

    province = wobbly_polygon(50.88, 4.65, 0.22, 0.55)  # about Flemish Brabant, ~3,000 km2
    country = wobbly_polygon(50.5, 4.47, 0.85, 1.65)  # most of the bounding box
    for name, polygon in (("province", province), ("country", country)):
        result = scenario(name, make_alert(polygon), polygon, directory, groups, data)
        t0 = time.perf_counter()
        total = sum(len(b) for c in result.per_channel() for b in result.batches(c))
        print(f"  batches: {total:,} deliveries materialised in batches of 500 in "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms (publishing side, not planning)")
    print(f"process:   peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB "
          "(generation and directory build included; target < 1024 MiB)")


if __name__ == "__main__":
    main()
