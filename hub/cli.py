"""The ``cap-hub`` command line: thin wrappers that read files, call the core, print results.

    cap-hub cap validate FILE|DIR...  [--profile be|ipaws] [--json]
    cap-hub cap sign --key K --cert C IN [OUT]
    cap-hub cap verify --cert C [--cert C2 ...] FILE...
    cap-hub keys new DIR
    cap-hub serve [--data DIR] [--host H] [--port P]
    cap-hub admin entity|cert|account|token|ledger ...   (see hub.cli_admin)
    cap-hub template add|list|show|remove|send ...   (see hub.cli_templates)
    cap-hub campaign watch ID   (see hub.cli_campaign)

Exit status: 0 when everything checked is fine, 1 when something was refused, 2 when the
command itself was wrong (unknown option, unreadable settings).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from hub import __version__, cli_admin, cli_campaign, cli_templates
from hub.cap import devkeys, profiles
from hub.cap.parse import parse
from hub.cap.problems import Problem, error
from hub.cap.sign import sign
from hub.cap.trust import TrustStore
from hub.cap.verify import SignaturePolicy, VerifyResult, verify
from hub.cap.xmlsafe import parse_xml
from hub.cli_common import read_file
from hub.config import Settings, load
from hub.errors import ConfigError, HubError

CAP_SUFFIXES = (".xml", ".cap")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        settings = load(args.config)
        code: int = args.run(args, settings, sys.stdout)
        return code
    except ConfigError as exc:
        print(f"cap-hub: {exc}", file=sys.stderr)
        return 2
    except HubError as exc:
        print(f"cap-hub: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cap-hub",
        description="A standards-based CAP 1.2 alert hub and gateway.",
    )
    p.add_argument("--version", action="version", version=f"cap-hub {__version__}")
    p.add_argument("--config", metavar="FILE", help="settings file (TOML); default $CAPHUB_CONFIG")
    top = p.add_subparsers(title="commands", metavar="COMMAND")

    cap = top.add_parser("cap", help="check, sign and verify CAP 1.2 messages")
    cap_cmds = cap.add_subparsers(title="cap commands", metavar="ACTION")
    v = cap_cmds.add_parser("validate", help="check CAP 1.2 files against the schema and rules")
    v.add_argument("paths", nargs="+", metavar="FILE|DIR",
                   help=f"files, or folders of {'/'.join(CAP_SUFFIXES)} files")
    v.add_argument("--profile", choices=sorted(profiles.PROFILES), help="extra rules to apply")
    v.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    v.set_defaults(run=_validate)

    s = cap_cmds.add_parser("sign", help="sign a CAP file (enveloped XML-DSig, RSA-SHA256, exc-c14n)")
    s.add_argument("--key", required=True, type=Path, help="PEM private key")
    s.add_argument("--cert", required=True, type=Path, help="PEM certificate of that key")
    s.add_argument("input", type=Path, metavar="IN")
    s.add_argument("output", type=Path, nargs="?", metavar="OUT", help="default: standard output")
    s.set_defaults(run=_sign)

    r = cap_cmds.add_parser("verify", help="verify the XML signatures of CAP files")
    r.add_argument("--cert", required=True, type=Path, action="append",
                   help="PEM certificate trusted to sign (repeatable)")
    r.add_argument("--expiry-at", choices=("now", "sent"),
                   help="check certificate validity at this time (default: the settings)")
    r.add_argument("--allow-sha1", action="store_true", help="accept SHA-1 signatures and digests")
    r.add_argument("paths", nargs="+", type=Path, metavar="FILE")
    r.set_defaults(run=_verify)

    cli_admin.register(top)
    cli_campaign.register(top)
    cli_templates.register(top)

    keys = top.add_parser("keys", help="key material")
    key_cmds = keys.add_subparsers(title="keys commands", metavar="ACTION")
    k = key_cmds.add_parser("new", help="write a development key pair and self-signed certificate")
    k.add_argument("dir", type=Path, metavar="DIR", help="writes DIR/key.pem and DIR/cert.pem")
    k.add_argument("--cn", default="cap-hub development", help="certificate common name")
    k.add_argument("--ec", action="store_true", help="an EC P-256 key instead of RSA 2048")
    k.add_argument("--days", type=int, default=730, help="validity in days (default 730)")
    k.add_argument("--force", action="store_true", help="replace existing files")
    k.set_defaults(run=_keys_new)
    return p


# --- cap validate -------------------------------------------------------------------------


def _files(paths: Sequence[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in CAP_SUFFIXES and not p.name.startswith(".")
            )
        else:
            yield path


def _check_file(path: Path, settings: Settings, profile: profiles.Profile | None) -> list[Problem]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [error("/", "file-unreadable", f"cannot read file: {exc.strerror}")]
    return list(parse(data, max_bytes=settings.cap.max_bytes, profile=profile).problems)


def _validate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    name = args.profile or settings.cap.profile
    profile = profiles.get_profile(name) if name else None
    failed = 0
    report = []
    for path in _files(args.paths):
        problems = _check_file(path, settings, profile)
        ok = not any(p.is_error for p in problems)
        failed += not ok
        if args.json:
            report.append({"file": str(path), "ok": ok, "problems": [p.to_json() for p in problems]})
            continue
        for p in problems:
            print(p.format(str(path)), file=out)
        if ok:
            warnings = f" ({len(problems)} warnings)" if problems else ""
            print(f"{path}: OK{warnings}", file=out)
    if args.json:
        json.dump(report, out, indent=2)
        out.write("\n")
    return 1 if failed else 0


# --- cap sign / verify ----------------------------------------------------------------------


def _sign(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    data = read_file(args.input, "CAP file")
    refused = parse_xml(data, max_bytes=settings.cap.max_bytes)
    if isinstance(refused, Problem):  # not even XML: nothing to sign
        print(refused.format(str(args.input)), file=sys.stderr)
        return 1
    signed = sign(data, read_file(args.key, "key"), read_file(args.cert, "certificate"))
    if args.output is None:
        sys.stdout.buffer.write(signed)
    else:
        args.output.write_bytes(signed)
    return 0


def _verify(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    trust = TrustStore.from_pem(any_sender=[read_file(c, "certificate") for c in args.cert])
    policy = SignaturePolicy(
        required=True,
        expiry_at=args.expiry_at or settings.signature.expiry_at,
        allow_sha1=args.allow_sha1 or settings.signature.allow_sha1,
        allow_dsa=settings.signature.allow_dsa,
    )
    now = datetime.now(UTC)
    failed = 0
    for path in args.paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"{path}: cannot read file: {exc.strerror}", file=out)
            failed += 1
            continue
        result = verify(data, trust=trust, policy=policy, now=now)
        failed += not result.valid
        print(f"{path}: {_describe(result)}", file=out)
    return 1 if failed else 0


def _describe(result: VerifyResult) -> str:
    """``valid`` or the status, then what each signature said."""
    head = "valid" if result.valid else f"INVALID: {result.status}"
    parts = [f"{head}: {result.reason}"]
    if len(result.checks) > 1:
        parts += [f"signature {c.index}: {c.status}: {c.reason}" for c in result.checks]
    return "; ".join(parts)


# --- keys new -------------------------------------------------------------------------------


def _keys_new(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    key_path, cert_path = args.dir / "key.pem", args.dir / "cert.pem"
    existing = [p for p in (key_path, cert_path) if p.exists()]
    if existing and not args.force:
        raise HubError(f"{existing[0]} exists; use --force to replace it")
    key_pem, cert_pem = devkeys.new_identity(args.cn, days=args.days, key_type="ec" if args.ec else "rsa")
    args.dir.mkdir(parents=True, exist_ok=True)
    # The private key is readable by its owner only, from the moment it exists.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    cert_path.write_bytes(cert_pem)
    print(f"wrote {key_path} and {cert_path}", file=out)
    return 0

