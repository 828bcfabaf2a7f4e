"""Benchmark of a member import: the pure part, the service with its store, and the CLI.

    .venv/bin/python bench/members_import.py [ROWS] [--no-cli]

100,000 generated rows (names, Belgian mobile and fixed numbers written in the shapes
coordinators use, some foreign numbers, e-mail addresses, languages in words and codes,
addresses) as ``;``-separated UTF-8 CSV bytes in memory; a tenth of the rows match existing
members. The issue's target: 100,000 rows imported in under 10 s end to end. Measured:

- the pure part, read_members_csv + plan_import (best of 3, a cold phone cache each time),
  beside a baseline measured in the same run on the same bytes, since this machine is shared
  and noisy: Python's csv module reading them into lists, without any validation;
- end to end through ``Members.import_csv`` into a fresh SqliteStore in a temporary data
  directory (the entity and the group are created first, not timed): (a) a first import,
  every row a create, then (b) the same file again, every row found by find_members and
  compared with member_data (unchanged or updated);
- the CLI as a user runs it, ``cap-hub members import FILE --group G --data DIR`` in a
  subprocess (wall time, interpreter start-up included), into another fresh data directory:
  (c) a first import, then (d) the same file again.

The end-to-end figures are single runs (each writes a store); the target is checked on them.
Nothing personal is printed: the data are generated, and only counts and times are shown.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.domain import EntityType  # noqa: E402
from hub.members import plan_import, read_members_csv  # noqa: E402
from hub.members.phones import _parse_cached  # noqa: E402
from hub.services.members import ADMIN, ImportOutcome, Members  # noqa: E402
from hub.wiring import open_store  # noqa: E402

TARGET = 10.0  # seconds for 100,000 rows, end to end (the figure, whatever ROWS is)
GID = "bench-plp"
CLI = Path(sys.executable).with_name("cap-hub")

FIRST = ("Jan", "Marie", "Pieter", "Sofie", "Luc", "Nathalie", "Koen", "Isabelle", "Wim", "Céline",
         "Dirk", "Anne-Sophie", "Els", "François", "Bart", "Hélène", "Tom", "Chloé", "Jürgen", "Inge")
LAST = ("Peeters", "Janssens", "Maes", "Dubois", "Lambert", "Claes", "Dupont", "Goossens", "Wouters",
        "De Smet", "Van den Broeck", "Lefèvre", "Vermeulen", "Martin", "Jacobs", "Mertens", "Willems",
        "Leclercq", "D'Hondt", "Müller")
STREETS = ("Kerkstraat", "Rue de la Station", "Stationsstraat", "Dorpsstraat", "Rue du Moulin",
           "Molenstraat", "Chaussée de Louvain", "Nieuwstraat", "Rue Haute", "Kapelstraat")
CITIES = (("1000", "Brussel"), ("2000", "Antwerpen"), ("9000", "Gent"), ("4000", "Liège"),
          ("5000", "Namur"), ("3000", "Leuven"), ("8000", "Brugge"), ("7000", "Mons"))
LANGUAGES = ("nl", "fr", "NL", "FR", "Nederlands", "français", "Deutsch", "English", "N", "F", "de")
DOMAINS = ("telenet.be", "skynet.be", "gmail.com", "hotmail.com", "proximus.be", "outlook.be")
# Brussels, Antwerp, Ghent, Liège (then the digits their numbers go on with), Bruges, Leuven...
AREAS = (("2", "2345678"), ("3", "2345678"), ("9", "234"), ("4", "23"), ("50", ""), ("16", ""),
         ("11", ""), ("15", ""), ("81", ""), ("87", ""))


def mobile(rng: random.Random) -> tuple[str, str]:
    prefix = rng.choice(("470", "471", "472", "473", "474", "475", "476", "477", "478", "479",
                         "484", "485", "486", "487", "488", "489", "491", "492", "493", "494",
                         "495", "496", "497", "498", "499", "456", "460", "465", "466", "467", "468"))
    d = f"{rng.randrange(10**6):06d}"
    shape = rng.randrange(6)
    text = (f"0{prefix} {d[:2]} {d[2:4]} {d[4:]}", f"+32 {prefix}/{d[:2]}.{d[2:4]}.{d[4:]}",
            f"0032 {prefix} {d[:2]} {d[2:4]} {d[4:]}", f"0{prefix}{d}", f"0{prefix}/{d[:3]}.{d[3:]}",
            f"+32{prefix}{d}")[shape]
    return text, "+32" + prefix + d


def fixed(rng: random.Random) -> str:
    area, next_digits = rng.choice(AREAS)
    rest = (rng.choice(next_digits) if next_digits else "") + f"{rng.randrange(10**6):06d}"
    return rng.choice((f"0{area} {rest}", f"(0{area}) {rest[:3]} {rest[3:5]} {rest[5:]}",
                       f"0{area}/{rest[:3]}.{rest[3:]}", f"+32 {area} {rest}"))


def generate(count: int, seed: int = 4) -> tuple[bytes, dict[str, int]]:
    rng = random.Random(seed)
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Ref", "Voornaam", "Naam", "GSM", "Telefoon", "E-mail", "Taal", "Adres"])
    existing: dict[str, int] = {}
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        gsm, e164 = mobile(rng) if rng.random() < 0.9 else ("", "")
        foreign = f"+33 6 {rng.randrange(10**8):08d}" if rng.random() < 0.01 else ""
        phone = fixed(rng) if rng.random() < 0.3 else foreign
        email = (f"{first}.{last}{i}@{rng.choice(DOMAINS)}".replace(" ", "").replace("'", "")
                 if rng.random() < 0.7 or not gsm else "")
        street, (postcode, city) = rng.choice(STREETS), rng.choice(CITIES)
        address = f"{street} {rng.randrange(1, 200)}, {postcode} {city}" if rng.random() < 0.5 else ""
        ref = f"M{i:06d}" if rng.random() < 0.5 else ""
        writer.writerow([ref, first, last, gsm, phone, email, rng.choice(LANGUAGES), address])
        if i % 10 == 0:  # a tenth are known already, by external id or by number
            if ref:
                existing[ref] = i + 1
            elif e164:
                existing[e164] = i + 1
    return out.getvalue().encode("utf-8"), existing


def best_of(runs: int, fn: object) -> float:
    assert callable(fn)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


async def _setup(data_dir: Path) -> None:
    """A fresh store in ``data_dir`` with one entity and one group (not timed)."""
    store = open_store(data_dir)
    await store.open()
    try:
        entity = await store.add_entity("Bench PZ", EntityType.GROUPS, ["bench@example.be"],
                                        signature_required=False, profile="", territory=None)
        await Members(store, store).add_group(ADMIN, entity, GID, "Bench PLP")
    finally:
        await store.close()


@dataclass(repr=False)  # asyncio.run reprs its result (CPython issue 112559): keep that cheap
class _Timed:
    seconds: float
    steps: list[float]  # when import_csv said "read" and "planned", from its start
    outcome: ImportOutcome

    def phases(self) -> str:
        read, planned = (self.steps + [float("nan")] * 2)[:2]
        return (f"read {read:.2f} s, find + member_data + plan {planned - read:.2f} s, "
                f"save + audit {self.seconds - planned:.2f} s")


async def _service_imports(data_dir: Path, data: bytes) -> list[_Timed]:
    """(a) then (b): the same bytes imported twice through ``Members.import_csv``, each from a
    cold phone cache (as in a new process); only the two calls are timed."""
    store = open_store(data_dir)
    await store.open()
    try:
        members = Members(store, store)
        timed = []
        for _ in range(2):
            _parse_cached.cache_clear()
            steps: list[float] = []
            start = time.perf_counter()
            outcome = await members.import_csv(ADMIN, GID, data, progress=lambda _n, steps=steps,
                                               start=start: steps.append(time.perf_counter() - start))
            timed.append(_Timed(time.perf_counter() - start, steps, outcome))
        return timed
    finally:
        await store.close()


def _cli_import(path: Path, data_dir: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([str(CLI), "members", "import", str(path), "--group", GID,
                           "--data", str(data_dir)], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"cap-hub members import failed ({done.returncode}):\n{done.stderr[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("imported into")]
    return elapsed, (lines[-1].split(": ", 1)[-1] if lines else "?")


def _line(label: str, seconds: float, count: int, target: float | None = None, note: str = "") -> None:
    verdict = "" if target is None else ("  target met" if seconds < target else "  TARGET MISSED")
    print(f"{label:<34} {seconds:7.3f} s  {count / seconds:10,.0f} rows/s{verdict}{note}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    with_cli = "--no-cli" not in sys.argv[1:]
    count = int(args[0]) if args else 100_000
    target = TARGET
    data, existing = generate(count)
    print(f"{count:,} rows, {len(data) / 1e6:.1f} MB of CSV, {len(existing):,} existing keys; "
          f"end-to-end target {target:.0f} s (for 100,000 rows)")

    def baseline() -> None:
        list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=";"))

    result: dict[str, object] = {}
    reads: list[float] = []

    def pure() -> None:
        result.clear()  # the last run's rows are garbage now, as between two real imports
        _parse_cached.cache_clear()  # every run from a cold cache, as a real import
        start = time.perf_counter()
        imported = read_members_csv(data)
        reads.append(time.perf_counter() - start)
        plan = plan_import(imported.rows, existing)
        result["plan"] = plan

    base = best_of(3, baseline)
    ours = best_of(3, pure)
    plan = result["plan"]
    read = min(reads)
    print("pure part (best of 3):")
    _line("  baseline csv.reader", base, count)
    _line("  read_members_csv alone", read, count)
    _line("  read + plan_import", ours, count, note=f"  ({ours / base:.1f}x the baseline)")
    counts = {str(k): v for k, v in plan.counts.items()}  # type: ignore[attr-defined]
    print(f"  plan: {counts}")
    verdict = "ok" if ours < 6 else "TOO SLOW"
    print(f"  pure part well under 6 s (the store comes after it): {verdict}")
    result.clear()

    with tempfile.TemporaryDirectory(prefix="cap-hub-bench-") as tmp:
        service_dir = Path(tmp) / "service"
        asyncio.run(_setup(service_dir))
        print("end to end, Members.import_csv into a fresh SqliteStore (single runs):")
        for label, run in zip(("  (a) first import", "  (b) same file again"),
                              asyncio.run(_service_imports(service_dir, data)), strict=True):
            plan = run.outcome.plan
            assert run.outcome.applied and plan is not None, run.outcome.summary()
            done = {str(k): v for k, v in plan.counts.items() if v}
            _line(label, run.seconds, count, target, f"  {done}")
            print(f"{'':<6}{run.phases()}")
        if with_cli:
            cli_dir = Path(tmp) / "cli"
            asyncio.run(_setup(cli_dir))
            path = Path(tmp) / "members.csv"
            path.write_bytes(data)
            print("the CLI, cap-hub members import in a subprocess (wall time, single runs):")
            for label in ("  (c) first import", "  (d) same file again"):
                seconds, summary = _cli_import(path, cli_dir)
                _line(label, seconds, count, target, f"  ({summary})")


if __name__ == "__main__":
    main()
