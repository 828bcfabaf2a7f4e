"""E-mail addresses as coordinators write them → the normalised address, or a reason.

A small function rather than ``email-validator``: what the hub needs is a syntax check and one
normal form, not deliverability (that package's default is a DNS query, I/O we keep out of
the pure core) nor its Unicode policies for the local part. The rules, from RFC 5321/5322/6531
as far as real addresses use them:

- ``local@domain`` with exactly one ``@``; no spaces or control characters anywhere;
- ``Name <local@domain>`` and ``mailto:`` are unwrapped (pasted from a mail client);
- the local part: 1 to 64 characters, none of ``"(),:;<>[\\]``, no leading, trailing or
  doubled dot; kept exactly as given (its case may matter to the receiving server). Quoted
  local parts (``"a b"@x.be``) are refused: legal, but nobody in a member list has one;
- the domain: at least two labels, IDNA-encoded (IDNA 2008 with UTS 46 mapping, via ``idna``,
  which aiohttp's yarl already brings), lower-cased, each label 1 to 63 letters, digits or
  inner hyphens, a top-level label that is not all digits; no IP literals;
- at most 254 characters in all, after encoding.
"""

from __future__ import annotations

import re

import idna

MAX_LENGTH = 254

_WRAPPED = re.compile(r"[^<>]*<([^<>]*)>")
_LOCAL = re.compile(r"[^\s\x00-\x1f\x7f\"(),:;<>@\[\\\]]{1,64}")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_SPACE = re.compile(r"\s")


def parse_email(text: str) -> tuple[str, None] | tuple[None, str]:
    """``(address, None)`` with the domain encoded and lower-cased, or ``(None, reason)``.
    The reason quotes ``text``."""
    value = text.strip()
    wrapped = _WRAPPED.fullmatch(value)
    if wrapped is not None:
        value = wrapped.group(1).strip()
    if value[:7].lower() == "mailto:":
        value = value[7:]
    if _SPACE.search(value) is not None:
        return None, f"{text!r} is not an e-mail address (it contains a space)"
    local, at, domain = value.rpartition("@")
    if not at:
        return None, f"{text!r} is not an e-mail address (no @)"
    if not domain:
        return None, f"{text!r} is an e-mail address without a domain"
    if not _local_ok(local):
        return None, f"{text!r} is not an e-mail address (the part before @ is not valid)"
    ascii_domain = _domain(domain)
    if ascii_domain is None:
        if "." not in domain:
            return None, f"{text!r} is an e-mail address without a domain (no dot after @)"
        return None, f"{text!r} is not an e-mail address (the domain is not valid)"
    address = f"{local}@{ascii_domain}"
    if len(address) > MAX_LENGTH:
        return None, f"{text[:20]!r}... is longer than {MAX_LENGTH} characters"
    return address, None


def _local_ok(local: str) -> bool:
    return (_LOCAL.fullmatch(local) is not None and not local.startswith(".")
            and not local.endswith(".") and ".." not in local)


def _domain(domain: str) -> str | None:
    if domain.isascii():
        ascii_domain = domain.lower()
    else:
        try:
            ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253 or labels[-1].isdigit():
        return None
    if all(_LABEL.fullmatch(label) for label in labels):
        return ascii_domain
    return None
