"""Benchmark of the CAP core: parse + schema + rules, sign and verify.

    .venv/bin/python bench/cap_core.py          (or: make bench)

Every figure is printed beside a baseline measured in the same run, on the same documents,
because this machine is shared and noisy: the ratio is what to compare between runs. Parse
and its baseline are timed in alternating rounds, the best round of each kept.
  - parse: hub.cap.parse.parse (hardened parse, root check, schema, model, rules) against bare
    lxml (fromstring + XMLSchema.validate with the same schema). Target: >= 0.5x the baseline.
  - verify: hub.cap.verify.verify of a 10 KB signed alert against bare signxml
    (XMLVerifier.verify with the certificate given). Target: >= 1,000/s on one core.
Documents: the valid/ and signed/ folders of $CAPHUB_CORPUS when it exists, else our fixtures.
The builder in use is printed: the compiled one (hub.cap._build) unless the install could not
build it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.cap import devkeys, schema  # noqa: E402
from hub.cap.parse import parse  # noqa: E402
from hub.cap.sign import sign  # noqa: E402
from hub.cap.trust import TrustStore  # noqa: E402
from hub.cap.verify import SignaturePolicy, verify  # noqa: E402


def documents() -> tuple[str, list[bytes]]:
    corpus = os.environ.get("CAPHUB_CORPUS")
    if corpus and Path(corpus).is_dir():
        paths = [p for folder in ("valid", "signed") for p in sorted((Path(corpus) / folder).rglob("*"))
                 if p.is_file() and p.suffix.lower() in (".xml", ".cap")]
        docs = [p.read_bytes() for p in paths]
        docs = [d for d in docs if parse(d).ok]
        if docs:
            return f"corpus {corpus} ({len(docs)} valid documents)", docs
    fixtures = sorted((ROOT / "tests" / "fixtures").glob("alert_*.xml"))
    return f"our fixtures ({len(fixtures)} documents; CAPHUB_CORPUS not found)", [
        p.read_bytes() for p in fixtures]


def rate(fn: Callable[[], object], seconds: float = 2.0) -> float:
    """Calls per second of ``fn``, best of three rounds of about ``seconds`` / 3 each."""
    fn()
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            fn()
            n += 1
        best = max(best, n / elapsed)
    return best


def rates(*fns: Callable[[], object], rounds: int = 9, seconds: float = 0.25) -> list[float]:
    """Calls per second of each of ``fns``, measured in turns (a round of each, then again) so
    that a neighbour's load falls on all of them alike; the best round of each counts."""
    best = [0.0] * len(fns)
    for fn in fns:
        fn()
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            n, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                fn()
                n += 1
            best[i] = max(best[i], n / elapsed)
    return best


def bench_parse() -> None:
    label, docs = documents()
    xsd = etree.XMLSchema(etree.parse(str(schema.SCHEMA_PATH)))
    plain = etree.XMLParser()

    def bare() -> None:
        for d in docs:
            xsd.validate(etree.fromstring(d, plain))

    def ours() -> None:
        for d in docs:
            parse(d)

    base, full = (r * len(docs) for r in rates(bare, ours))
    from hub.cap import parse as parse_module

    builder = "compiled (hub.cap._build)" if parse_module._compiled is not None else "Python (not compiled)"
    print(f"parse over {label}; model builder: {builder}")
    print(f"  bare lxml parse + schema     {base:10,.0f} docs/s  {1e6 / base:7.1f} us/doc")
    print(f"  parse + schema + rules      {full:10,.0f} docs/s  {1e6 / full:7.1f} us/doc")
    print(f"  ratio                       {full / base:10.2f}x  (target >= 0.5x)")


def ten_kb_alert() -> bytes:
    text = (ROOT / "tests" / "fixtures" / "alert_full.xml").read_text()
    filler = " Blijf op de hoogte via de lokale radio en de website van uw gemeente." * 100
    padded = text.replace("veroorzaakt veel rook.", "veroorzaakt veel rook." + filler, 1)
    return padded.encode()


def bench_signatures() -> None:
    from cryptography import x509
    from signxml import XMLVerifier  # the bare library, for the baseline

    key_pem, cert_pem = devkeys.new_identity("bench")
    doc = ten_kb_alert()
    signed = sign(doc, key_pem, cert_pem)
    sender = "alerts@nccn.example.be"
    trust = TrustStore.from_pem({sender: [cert_pem]})
    policy = SignaturePolicy(required=True, expiry_at="now")
    now = datetime.now(UTC)
    cert = x509.load_pem_x509_certificate(cert_pem)
    result = verify(signed, trust=trust, policy=policy, sender=sender, now=now)
    assert result.valid, result

    signs = rate(lambda: sign(doc, key_pem, cert_pem))
    bare = rate(lambda: XMLVerifier().verify(signed, x509_cert=cert))
    ours = rate(lambda: verify(signed, trust=trust, policy=policy, sender=sender, now=now))
    print(f"signatures over a {len(signed) / 1024:.1f} KB signed alert (RSA-2048, SHA-256, exc-c14n)")
    print(f"  sign                        {signs:10,.0f} /s")
    print(f"  bare signxml verify         {bare:10,.0f} /s")
    print(f"  hub verify                  {ours:10,.0f} /s  ({ours / bare:.2f}x bare; target >= 1,000/s)")


if __name__ == "__main__":
    bench_parse()
    bench_signatures()
