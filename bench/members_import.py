"""Benchmark of the pure part of a member import: read_members_csv + plan_import.

    .venv/bin/python bench/members_import.py [ROWS]

100,000 generated rows (names, Belgian mobile and fixed numbers written in the shapes
coordinators use, some foreign numbers, e-mail addresses, languages in words and codes,
addresses) as ``;``-separated UTF-8 CSV bytes in memory; a tenth of the rows match existing
members. The time is printed beside a baseline measured in the same run on the same bytes,
since this machine is shared and noisy: Python's csv module reading them into lists, without
any validation. The issue's target: 100,000 rows imported in under 10 s end to end; the store
comes after this, so this pure part should stay well under ~6 s.
Nothing personal is printed: the data are generated, and only counts and times are shown.
"""

from __future__ import annotations

import csv
import io
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.members import plan_import, read_members_csv  # noqa: E402
from hub.members.phones import _parse_cached  # noqa: E402

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


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    data, existing = generate(count)
    print(f"{count:,} rows, {len(data) / 1e6:.1f} MB of CSV, {len(existing):,} existing keys")

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
    print(f"baseline csv.reader     {base:7.3f} s  {count / base:12,.0f} rows/s")
    print(f"read_members_csv alone  {read:7.3f} s  {count / read:12,.0f} rows/s")
    print(f"read + plan_import      {ours:7.3f} s  {count / ours:12,.0f} rows/s  "
          f"({ours / base:.1f}x the baseline)")
    counts = {str(k): v for k, v in plan.counts.items()}  # type: ignore[attr-defined]
    print(f"plan: {counts}")
    verdict = "ok" if ours < 6 else "TOO SLOW"
    print(f"target: pure part well under 6 s for 100,000 rows (10 s with the store): {verdict}")


if __name__ == "__main__":
    main()
